"""A CRD that never becomes Established: the changes of later levels are postponed, and each is
reported with a code in the CLI output and in the sync's status."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cli.main import main
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns, obj


def crd(group: str, plural: str, kind: str) -> dict[str, Any]:
    return obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        f"{plural}.{group}",
        spec={
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    )


def test_postponed_changes_are_reported_with_a_code(
    control_plane: APIServer,
    tmp_path: Path,
    *,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, namespace, group = f"sync-{suffix}", f"ns-{suffix}", f"wait-{suffix}.acme.io"
    cluster = Cluster.connect(control_plane.kubeconfig)
    monkeypatch.setenv("KUBECONFIG", control_plane.kubeconfig)
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cache"))
    repo = GitRepo(tmp_path / "git")
    common = ["--repo", repo.url, "--revision", "main", "--source-format", "unstructured", "--name", name]
    repo.commit({"ns.yaml": ns(namespace), "old.yaml": cm("old", namespace)})
    assert main(["sync", "--once", *common]) == 0
    # another CRD already claims the kind: the declared one is never Established
    cluster.request(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd(group, "gizmos", "Gizmo")
    )
    repo.commit(
        {"crd.yaml": crd(group, "gadgets", "Gizmo"), "old.yaml": None, "new.yaml": cm("new", namespace)}
    )
    capsys.readouterr()

    code = main(["sync", "--once", *common, "--crd-timeout", "1"])
    shown = capsys.readouterr()
    assert code == 1  # objects failed (the CRD, those postponed after it): the job ran and found problems
    lines = shown.out.splitlines()
    assert any(
        line.startswith(
            f"customresourcedefinition.apiextensions.k8s.io/gadgets.{group} failed: not Established after 1s"
        )
        and "KindConflict" in line
        for line in lines
    ), lines
    assert (
        f"configmap/new -n {namespace} skipped: not applied: CRDs not Established after "
        f"1s: gadgets.{group}" in lines
    ), lines
    assert (
        f"configmap/old -n {namespace} skipped: not pruned: CRDs not Established after "
        f"1s: gadgets.{group}" in lines
    ), lines
    assert not any(f"namespace/{namespace}" in line for line in lines)  # unchanged, not postponed
    assert shown.err.count("ACM2031 ApplyPostponed") == 2 and "ACM2003" in shown.err, shown.err

    status = store.read(cluster, name)
    assert status is not None
    found = {(e["code"], e["object"]["name"]) for e in status["status"]["errors"]}
    assert found == {("ACM2003", f"gadgets.{group}"), ("ACM2031", "new"), ("ACM2031", "old")}
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/new") is None
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/old") is not None

    assert main(["sync", "--once", *common, "--crd-timeout", "1", "-o", "json"]) == 1
    again = json.loads(capsys.readouterr().out)
    assert {o["object"]: o["error"]["code"] for o in again["objects"] if "error" in o} == {
        f"apiextensions.k8s.io/CustomResourceDefinition gadgets.{group}": "ACM2003",
        f"ConfigMap {namespace}/new": "ACM2031",
        f"ConfigMap {namespace}/old": "ACM2031",
    }
