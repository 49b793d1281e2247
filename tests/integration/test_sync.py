"""`sync --once` against a real API server: apply, re-sync, drift, prune, ownership, failures."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite import metadata
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.plan.changeset import Outcome
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns, obj

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"}
_METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")


@pytest.fixture(scope="session")
def cluster(control_plane: APIServer) -> Cluster:
    return Cluster.connect(control_plane.kubeconfig)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "git")


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A sync name and a namespace name unique to the test."""
    suffix = uuid.uuid4().hex[:8]
    yield f"sync-{suffix}", f"ns-{suffix}"


def server_writes(cluster: Cluster) -> int:
    """Write requests the API server has counted, apart from its own lease renewals."""
    text = cluster.request_text("/metrics")
    total = 0
    for line in text.splitlines():
        match = _METRIC.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") not in ("leases", "events"):
            total += int(float(match.group("value")))
    return total


def sync(cluster: Cluster, repo: GitRepo, name: str, **options: Any) -> pipeline.SyncResult:
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=repo.bare.parent / "cache", **options))


def outcomes(result: pipeline.SyncResult) -> dict[str, str]:
    return {r.change.subject: r.outcome.value for r in result.results if r.outcome is not Outcome.UNCHANGED}


def test_first_sync_resync_change_and_prune(cluster: Cluster, repo: GitRepo, names: tuple[str, str]) -> None:
    sync_name, namespace = names
    first = repo.commit(
        {"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace), "b.yaml": cm("b", namespace)}
    )
    result = sync(cluster, repo, sync_name)
    assert result.ok, [p.render() for p in result.problems]
    assert result.counts["created"] == 3
    live = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")
    assert live is not None
    labels, annotations = live["metadata"]["labels"], live["metadata"]["annotations"]
    assert labels[metadata.MANAGED_BY_LABEL] == "acm-lite"
    assert labels[metadata.SYNC_LABEL] == sync_name
    assert annotations[metadata.COMMIT] == first
    assert annotations[metadata.SOURCE_PATH] == "a.yaml"
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == ["acm-lite"]

    status = store.read(cluster, sync_name)
    assert status is not None
    assert status["status"]["state"] == "SYNCED"
    assert status["status"]["lastSyncedCommit"] == first
    assert status["status"]["managedObjects"] == 3
    assert status["spec"]["git"] == {"repo": repo.url, "revision": "main", "dir": "."}

    before = server_writes(cluster)
    again = sync(cluster, repo, sync_name)
    assert again.ok and again.counts["unchanged"] == 3
    assert server_writes(cluster) - before == 0  # a no-op re-sync writes nothing at all

    repo.commit({"a.yaml": {**cm("a", namespace), "data": {"k": "changed"}}, "b.yaml": None})
    changed = sync(cluster, repo, sync_name)
    assert changed.ok
    assert outcomes(changed) == {
        f"ConfigMap {namespace}/a": "configured",
        f"ConfigMap {namespace}/b": "pruned",
    }
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")["data"] == {"k": "changed"}
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/b") is None


def test_drift_is_repaired_on_the_next_sync(cluster: Cluster, repo: GitRepo, names: tuple[str, str]) -> None:
    sync_name, namespace = names
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    assert sync(cluster, repo, sync_name).ok
    cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/a",
        body={"data": {"k": "edited by hand"}},
        content_type="application/merge-patch+json",
    )
    repaired = sync(cluster, repo, sync_name)
    assert outcomes(repaired) == {f"ConfigMap {namespace}/a": "configured"}
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")["data"] == {"k": "v"}


def test_managed_disabled_strips_marks_and_leaves_the_object(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    assert sync(cluster, repo, sync_name).ok
    repo.commit({"a.yaml": cm("a", namespace, annotations={"configmanagement.gke.io/managed": "disabled"})})
    result = sync(cluster, repo, sync_name)
    assert result.ok
    assert outcomes(result) == {f"ConfigMap {namespace}/a": "unmanaged"}
    live = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")
    assert live is not None and live["data"] == {"k": "v"}
    assert metadata.owner(live) is None
    assert not set(live["metadata"].get("annotations") or {}) & set(metadata.MARK_ANNOTATIONS)
    repo.commit({"a.yaml": None})  # no longer managed: removing it from Git leaves it alone
    assert sync(cluster, repo, sync_name).ok
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a") is not None


def test_detach_annotation_keeps_an_object_on_removal(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "keep.yaml": cm("keep", namespace, annotations={metadata.DELETION: metadata.DETACH}),
        }
    )
    assert sync(cluster, repo, sync_name).ok
    repo.commit({"keep.yaml": None})
    result = sync(cluster, repo, sync_name)
    assert outcomes(result) == {f"ConfigMap {namespace}/keep": "unmanaged"}
    live = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/keep")
    assert live is not None and metadata.owner(live) is None


