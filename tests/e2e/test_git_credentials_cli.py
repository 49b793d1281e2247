"""`acm-lite sync --repo http://user:pw@...` as a user runs it: the password is used (with the
plain-http opt-in) and never shown, in stdout, stderr, -o json, the recorded status and spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import store
from tests.support import gitserver
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

PASSWORD = "pw-b71e0c9d4a"


def _cli(kubeconfig: str, cache: Path, *args: str, allow_http: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig, "ACM_LITE_CACHE": str(cache)}
    env.pop("ACM_LITE_GIT_ALLOW_HTTP", None)
    if allow_http:
        env["ACM_LITE_GIT_ALLOW_HTTP"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_a_password_in_the_repo_url_is_used_but_never_shown(control_plane: APIServer, tmp_path: Path) -> None:
    name, namespace = f"cred-{uuid.uuid4().hex[:6]}", f"cred-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    commit = repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    cluster = Cluster.connect(control_plane.kubeconfig)
    kc, cache = control_plane.kubeconfig, tmp_path / "cache"
    with gitserver.serve(repo.bare.parent, credentials=("alice", PASSWORD)) as server:
        host, port = server.server_address[:2]
        url = f"http://alice:{PASSWORD}@{host!s}:{port}/{repo.bare.name}"
        common = [
            "sync",
            "--once",
            "--repo",
            url,
            "--revision",
            "main",
            "--source-format",
            "unstructured",
            "--name",
            name,
            "-o",
            "json",
        ]
        refused = _cli(kc, cache, *common, allow_http=False)
        synced = _cli(kc, cache, *common, allow_http=True)
        missing = _cli(
            kc, cache, *[a.replace(repo.bare.name, "missing.git") for a in common], allow_http=True
        )
    assert refused.returncode != 0 and "ACM1030" in refused.stdout + refused.stderr
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["commit"] == commit
    assert missing.returncode != 0
    recorded = store.read(cluster, name)
    assert recorded is not None
    assert recorded["spec"]["git"]["repo"] == f"http://{host!s}:{port}/missing.git"  # the last run
    for shown in (
        refused.stdout,
        refused.stderr,
        synced.stdout,
        synced.stderr,
        missing.stdout,
        missing.stderr,
        json.dumps(recorded),
    ):
        assert PASSWORD not in shown
    assert all(PASSWORD.encode() not in p.read_bytes() for p in cache.rglob("*") if p.is_file())
