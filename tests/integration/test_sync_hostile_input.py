"""`sync --once` of a repository the reader refuses: a coded error (exit 1), nothing applied, never
exit 70 from a later stage (non-string keys used to pass vet and crash the apply)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from acm_lite.cli.main import main
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from tests.support.gitrepo import GitRepo
from tests.support.kube import get
from tests.unit.repo_builder import ns

CASES = {
    "int-key": (
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a, namespace: {ns}}}\ndata:\n  1: x\n",
        "ACM1014",
    ),
    "bool-key": (
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a, namespace: {ns}}}\ndata:\n  yes: x\n",
        "ACM1014",
    ),
    "surrogate": (
        "cm.json",
        '{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "a", '
        '"namespace": "{ns}"}}, "data": {{"k": "\\ud800"}}}}',
        "ACM1015",
    ),
    "binary": (
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a, namespace: {ns}}}\n"
        "data: {{k: !!binary aGVsbG8=}}\n",
        "ACM1015",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sync_refuses_what_the_reader_refuses(
    case: str,
    control_plane: APIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, namespace = f"hostile-{suffix}", f"hostile-{suffix}"
    file, text, code = CASES[case]
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace), file: text.format(ns=namespace)})
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cache"))
    status = main(
        [
            "sync",
            "--once",
            "--repo",
            repo.url,
            "--revision",
            "main",
            "--source-format",
            "unstructured",
            "--name",
            name,
            "--kubeconfig",
            control_plane.kubeconfig,
            "-o",
            "json",
        ]
    )
    out = capsys.readouterr()
    assert status == 1, out.err
    assert code in out.out + out.err and file in out.out + out.err
    assert "internal error" not in out.err
    cluster = Cluster.connect(control_plane.kubeconfig)
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a") is None
    assert json.loads(out.out)["state"] != "SYNCED"