def test_objects_of_another_sync_are_never_taken_over(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    first, second = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
    first.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    assert sync(cluster, first, sync_name).ok
    second.commit({"a.yaml": {**cm("a", namespace), "data": {"k": "other"}}, "b.yaml": cm("b", namespace)})
    result = sync(cluster, second, sync_name + "-other")
    assert not result.ok
    assert [p.code.id for p in result.problems] == ["KNV1060"]
    assert outcomes(result) == {f"ConfigMap {namespace}/a": "skipped", f"ConfigMap {namespace}/b": "created"}
    live = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")
    assert live["data"] == {"k": "v"} and metadata.owner(live) == sync_name


def test_existing_unmanaged_objects_are_adopted(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    # two namespaces hold unmanaged copies; a third does not exist yet (nothing to look for there)
    sync_name, namespace = names
    spaces = [f"{namespace}-{n}" for n in range(3)]
    for space in spaces[:2]:
        cluster.request("POST", "/api/v1/namespaces", body=ns(space))
        cluster.request(
            "POST", f"/api/v1/namespaces/{space}/configmaps", body={**cm("pre", space), "data": {"k": "old"}}
        )
    files = {f"{space}.yaml": ns(space) for space in spaces}
    files.update({f"{space}-pre.yaml": cm("pre", space) for space in spaces})
    repo.commit(files)
    result = sync(cluster, repo, sync_name)
    assert result.ok
    assert {space: outcomes(result)[f"ConfigMap {space}/pre"] for space in spaces} == {
        spaces[0]: "configured",
        spaces[1]: "configured",
        spaces[2]: "created",
    }
    for space in spaces:
        live = get(cluster, f"/api/v1/namespaces/{space}/configmaps/pre")
        assert metadata.owner(live) == sync_name and live["data"] == {"k": "v"}


def test_a_rejected_object_fails_alone_and_is_retried(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    bad_service = obj(
        "v1",
        "Service",
        "bad",
        metadata={"namespace": namespace},
        spec={"type": "ClusterIP", "clusterIP": "not-an-ip", "ports": [{"port": 80}]},
    )
    repo.commit({"ns.yaml": ns(namespace), "ok.yaml": cm("ok", namespace), "svc.yaml": bad_service})
    result = sync(cluster, repo, sync_name)
    assert not result.ok
    failed = [r for r in result.results if r.outcome is Outcome.FAILED]
    assert [r.change.subject for r in failed] == [f"Service {namespace}/bad"]
    assert failed[0].problem is not None and failed[0].problem.code.id == "KNV2010"
    assert failed[0].problem.source == "svc.yaml"
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/ok") is not None
    status = store.read(cluster, sync_name)["status"]
    assert status["state"] == "ERROR" and status["errors"][0]["object"]["name"] == "bad"

    repo.commit({"svc.yaml": {**bad_service, "spec": {"ports": [{"port": 80}]}}})
    retried = sync(cluster, repo, sync_name)
    assert retried.ok
    assert outcomes(retried) == {f"Service {namespace}/bad": "created"}
    assert store.read(cluster, sync_name)["status"]["state"] == "SYNCED"


def test_blocking_source_errors_apply_nothing(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    good = repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    assert sync(cluster, repo, sync_name).ok
    repo.commit(
        {"a.yaml": {**cm("a", namespace), "data": {"k": "new"}}, "broken.yaml": "apiVersion: v1\nkind: [\n"}
    )
    before = server_writes(cluster)
    result = sync(cluster, repo, sync_name)
    assert not result.ok and [p.code.id for p in result.problems] == ["KNV1006"]
    assert result.results == []
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")["data"] == {"k": "v"}
    status = store.read(cluster, sync_name)["status"]
    assert (status["state"], status["stage"], status["lastSyncedCommit"]) == ("ERROR", "parse", good)
    assert server_writes(cluster) - before == 1  # only the status


def test_a_commit_that_would_prune_everything_is_refused(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    assert sync(cluster, repo, sync_name).ok
    repo.commit({"ns.yaml": None, "a.yaml": None})
    refused = sync(cluster, repo, sync_name)
    assert [p.code.id for p in refused.problems] == ["KNV2006"]
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a") is not None
    allowed = sync(cluster, repo, sync_name, allow_prune_all=True)
    assert allowed.ok and allowed.counts["pruned"] == 2
    assert store.read(cluster, sync_name)["status"]["managedObjects"] == 0


def test_crd_and_its_custom_resources_in_one_commit(
    cluster: Cluster, repo: GitRepo, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    group = f"{namespace}.acme.io"
    crd = obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        f"gadgets.{group}",
        spec={
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets"},
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
    gadget = obj(f"{group}/v1", "Gadget", "g1", metadata={"namespace": namespace}, spec={"size": 3})
    repo.commit({"ns.yaml": ns(namespace), "crd.yaml": crd, "gadget.yaml": gadget})
    result = sync(cluster, repo, sync_name)
    assert result.ok, [p.render() for p in result.problems]
    assert result.counts["created"] == 3
    live = get(cluster, f"/apis/{group}/v1/namespaces/{namespace}/gadgets/g1")
    assert live is not None and live["spec"] == {"size": 3}


def test_depends_on_orders_applies(cluster: Cluster, repo: GitRepo, names: tuple[str, str]) -> None:
    sync_name, namespace = names
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "first.yaml": cm("first", namespace),
            "second.yaml": cm(
                "second",
                namespace,
                annotations={"config.kubernetes.io/depends-on": f"/namespaces/{namespace}/ConfigMap/first"},
            ),
        }
    )
    order: list[str] = []
    spec = SyncSpec(repo=repo.url, name=sync_name, revision="main", source_format="unstructured")
    result = pipeline.run(
        spec,
        cluster,
        SyncOptions(git_cache=repo.bare.parent / "cache"),
        on_result=lambda r: order.append(r.change.id.name),
    )
    assert result.ok
    assert order.index("first") < order.index("second")
    assert order.index(namespace) < order.index("first")


def test_dry_run_writes_nothing(cluster: Cluster, repo: GitRepo, names: tuple[str, str]) -> None:
    sync_name, namespace = names
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    before = server_writes(cluster)
    result = sync(cluster, repo, sync_name, dry_run=True)
    assert result.ok and result.counts["created"] == 2
    assert get(cluster, f"/api/v1/namespaces/{namespace}") is None
    assert store.read(cluster, sync_name) is None
    # the Namespace's dry-run apply was sent (the API server validated it) but persisted
    # nothing; the ConfigMap in the namespace that does not exist yet could not be validated
    assert server_writes(cluster) - before == 1
    messages = {r.change.id.kind: r.message for r in result.results}
    assert messages == {
        "Namespace": "",
        "ConfigMap": "not validated: its namespace would be created by this sync",
    }


def test_a_denied_object_blocks_the_commit(cluster: Cluster, repo: GitRepo, names: tuple[str, str]) -> None:
    from acm_lite.policy.library import PolicySources

    sync_name, namespace = names
    good = repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    baseline = PolicySources(("pod-security-baseline",))
    assert sync(cluster, repo, sync_name, policies=baseline).ok
    privileged = obj(
        "v1",
        "Pod",
        "root-shell",
        metadata={"namespace": namespace},
        spec={
            "containers": [
                {"name": "sh", "image": "registry.acme.io/sh:1", "securityContext": {"privileged": True}}
            ]
        },
    )
    repo.commit({"a.yaml": {**cm("a", namespace), "data": {"k": "new"}}, "pod.yaml": privileged})
    before = server_writes(cluster)
    blocked = sync(cluster, repo, sync_name, policies=baseline)
    assert [p.code.id for p in blocked.problems] == ["ACM3100"]
    assert blocked.results == []
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a")["data"] == {"k": "v"}
    assert get(cluster, f"/api/v1/namespaces/{namespace}/pods/root-shell") is None
    status = store.read(cluster, sync_name)["status"]
    assert (status["state"], status["stage"], status["lastSyncedCommit"]) == ("ERROR", "policy", good)
    assert status["errors"][0]["code"] == "ACM3100"
    assert server_writes(cluster) - before == 1  # only the status
