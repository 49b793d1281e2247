"""Namespaces a sync adopted and that then left its source: ``default``, ``kube-*`` and
acm-lite's own are unmanaged (marks stripped), never deleted, and the sync ends SYNCED."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from acm_lite import api, metadata
from acm_lite.apply import inventory
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.objects import ObjectId
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns

MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    return Cluster.connect(control_plane.kubeconfig)


def _sync(cluster: Cluster, repo: GitRepo, name: str) -> pipeline.SyncResult:
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=repo.bare.parent / "cache"))


def _adopt_own_namespace(cluster: Cluster, sync_name: str) -> None:
    """What a version of acm-lite that let a source declare acm-lite-system left behind: the
    namespace carrying this sync's marks, and recorded in its inventory."""
    store.install(cluster)
    cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}",
        content_type=MERGE,
        body={
            "metadata": {
                "labels": {metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY, metadata.SYNC_LABEL: sync_name},
                "annotations": {metadata.SOURCE_PATH: "system.yaml"},
            }
        },
    )
    recorded = inventory.read(cluster, sync_name)
    inventory.write(cluster, sync_name, recorded | {ObjectId("", "Namespace", "", api.SYSTEM_NAMESPACE)})


def test_protected_namespaces_leaving_the_source_are_unmanaged(cluster: Cluster, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    sync_name, team, kube_foo = f"sync-{suffix}", f"team-{suffix}", f"kube-foo-{suffix}"
    protected = ["kube-node-lease", "kube-public", "default", kube_foo]
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {**{f"{name}.yaml": ns(name) for name in protected}, "team.yaml": ns(team), "cm.yaml": cm("a", team)}
    )
    adopted = _sync(cluster, repo, sync_name)
    assert adopted.ok, [p.render() for p in adopted.problems]
    _adopt_own_namespace(cluster, sync_name)
    for name in [*protected, api.SYSTEM_NAMESPACE]:
        live = get(cluster, f"/api/v1/namespaces/{name}")
        assert live is not None and metadata.owner(live) == sync_name

    repo.commit({f"{name}.yaml": None for name in protected})
    result = _sync(cluster, repo, sync_name)

    assert result.ok, [p.render() for p in result.problems]
    assert result.status.state.value == "SYNCED"
    assert {
        r.change.id.name: r.outcome.value
        for r in result.results
        if r.change.id.kind == "Namespace" and r.change.id.name != team
    } == dict.fromkeys([*protected, api.SYSTEM_NAMESPACE], "unmanaged")
    for name in [*protected, api.SYSTEM_NAMESPACE]:
        live = get(cluster, f"/api/v1/namespaces/{name}")
        assert live is not None, f"{name} was deleted"
        assert not live["metadata"].get("deletionTimestamp"), f"{name} is being deleted"
        assert metadata.owner(live) is None
        assert not set(live["metadata"].get("labels") or {}) & set(metadata.MARK_LABELS)
        assert not set(live["metadata"].get("annotations") or {}) & set(metadata.MARK_ANNOTATIONS)
    status = store.read(cluster, sync_name)
    assert status is not None and status["status"]["state"] == "SYNCED"
    assert ObjectId("", "Namespace", "", "default") not in inventory.read(cluster, sync_name)
