"""`acm-lite diff` of a synced Secret against a real cluster: which keys change shows, no value
does, in text and in JSON."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from acm_lite.devcluster.controlplane import APIServer
from tests.e2e.test_sync_cli import cli
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import ns, obj

OLD, NEW, SAME = "old-pw-6c1d9", "new-pw-2f8e4", "same-user-a93b"


def _secret(namespace: str, password: str) -> dict[str, object]:
    return obj(
        "v1",
        "Secret",
        "db",
        metadata={"namespace": namespace},
        stringData={"password": password, "user": SAME},
    )


def _leaks(text: str) -> list[str]:
    return [v for v in (OLD, NEW, SAME) if v in text or base64.b64encode(v.encode()).decode() in text]


def test_diff_masks_secret_values(control_plane: APIServer, tmp_path: Path) -> None:
    name, namespace = f"sec-{uuid.uuid4().hex[:6]}", f"sec-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace), "secret.yaml": _secret(namespace, OLD)})
    common = ["--repo", repo.url, "--revision", "main", "--source-format", "unstructured", "--name", name]
    kc, cache = control_plane.kubeconfig, tmp_path / "cache"
    created = cli(kc, "diff", *common, cache=cache)
    assert created.returncode == 1 and _leaks(created.stdout + created.stderr) == []
    synced = cli(kc, "sync", "--once", *common, cache=cache)
    assert synced.returncode == 0, synced.stderr

    repo.commit({"secret.yaml": _secret(namespace, NEW)})
    text = cli(kc, "diff", *common, cache=cache)
    assert text.returncode == 1, text.stderr
    assert _leaks(text.stdout + text.stderr) == []
    assert "-  password: '*** (before)'" in text.stdout
    assert "+  password: '*** (after)'" in text.stdout
    assert "   user: '***'" in text.stdout  # unchanged, masked all the same

    as_json = cli(kc, "diff", *common, "-o", "json", cache=cache)
    assert _leaks(as_json.stdout + as_json.stderr) == []
    [changed] = json.loads(as_json.stdout)["changes"]
    assert changed["object"] == f"Secret {namespace}/db"
    assert "+  password: '*** (after)'" in changed["diff"]
