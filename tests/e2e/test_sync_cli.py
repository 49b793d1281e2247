"""`acm-lite sync --once`, `diff` and `status` as a user runs them against a real cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from acm_lite.devcluster.controlplane import APIServer
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns


def cli(kubeconfig: str, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig, "ACM_LITE_CACHE": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_sync_diff_status(control_plane: APIServer, tmp_path: Path) -> None:
    name, namespace = f"cli-{uuid.uuid4().hex[:6]}", f"cli-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    commit = repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    common = ["--repo", repo.url, "--revision", "main", "--source-format", "unstructured", "--name", name]
    kc, cache = control_plane.kubeconfig, tmp_path / "cache"

    before = cli(kc, "diff", *common, cache=cache)
    assert before.returncode == 1
    assert f"+++ desired/ConfigMap/{namespace}/a" in before.stdout

    dry = cli(kc, "sync", "--once", "--dry-run", *common, cache=cache)
    assert dry.returncode == 0, dry.stderr
    assert f"configmap/a -n {namespace} created (dry run)" in dry.stdout

    synced = cli(kc, "sync", "--once", *common, "-o", "json", cache=cache)
    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert (result["commit"], result["state"], result["counts"]["created"]) == (commit, "SYNCED", 2)

    assert cli(kc, "diff", *common, cache=cache).returncode == 0
    repo.commit({"a.yaml": {**cm("a", namespace), "data": {"k": "new"}}})
    after = cli(kc, "diff", *common, "-o", "json", cache=cache)
    assert after.returncode == 1
    changes = json.loads(after.stdout)["changes"]
    assert [(c["object"], c["action"]) for c in changes] == [(f"ConfigMap {namespace}/a", "update")]
    assert "-  k: v\n+  k: new" in changes[0]["diff"]

    status = json.loads(cli(kc, "status", "--name", name, "-o", "json", cache=cache).stdout)
    assert [(s["name"], s["state"], s["commit"], s["managedObjects"]) for s in status["syncs"]] == [
        (name, "SYNCED", commit, 2)
    ]
    text = cli(kc, "status", cache=cache).stdout
    assert name in text and "SYNCED" in text

    repo.commit({"broken.yaml": "kind: [\n"})
    failed = cli(kc, "sync", "--once", *common, cache=cache)
    assert failed.returncode == 1
    assert "KNV1006 ObjectParse" in failed.stderr and "broken.yaml" in failed.stderr
    assert "Traceback" not in failed.stderr
    errored = json.loads(cli(kc, "status", "--name", name, "-o", "json", cache=cache).stdout)
    assert errored["syncs"][0]["state"] == "ERROR"
    assert errored["syncs"][0]["lastSyncedCommit"] == commit


def test_unreachable_cluster_is_a_coded_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n"
        "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n"
        "- name: gone\n  context: {cluster: gone, user: u}\nusers:\n- name: u\n  user: {token: t}\n"
    )
    run = cli(str(kubeconfig), "status", cache=tmp_path)
    assert run.returncode == 3
    assert "KNV2002 APIServerError" in run.stderr and "Traceback" not in run.stderr
    bad = cli(str(kubeconfig), "status", "--context", "missing", cache=tmp_path)
    assert bad.returncode == 1 and "ACM2001 KubeconfigError" in bad.stderr
