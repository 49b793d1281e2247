"""Dynamic NamespaceSelectors against a real API server: a sync selects live Namespaces with
matching labels, and the daemon runs a pass when a live Namespace's labels change."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns, obj


def _repo(repo: GitRepo, team: str, mode: str) -> str:
    selector = obj(
        "configmanagement.gke.io/v1",
        "NamespaceSelector",
        "team",
        spec={"mode": mode, "selector": {"matchLabels": {"team": team}}},
    )
    return repo.commit(
        {
            "sel.yaml": selector,
            "declared.yaml": ns(f"{team}-declared", {"team": team}),
            "cm.yaml": cm("team-config", annotations={"configmanagement.gke.io/namespace-selector": "team"}),
        }
    )


def _namespace(cluster: Cluster, name: str, labels: dict[str, str]) -> None:
    cluster.request(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
    )


def _label(cluster: Cluster, name: str, labels: dict[str, Any]) -> None:
    cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{name}",
        body={"metadata": {"labels": labels}},
        content_type="application/merge-patch+json",
    )


def _config_in(cluster: Cluster, namespace: str) -> bool:
    return get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/team-config") is not None


def test_sync_selects_live_namespaces_only_in_dynamic_mode(control_plane: APIServer, tmp_path: Path) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    team = f"dyn-{uuid.uuid4().hex[:6]}"
    _namespace(cluster, f"{team}-live", {"team": team})
    repo = GitRepo(tmp_path / "git")
    spec = SyncSpec(repo=repo.url, name=team, revision="main", source_format="unstructured")
    options = SyncOptions(git_cache=tmp_path / "cache")

    _repo(repo, team, "static")
    result = pipeline.run(spec, cluster, options)
    assert result.ok, [p.render() for p in result.problems]
    assert _config_in(cluster, f"{team}-declared") and not _config_in(cluster, f"{team}-live")

    _repo(repo, team, "dynamic")
    result = pipeline.run(spec, cluster, options)
    assert result.ok, [p.render() for p in result.problems]
    assert _config_in(cluster, f"{team}-declared") and _config_in(cluster, f"{team}-live")


def test_daemon_follows_live_namespace_labels(control_plane: APIServer, tmp_path: Path) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    team = f"dyn-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    _repo(repo, team, "dynamic")
    spec = SyncSpec(repo=repo.url, name=team, revision="main", source_format="unstructured")
    # a long period: only the namespace watch can explain a pass within the test's waits
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache"),
        DaemonOptions(period=600, drift_repair=False),
    )
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: _config_in(cluster, f"{team}-declared"), 30)
        eventually(lambda: worker.namespace_watch is not None and worker.namespace_watch.watching)
        passes = worker.passes

        _namespace(cluster, f"{team}-new", {"team": team})  # created with matching labels
        eventually(lambda: _config_in(cluster, f"{team}-new"), 30)
        _namespace(cluster, f"{team}-other", {"team": "someone-else"})
        _label(cluster, f"{team}-other", {"team": team})  # relabelled to match
        eventually(lambda: _config_in(cluster, f"{team}-other"), 30)
        _label(cluster, f"{team}-new", {"team": None})  # no longer matches: its copy is pruned
        eventually(lambda: not _config_in(cluster, f"{team}-new"), 30)
        assert worker.passes > passes
    finally:
        daemon.stop()
