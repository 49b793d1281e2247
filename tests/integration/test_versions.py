"""Objects declared at served, non-preferred API versions, against a real API server: applied,
read, compared, repaired and pruned at the version they were declared with."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cli.main import main
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.objects import GroupKind
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.reconcile.remediator import Remediator
from tests.integration.test_sync import outcomes, server_writes
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import ns, obj

MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    return Cluster.connect(control_plane.kubeconfig)


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    yield f"sync-{suffix}", f"ns-{suffix}"


def _schema() -> dict[str, Any]:
    return {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"size": {"type": "integer"}, "color": {"type": "string"}},
                }
            },
        }
    }


def widget_crd(group: str) -> dict[str, Any]:
    """v1 served but not stored, v2 served and stored; no conversion webhook needed."""
    return obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        f"widgets.{group}",
        spec={
            "group": group,
            "scope": "Namespaced",
            "conversion": {"strategy": "None"},
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [
                {"name": "v1", "served": True, "storage": False, "schema": _schema()},
                {"name": "v2", "served": True, "storage": True, "schema": _schema()},
            ],
        },
    )


def widget(group: str, version: str, name: str, namespace: str, size: int) -> dict[str, Any]:
    return obj(
        f"{group}/{version}",
        "Widget",
        name,
        metadata={"namespace": namespace},
        spec={"size": size, "color": "blue"},
    )


def hpa_v1(namespace: str) -> dict[str, Any]:
    return obj(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "h1",
        metadata={"namespace": namespace},
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50,
        },
    )


def hpa_v2(namespace: str) -> dict[str, Any]:
    return obj(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "h2",
        metadata={"namespace": namespace},
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                }
            ],
        },
    )


def repo_files(group: str, namespace: str) -> dict[str, Any]:
    return {
        "ns.yaml": ns(namespace),
        "crd.yaml": widget_crd(group),
        "w1.yaml": widget(group, "v1", "w1", namespace, 1),
        "w2.yaml": widget(group, "v2", "w2", namespace, 2),
        "h1.yaml": hpa_v1(namespace),
        "h2.yaml": hpa_v2(namespace),
    }


def _deletes(cluster: Cluster) -> Counter[tuple[str, str, str]]:
    """DELETE requests the API server has counted, by group, version and resource (not those of
    acm-lite's own record, whose superseded parts each write deletes)."""
    counted: Counter[tuple[str, str, str]] = Counter()
    for line in cluster.request_text("/metrics").splitlines():
        if line.startswith("apiserver_request_total{") and 'verb="DELETE"' in line:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels["resource"] == "resourceinventories":
                continue
            counted[labels["group"], labels["version"], labels["resource"]] += int(
                float(line.rsplit(" ", 1)[1])
            )
    return counted


def _lists(cluster: Cluster, path: str) -> bool:
    """Whether the collection answers (its storage is re-initialised after a CRD change)."""
    try:
        cluster.request("GET", path)
    except ApiError:
        return False
    return True


def sync(cluster: Cluster, repo: GitRepo, name: str, **options: Any) -> pipeline.SyncResult:
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=repo.bare.parent / "cache", **options))


def test_objects_at_every_served_version(
    cluster: Cluster,
    tmp_path: Path,
    names: tuple[str, str],
    *,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    control_plane: APIServer,
) -> None:
    sync_name, namespace = names
    group = f"{namespace}.acme.io"
    repo = GitRepo(tmp_path / "git")
    repo.commit(repo_files(group, namespace))
    w1 = f"/apis/{group}/v1/namespaces/{namespace}/widgets/w1"
    h1 = f"/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/h1"

    first = sync(cluster, repo, sync_name)
    assert first.ok, [p.render() for p in first.problems]
    assert first.counts["created"] == 6
    live_w1 = get(cluster, w1)
    assert live_w1 is not None and live_w1["spec"] == {"size": 1, "color": "blue"}
    live_h1 = get(cluster, h1)
    assert live_h1 is not None and live_h1["spec"]["targetCPUUtilizationPercentage"] == 50

    before = server_writes(cluster)
    again = sync(cluster, repo, sync_name)
    assert again.ok, [p.render() for p in again.problems]
    assert again.counts["unchanged"] == 6, outcomes(again)
    assert server_writes(cluster) - before == 0

    # `acm-lite diff` of the synced repository shows nothing
    monkeypatch.setenv("KUBECONFIG", control_plane.kubeconfig)
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cli-cache"))
    capsys.readouterr()
    code = main(
        [
            "diff",
            "--repo",
            repo.url,
            "--revision",
            "main",
            "--source-format",
            "unstructured",
            "--name",
            sync_name,
        ]
    )
    shown = capsys.readouterr()
    assert (code, shown.out) == (0, ""), shown

    # kubectl-like edits through the API at the other version; the next sync repairs them
    cluster.request(
        "PATCH",
        f"/apis/{group}/v2/namespaces/{namespace}/widgets/w1",
        body={"spec": {"size": 9}},
        content_type=MERGE,
    )
    cluster.request(
        "PATCH",
        f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/h1",
        body={"spec": {"maxReplicas": 7}},
        content_type=MERGE,
    )
    repaired = sync(cluster, repo, sync_name)
    assert repaired.ok, [p.render() for p in repaired.problems]
    assert outcomes(repaired) == {
        f"{group}/Widget {namespace}/w1": "configured",
        f"autoscaling/HorizontalPodAutoscaler {namespace}/h1": "configured",
    }
    assert get(cluster, w1)["spec"]["size"] == 1  # type: ignore[index]
    assert get(cluster, h1)["spec"]["maxReplicas"] == 3  # type: ignore[index]

    # w1 moves from v1 to v2: updated in place, neither pruned nor created
    repo.commit({"w1.yaml": widget(group, "v2", "w1", namespace, 5)})
    moved = sync(cluster, repo, sync_name)
    assert moved.ok, [p.render() for p in moved.problems]
    assert outcomes(moved) == {f"{group}/Widget {namespace}/w1": "configured"}
    assert get(cluster, w1)["spec"]["size"] == 5  # type: ignore[index]
    assert sync(cluster, repo, sync_name).counts["unchanged"] == 6

    repo.commit({"w1.yaml": None, "w2.yaml": None, "h1.yaml": None, "h2.yaml": None})
    deletes = _deletes(cluster)
    pruned = sync(cluster, repo, sync_name)
    assert pruned.ok, [p.render() for p in pruned.problems]
    assert set(outcomes(pruned).values()) == {"pruned"} and len(outcomes(pruned)) == 4
    # each removed at the version it was declared with (h1 at autoscaling/v1, not v2)
    assert _deletes(cluster) - deletes == Counter(
        {
            ("autoscaling", "v1", "horizontalpodautoscalers"): 1,
            ("autoscaling", "v2", "horizontalpodautoscalers"): 1,
            (group, "v2", "widgets"): 2,
        }
    )
    assert get(cluster, w1) is None and get(cluster, h1) is None


