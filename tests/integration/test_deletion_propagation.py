"""Deleting a RootSync, against a real API server with the daemon following the cluster's
RootSyncs: Foreground deletes what the sync manages (a Namespace among them, with the namespace
controller finishing it), Orphan or no annotation leaves the objects without acm-lite's marks, a
protected namespace is only unmarked, and an object whose deletion is refused keeps the
finalizer, named in the RootSync's status, until the refusal is lifted."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite import metadata
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import finalizer
from tests.support.following import following
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns

ROOTSYNCS = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs"
INVENTORIES = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/resourceinventories"
STATUSES = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/resourcestatuses"


def rootsync(cluster: Cluster, name: str, repo: GitRepo, annotations: dict[str, str] | None = None) -> None:
    meta: dict[str, Any] = {"name": name, "namespace": "acm-lite-system"}
    if annotations:
        meta["annotations"] = annotations
    cluster.request(
        "POST",
        ROOTSYNCS,
        body={
            "apiVersion": "acm-lite.io/v1alpha1",
            "kind": "RootSync",
            "metadata": meta,
            "spec": {
                "sourceFormat": "unstructured",
                "git": {"repo": repo.url, "revision": "main", "dir": "."},
            },
        },
    )


def has_finalizer(cluster: Cluster, name: str) -> bool:
    found = get(cluster, f"{ROOTSYNCS}/{name}")
    return found is not None and finalizer.FINALIZER in (found["metadata"].get("finalizers") or [])


def records(cluster: Cluster, name: str) -> int:
    """The inventory parts and health record parts left for sync ``name`` (a just-installed
    CRD's storage answers 429 for a moment: asked again)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            inventories = cluster.request(
                "GET", INVENTORIES, query={"labelSelector": f"acm-lite.io/inventory={name}"}
            )
            statuses = cluster.request(
                "GET", STATUSES, query={"labelSelector": f"acm-lite.io/resource-status={name}"}
            )
            return len(inventories["items"]) + len(statuses["items"])
        except ApiError as e:
            if e.status != 429 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def marks(live: dict[str, Any]) -> list[str]:
    """acm-lite's labels and annotations still on ``live``."""
    meta = live["metadata"]
    keys = list(meta.get("labels") or {}) + list(meta.get("annotations") or {})
    return [k for k in keys if k in metadata.MARK_LABELS or k in metadata.MARK_ANNOTATIONS]


def test_foreground_deletes_the_managed_objects_and_the_namespace_finishes(
    live_cluster: APIServer, tmp_path: Path
) -> None:
    name = f"fg-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(name), "a.yaml": cm("a", name), "b.yaml": cm("b", name)})
    with following(live_cluster, tmp_path) as cluster:
        rootsync(cluster, name, repo, {metadata.DELETION_PROPAGATION_POLICY: "Foreground"})
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{name}/configmaps/b") is not None, 60)
        eventually(lambda: has_finalizer(cluster, name), 20)
        assert records(cluster, name) > 0
        cluster.request("DELETE", f"{ROOTSYNCS}/{name}")
        eventually(lambda: get(cluster, f"{ROOTSYNCS}/{name}") is None, 90)
        # the finalizer is only removed once everything is gone, the Namespace included
        assert get(cluster, f"/api/v1/namespaces/{name}") is None
        assert get(cluster, f"/api/v1/namespaces/{name}/configmaps/a") is None
        assert records(cluster, name) == 0


def test_orphan_or_no_annotation_leaves_the_objects_unmarked(
    control_plane: APIServer, tmp_path: Path
) -> None:
    name = f"or-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(name), "a.yaml": cm("a", name)})
    with following(control_plane, tmp_path) as cluster:
        rootsync(cluster, name, repo, {"acm-lite.io/deletion-propagation-policy": "Foreground"})
        eventually(lambda: has_finalizer(cluster, name), 60)
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{name}/configmaps/a") is not None, 60)
        live = get(cluster, f"/api/v1/namespaces/{name}/configmaps/a")
        assert live is not None and marks(live)
        # Orphan: the finalizer goes away again, and deleting the RootSync is immediate
        cluster.request(
            "PATCH",
            f"{ROOTSYNCS}/{name}",
            body={"metadata": {"annotations": {"acm-lite.io/deletion-propagation-policy": "Orphan"}}},
            content_type="application/merge-patch+json",
        )
        eventually(lambda: not has_finalizer(cluster, name), 20)
        cluster.request("DELETE", f"{ROOTSYNCS}/{name}")
        assert get(cluster, f"{ROOTSYNCS}/{name}") is None
        eventually(lambda: records(cluster, name) == 0, 30)
        for path in (f"/api/v1/namespaces/{name}/configmaps/a", f"/api/v1/namespaces/{name}"):
            left = get(cluster, path)
            assert left is not None and not left["metadata"].get("deletionTimestamp")
            assert marks(left) == []


