"""``client.lifecycle.config.k8s.io/mutation: ignore`` against a real API server: the object is
created when missing; afterwards neither a pass nor the daemon's drift repair changes it, a
change in Git is not applied, a deletion is repaired, and leaving the source prunes it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from acm_lite import metadata
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns

IGNORE = {metadata.MUTATION: metadata.IGNORE_MUTATION}
MERGE = "application/merge-patch+json"


def _spec(repo: GitRepo, name: str) -> SyncSpec:
    return SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")


def _sync(
    cluster: Cluster, repo: GitRepo, name: str, tmp_path: Path, **options: object
) -> pipeline.SyncResult:
    result = pipeline.run(_spec(repo, name), cluster, SyncOptions(git_cache=tmp_path / "cache", **options))  # type: ignore[arg-type]
    assert result.ok, [p.render() for p in result.problems]
    return result


def test_created_when_missing_then_never_changed_and_pruned_when_removed(
    control_plane: APIServer, tmp_path: Path
) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"mi-{suffix}", f"mi-{suffix}"
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "seed.yaml": cm("seed", namespace, IGNORE),
            "other.yaml": cm("other", namespace),
        }
    )

    first = _sync(cluster, repo, name, tmp_path)
    assert first.counts["created"] == 3
    seed = get(cluster, f"{path}/seed")
    assert seed is not None and seed["data"] == {"k": "v"}
    assert seed["metadata"]["labels"][metadata.SYNC_LABEL] == name

    # Edited live: a pass leaves the edit.
    cluster.request("PATCH", f"{path}/seed", body={"data": {"k": "edited"}}, content_type=MERGE)
    version = get(cluster, f"{path}/seed")["metadata"]["resourceVersion"]  # type: ignore[index]
    second = _sync(cluster, repo, name, tmp_path)
    assert second.applied == 0
    after = get(cluster, f"{path}/seed")
    assert after is not None and after["data"] == {"k": "edited"}
    assert after["metadata"]["resourceVersion"] == version  # not even a no-op write

    # Changed in Git: not applied; the other object, without the annotation, is.
    repo.commit(
        {
            "seed.yaml": cm("seed", namespace, IGNORE, data={"k": "from-git"}),
            "other.yaml": cm("other", namespace, data={"k": "from-git"}),
        }
    )
    plan = _sync(cluster, repo, name, tmp_path, plan_only=True)
    assert plan.changeset is not None
    planned = {c.id.name: c.action.value for c in plan.changeset.changes if c.id.kind == "ConfigMap"}
    assert planned == {"seed": "unchanged", "other": "update"}
    _sync(cluster, repo, name, tmp_path)
    assert get(cluster, f"{path}/seed")["data"] == {"k": "edited"}  # type: ignore[index]
    assert get(cluster, f"{path}/other")["data"] == {"k": "from-git"}  # type: ignore[index]

    # Deleted: created again from Git.
    cluster.request("DELETE", f"{path}/seed")
    _sync(cluster, repo, name, tmp_path)
    assert get(cluster, f"{path}/seed")["data"] == {"k": "from-git"}  # type: ignore[index]

    # Annotation removed from Git: applied as any other object again.
    cluster.request("PATCH", f"{path}/seed", body={"data": {"k": "edited"}}, content_type=MERGE)
    repo.commit({"seed.yaml": cm("seed", namespace, data={"k": "from-git"})})
    _sync(cluster, repo, name, tmp_path)
    assert get(cluster, f"{path}/seed")["data"] == {"k": "from-git"}  # type: ignore[index]

    # Annotation back, then the object leaves the source: pruned as usual.
    repo.commit({"seed.yaml": cm("seed", namespace, IGNORE, data={"k": "from-git"})})
    _sync(cluster, repo, name, tmp_path)
    repo.commit({"seed.yaml": None})
    _sync(cluster, repo, name, tmp_path)
    assert get(cluster, f"{path}/seed") is None


def test_an_unmanaged_object_is_adopted_without_changing_its_fields(
    control_plane: APIServer, tmp_path: Path
) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"ma-{suffix}", f"ma-{suffix}"
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    cluster.request("POST", "/api/v1/namespaces", body=ns(namespace))
    cluster.request("POST", path, body={**cm("seed", namespace), "data": {"k": "theirs"}})
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace), "seed.yaml": cm("seed", namespace, IGNORE)})

    _sync(cluster, repo, name, tmp_path)
    seed = get(cluster, f"{path}/seed")
    assert seed is not None and seed["data"] == {"k": "theirs"}
    assert seed["metadata"]["labels"][metadata.SYNC_LABEL] == name
    # the test's own create counts as acm-lite's Update; the apply owns the marks, not the data
    [applied] = [m for m in seed["metadata"]["managedFields"] if m["operation"] == "Apply"]
    assert applied["manager"] == "acm-lite"
    assert "f:data" not in applied["fieldsV1"]
    assert metadata.SYNC_LABEL in str(applied["fieldsV1"]["f:metadata"]["f:labels"])

    repo.commit({"seed.yaml": None})
    _sync(cluster, repo, name, tmp_path)
    assert get(cluster, f"{path}/seed") is None  # adopted, so pruned like any other


def test_the_daemon_does_not_revert_an_edit_but_recreates_a_deletion(
    control_plane: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"md-{suffix}", f"md-{suffix}"
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "seed.yaml": cm("seed", namespace, IGNORE),
            "guard.yaml": cm("guard", namespace),
        }
    )
    cluster = Cluster.connect(control_plane.kubeconfig)
    daemon = Daemon(
        [(_spec(repo, name), lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache"),
        DaemonOptions(period=0.3),
    )
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(
            lambda: get(cluster, f"{path}/seed") is not None and get(cluster, f"{path}/guard") is not None
        )
        eventually(lambda: worker.remediator is not None)
        cluster.request("PATCH", f"{path}/seed", body={"data": {"k": "edited"}}, content_type=MERGE)
        cluster.request("PATCH", f"{path}/guard", body={"data": {"k": "edited"}}, content_type=MERGE)
        # The object without the annotation is repaired: the remediator is at work...
        eventually(lambda: (get(cluster, f"{path}/guard") or {}).get("data") == {"k": "v"}, 5)
        time.sleep(1.5)  # ...and several polls and watch events later, the ignored one is not.
        assert get(cluster, f"{path}/seed")["data"] == {"k": "edited"}  # type: ignore[index]
        cluster.request("DELETE", f"{path}/seed")
        eventually(lambda: (get(cluster, f"{path}/seed") or {}).get("data") == {"k": "v"}, 5)
    finally:
        daemon.stop()