def test_drift_is_watched_and_repaired_at_the_declared_version(
    cluster: Cluster, tmp_path: Path, names: tuple[str, str]
) -> None:
    sync_name, namespace = names
    group = f"{namespace}.acme.io"
    repo = GitRepo(tmp_path / "git")
    repo.commit(repo_files(group, namespace))
    discovery = Discovery(cluster)  # as a daemon's: older than the CRD the pass creates
    result = sync(cluster, repo, sync_name)
    assert result.ok and result.changeset is not None, [p.render() for p in result.problems]
    remediator = Remediator(cluster, discovery, sync_name, metrics=Metrics(), allowed=lambda: True)
    remediator.update(result.changeset)
    try:
        w1 = f"/apis/{group}/v1/namespaces/{namespace}/widgets/w1"
        h1 = f"/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/h1"
        cluster.request(
            "PATCH",
            f"/apis/{group}/v2/namespaces/{namespace}/widgets/w1",
            body={"spec": {"size": 9}},
            content_type=MERGE,
        )
        cluster.request(
            "PATCH",
            f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/h1",
            body={"spec": {"maxReplicas": 7}},
            content_type=MERGE,
        )
        eventually(lambda: (get(cluster, w1) or {}).get("spec", {}).get("size") == 1)
        eventually(lambda: (get(cluster, h1) or {}).get("spec", {}).get("maxReplicas") == 3)
    finally:
        remediator.stop()


def test_a_version_no_longer_served(cluster: Cluster, tmp_path: Path, names: tuple[str, str]) -> None:
    """Objects recorded at a version the cluster stopped serving are pruned at a served one;
    objects still declared at it fail with a code."""
    sync_name, namespace = names
    group = f"{namespace}.acme.io"
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "crd.yaml": widget_crd(group),
            "w1.yaml": widget(group, "v1", "w1", namespace, 1),
            "w2.yaml": widget(group, "v1", "w2", namespace, 2),
        }
    )
    assert sync(cluster, repo, sync_name).ok
    dropped = widget_crd(group)
    dropped["spec"]["versions"][0]["served"] = False
    cluster.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}",
        body={"spec": {"versions": dropped["spec"]["versions"]}},
        content_type=MERGE,
    )
    eventually(lambda: Discovery(cluster).versions(GroupKind(group, "Widget")) == ["v2"])
    eventually(lambda: _lists(cluster, f"/apis/{group}/v2/namespaces/{namespace}/widgets"))
    repo.commit({"crd.yaml": dropped, "w1.yaml": None})

    result = sync(cluster, repo, sync_name)
    assert outcomes(result).get(f"{group}/Widget {namespace}/w1") == "pruned", (
        [r.to_dict() for r in result.results],
        [p.render() for p in result.problems],
    )
    assert [(p.code.id, (p.obj or {}).get("name")) for p in result.problems] == [("ACM2030", "w2")], [
        p.render() for p in result.problems
    ]
    assert get(cluster, f"/apis/{group}/v2/namespaces/{namespace}/widgets/w1") is None
    assert get(cluster, f"/apis/{group}/v2/namespaces/{namespace}/widgets/w2") is not None