def test_a_protected_namespace_is_unmarked_not_deleted(control_plane: APIServer, tmp_path: Path) -> None:
    name = f"pr-{uuid.uuid4().hex[:6]}"
    protected = f"kube-{name}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(protected), "a.yaml": cm("a", protected)})
    with following(control_plane, tmp_path) as cluster:
        rootsync(cluster, name, repo, {metadata.DELETION_PROPAGATION_POLICY: "Foreground"})
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{protected}/configmaps/a") is not None, 60)
        eventually(lambda: has_finalizer(cluster, name), 20)
        cluster.request("DELETE", f"{ROOTSYNCS}/{name}")
        eventually(lambda: get(cluster, f"{ROOTSYNCS}/{name}") is None, 60)
        assert get(cluster, f"/api/v1/namespaces/{protected}/configmaps/a") is None
        kept = get(cluster, f"/api/v1/namespaces/{protected}")
        assert kept is not None and not kept["metadata"].get("deletionTimestamp")
        assert marks(kept) == []


@pytest.fixture
def refusing(control_plane: APIServer) -> Iterator[tuple[str, str]]:
    """A ValidatingAdmissionPolicy (built into the API server) refusing the deletion of
    ConfigMaps named ``stuck-<suffix>``; yields that name and the binding's path."""
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    stuck = f"stuck-{suffix}"
    base = "/apis/admissionregistration.k8s.io/v1"
    policy = f"refuse-{suffix}"
    cluster.request(
        "POST",
        f"{base}/validatingadmissionpolicies",
        body={
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["DELETE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {"expression": f"oldObject.metadata.name != '{stuck}'", "message": "this one stays"}
                ],
            },
        },
    )
    binding = f"{base}/validatingadmissionpolicybindings/{policy}"
    cluster.request(
        "POST",
        f"{base}/validatingadmissionpolicybindings",
        body={
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {"policyName": policy, "validationActions": ["Deny"]},
        },
    )
    try:
        yield stuck, binding
    finally:
        for path in (binding, f"{base}/validatingadmissionpolicies/{policy}"):
            if get(cluster, path) is not None:
                cluster.request("DELETE", path)


def test_an_object_refusing_deletion_keeps_the_finalizer_and_is_named(
    control_plane: APIServer, namespace: str, refusing: tuple[str, str], tmp_path: Path
) -> None:
    stuck, binding = refusing
    name = f"rf-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"stuck.yaml": cm(stuck, namespace), "ok.yaml": cm("ok", namespace)})
    probe = f"/api/v1/namespaces/{namespace}/configmaps"
    with following(control_plane, tmp_path) as cluster:
        # the policy takes a moment to be enforced: wait until a throwaway object is refused
        cluster.request("POST", probe, body=cm(stuck, namespace))
        eventually(lambda: _refused(cluster, f"{probe}/{stuck}"), 30)
        rootsync(cluster, name, repo, {metadata.DELETION_PROPAGATION_POLICY: "Foreground"})
        eventually(lambda: get(cluster, f"{probe}/ok") is not None, 60)
        eventually(lambda: has_finalizer(cluster, name), 20)
        cluster.request("DELETE", f"{ROOTSYNCS}/{name}")

        def reported() -> bool:
            found = get(cluster, f"{ROOTSYNCS}/{name}")
            status = (found or {}).get("status") or {}
            return any(
                e.get("code") == "ACM2070" and (e.get("object") or {}).get("name") == stuck
                for e in status.get("errors") or []
            )

        eventually(reported, 30)
        found = get(cluster, f"{ROOTSYNCS}/{name}")
        assert found is not None and finalizer.FINALIZER in found["metadata"]["finalizers"]
        conditions = {c["type"]: c for c in found["status"]["conditions"]}
        assert conditions["ReconcilerFinalizerFailure"]["status"] == "True"
        assert stuck in conditions["ReconcilerFinalizerFailure"]["message"]
        assert get(cluster, f"{probe}/ok") is None  # the rest went
        assert get(cluster, f"{probe}/{stuck}") is not None
        # a round stops when its time is up, whatever is left, and says so
        spent = finalizer.finalize(cluster, name, foreground=True, budget=0)
        assert not spent.done and spent.waiting == ["the rest (this round's time is up)"]
        # lifting the refusal: the next try (with backoff) finishes
        cluster.request("DELETE", binding)
        eventually(lambda: get(cluster, f"{ROOTSYNCS}/{name}") is None, 60)
        assert get(cluster, f"{probe}/{stuck}") is None
        assert records(cluster, name) == 0


def _refused(cluster: Cluster, path: str) -> bool:
    try:
        cluster.request("DELETE", path, query={"dryRun": "All"})
    except ApiError as e:
        return e.status in (400, 403, 422)
    return False
