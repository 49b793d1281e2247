"""Waiting for health against a real API server: depends-on holds a dependent back until its
dependency is Current (the test writes the dependency's status, as its controller would), skips it
when the dependency is Failed or never converges, and a pass with ``wait`` reads every applied
object until it is Current."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite import errors, health
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.health import Status
from acm_lite.plan.changeset import Outcome
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.support.health import CURRENT, FAILED, deployment, deployment_path, when_created, write_status
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns


@pytest.fixture(scope="session")
def cluster(control_plane: APIServer) -> Cluster:
    return Cluster.connect(control_plane.kubeconfig)


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    yield f"sync-{suffix}", f"ns-{suffix}"


def sync(cluster: Cluster, repo: GitRepo, name: str, **options: Any) -> pipeline.SyncResult:
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=repo.bare.parent / "cache", **options))


def outcome(result: pipeline.SyncResult, name: str) -> tuple[Outcome, str | None]:
    found = next(r for r in result.results if r.change.id.name == name)
    return found.outcome, found.problem.code.id if found.problem else None


def _commit(tmp_path: Path, namespace: str) -> GitRepo:
    """A Deployment ``db``, a ConfigMap ``app`` that depends on it and one ``other`` that does not."""
    repo = GitRepo(tmp_path / "git")
    depends = {"config.kubernetes.io/depends-on": f"apps/namespaces/{namespace}/Deployment/db"}
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "db.yaml": deployment("db", namespace),
            "app.yaml": cm("app", namespace, annotations=depends),
            "other.yaml": cm("other", namespace),
        }
    )
    return repo


def test_a_dependent_waits_until_its_dependency_is_current(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo = _commit(tmp_path, namespace)
    db, app = deployment_path("db", namespace), f"/api/v1/namespaces/{namespace}/configmaps/app"
    seen_before_current: list[dict[str, Any] | None] = []

    def make_current() -> None:
        seen_before_current.append(get(cluster, app))  # the sync is still waiting: not applied
        write_status(cluster, db, CURRENT)

    writer = when_created(cluster, db, make_current, settle=1.5)
    started = time.monotonic()
    result = sync(cluster, repo, sync_name, reconcile_timeout=60)
    writer.join(5)
    assert result.ok, [p.render() for p in result.problems]
    assert seen_before_current == [None]
    assert time.monotonic() - started >= 1.5
    assert outcome(result, "app") == (Outcome.CREATED, None)
    assert get(cluster, app) is not None


def test_a_dependent_of_a_failed_dependency_is_skipped_and_the_rest_applied(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo = _commit(tmp_path, namespace)
    db = deployment_path("db", namespace)
    writer = when_created(cluster, db, lambda: write_status(cluster, db, FAILED))
    result = sync(cluster, repo, sync_name, reconcile_timeout=60)
    writer.join(5)
    assert outcome(result, "app") == (Outcome.SKIPPED, "ACM2004")
    assert outcome(result, "other") == (Outcome.CREATED, None)
    assert outcome(result, "db") == (Outcome.CREATED, None)
    problem = next(p for p in result.problems if p.code is errors.DEPENDENCY_FAILED)
    assert problem.message == (
        f"not applied: apps/Deployment {namespace}/db, which ConfigMap {namespace}/app depends on, "
        "is Failed (ProgressDeadlineExceeded): Progress deadline exceeded"
    )
    assert problem.source == "app.yaml"
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/app") is None
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/other") is not None


def test_a_dependent_of_a_dependency_that_never_converges_is_skipped_after_the_timeout(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo = _commit(tmp_path, namespace)
    started = time.monotonic()
    result = sync(cluster, repo, sync_name, reconcile_timeout=2)
    assert 2 <= time.monotonic() - started < 30
    assert outcome(result, "app") == (Outcome.SKIPPED, "ACM2004")
    assert outcome(result, "other") == (Outcome.CREATED, None)
    problem = next(p for p in result.problems if p.code is errors.DEPENDENCY_FAILED)
    assert problem.message == (
        f"not applied: apps/Deployment {namespace}/db, which ConfigMap {namespace}/app depends on, "
        "is not Current after 2s: InProgress (LessReplicas): Replicas: 0/1"
    )


def test_a_pass_that_waits_reads_every_object_until_current(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "web.yaml": deployment("web", namespace),
            **{f"cm{i}.yaml": cm(f"cm{i}", namespace) for i in range(3)},
        }
    )
    web = deployment_path("web", namespace)
    writer = when_created(cluster, web, lambda: write_status(cluster, web, CURRENT), settle=0.5)
    result = sync(cluster, repo, sync_name, wait=True, reconcile_timeout=60)
    writer.join(5)
    assert result.ok, [p.render() for p in result.problems]
    waited = result.waited
    assert waited is not None and not waited.timed_out
    assert {str(t.id): waited.health[t.id].status for t in waited.targets} == {
        f"Namespace {namespace}": Status.CURRENT,
        f"apps/Deployment {namespace}/web": Status.CURRENT,
        **{f"ConfigMap {namespace}/cm{i}": Status.CURRENT for i in range(3)},
    }
    assert "wait" in result.status.durations

    # the next commit leaves the Deployment InProgress (a new generation nobody observes)
    repo.commit(
        {
            "web.yaml": {
                **deployment("web", namespace),
                "spec": {**deployment("web", namespace)["spec"], "replicas": 2},
            }
        }
    )
    stuck = sync(cluster, repo, sync_name, wait=True, reconcile_timeout=1.5)
    assert not stuck.ok
    assert [(p.code, p.message) for p in stuck.problems] == [
        (
            errors.APPLY_ERROR,
            f"failed to wait for apps/Deployment {namespace}/web: reconcile timeout after 1.5s: InProgress "
            "(LatestGenerationNotObserved): Deployment generation is 2, but latest observed generation is 1",
        )
    ]
    obj = stuck.problems[0].obj or {}
    assert (obj.get("kind"), obj.get("namespace"), obj.get("name")) == ("Deployment", namespace, "web")
    assert stuck.problems[0].source == "web.yaml"
    assert stuck.status.state.value == "SYNCED"  # the status records the apply; health is apart


def widget_crd(group: str) -> dict[str, Any]:
    """A CRD whose objects have a status subresource; their status starts out Reconciling (a
    schema default) until something writes it, as a controller of them would."""
    reconciling = {
        "conditions": [{"type": "Reconciling", "status": "True", "reason": "Pending", "message": "new"}]
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                "status": {
                                    "type": "object",
                                    "default": reconciling,
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def test_a_custom_resource_that_reports_stalled_fails_the_wait(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    group = f"{namespace}.health.test"
    repo = GitRepo(tmp_path / "git")
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": namespace},
        "spec": {"size": 3},
    }
    repo.commit({"crd.yaml": widget_crd(group), "ns.yaml": ns(namespace), "w.yaml": widget})
    path = f"/apis/{group}/v1/namespaces/{namespace}/widgets/w"
    stalled = {
        "conditions": [{"type": "Stalled", "status": "True", "reason": "NoCapacity", "message": "size 3"}]
    }
    seen: list[Status] = []

    def stall() -> None:
        seen.append(health.compute(get(cluster, path)).status)  # before anything wrote its status
        write_status(cluster, path, stalled)

    writer = when_created(cluster, path, stall, settle=0.5)
    try:
        result = sync(cluster, repo, sync_name, wait=True, reconcile_timeout=60)
        writer.join(5)
        assert seen == [Status.IN_PROGRESS]
        assert [(p.code, p.message) for p in result.problems] == [
            (
                errors.APPLY_ERROR,
                f"failed to wait for {group}/Widget {namespace}/w: reconcile failed: "
                "Failed (NoCapacity): size 3",
            )
        ]
        assert result.waited is not None and not result.waited.timed_out
    finally:
        cluster.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
