"""The render stage in the daemon's loop, against a real API server with the real kustomize and
helm: a render that runs out of time (KNV2016) is transient, so the worker backs off and renders
again until it succeeds; a kustomization that fails (KNV1068) is the commit's fault, backed off
from while the daemon stays ready."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from acm_lite import render
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import ns

CHART = {
    "charts/hello/Chart.yaml": {"apiVersion": "v2", "name": "hello", "version": "0.1.0"},
    "charts/hello/values.yaml": {},
    "charts/hello/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\n"
        "  namespace: {{ .Release.Namespace }}\ndata:\n  k: v\n"
    ),
}


pytestmark = pytest.mark.usefixtures("fresh_render_cache")


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(((store.read(cluster, name) or {}).get("status")) or {})


def test_a_render_out_of_time_is_retried_with_backoff_until_it_succeeds(
    control_plane: APIServer, tmp_path: Path, runs: list[list[str]]
) -> None:
    tools = binaries.ensure_all(["kustomize", "helm"])
    allowed = tmp_path / "helm-may-run"
    helm = tmp_path / "helm"  # stalls until allowed, then is the real helm
    helm.write_text(f'#!/bin/sh\n[ -e {allowed} ] || exec sleep 60\nexec {tools["helm"]} "$@"\n')
    helm.chmod(0o755)
    name, namespace = f"rd-{uuid.uuid4().hex[:6]}", f"rd-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    commit = repo.commit(
        {
            **CHART,
            "ns.yaml": ns(namespace),
            "kustomization.yaml": {
                "resources": ["ns.yaml"],
                "helmCharts": [{"name": "hello", "releaseName": "rel", "namespace": namespace}],
            },
        }
    )
    cluster = Cluster.connect(control_plane.kubeconfig)
    options = render.Options(
        kustomize=tools["kustomize"],
        helm=helm,
        timeout_seconds=1,
        work_dir=tmp_path,
        cache_dir=tmp_path / "r",
    )
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache", render=options),
        DaemonOptions(period=0.2, backoff_max=0.8, unready_after=600),
    )
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: worker.failures >= 3, 60)
        status = status_of(cluster, name)
        assert (status["state"], status["stage"], status["commit"]) == ("ERROR", "render", commit)
        assert [(e["code"], e["source"]) for e in status["errors"]] == [("KNV2016", "kustomization.yaml")]
        assert len(runs) >= 3  # the same commit rendered again: a failure is never cached
        assert worker.delay() > 0.2  # backed off
        assert worker.failing_since is not None  # transient: not the commit's fault
        assert get(cluster, f"/api/v1/namespaces/{namespace}") is None  # nothing applied

        allowed.touch()
        eventually(lambda: worker.synced_commit == commit, 60)
        assert worker.failures == 0 and worker.failing_since is None
        made = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/rel-hello")
        assert made is not None and made["data"] == {"k": "v"}
        status = status_of(cluster, name)
        assert (status["state"], status["stage"], status["errors"]) == ("SYNCED", "", [])
        assert status["rendering"]["message"] == "Rendering succeeded"
    finally:
        daemon.stop(30)


def test_a_kustomization_that_fails_is_backed_off_from_and_the_daemon_stays_ready(
    control_plane: APIServer, tmp_path: Path, runs: list[list[str]]
) -> None:
    tools = binaries.ensure_all(["kustomize", "helm"])
    name = f"rd-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"kustomization.yaml": {"resources": ["missing.yaml"]}})
    cluster = Cluster.connect(control_plane.kubeconfig)
    options = render.Options(kustomize=tools["kustomize"], helm=tools["helm"], work_dir=tmp_path)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache", render=options),
        DaemonOptions(period=0.1, backoff_max=0.4, unready_after=0.5),
    )
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: worker.failures >= 3, 60)
        status = status_of(cluster, name)
        assert (status["state"], status["stage"]) == ("ERROR", "render")
        assert [(e["code"], e["source"]) for e in status["errors"]] == [("KNV1068", "kustomization.yaml")]
        assert worker.failing_since is None  # the commit's fault: the pod stays ready
        assert daemon.ready()
    finally:
        daemon.stop(30)
