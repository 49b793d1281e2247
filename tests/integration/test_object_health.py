"""Each managed object's health against a real API server: the test writes the objects' status
(a Deployment's status subresource, a custom resource reporting Stalled) as a controller would,
and the pass, the daemon, `status --resources`, the RootSync's conditions and `kubectl wait`
follow it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from acm_lite import api
from acm_lite.apply import wait
from acm_lite.cli.main import main
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import resourcestore, store
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns

GROUP = "health.acm-lite.test"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widgets(control_plane: APIServer) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    cluster.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD['metadata']['name']}",
        query={"fieldManager": "test", "force": "true"},
        body=CRD,
        content_type="application/apply-patch+yaml",
    )
    wait.crds_established(cluster, [CRD["metadata"]["name"]])

    def listed() -> bool:  # the custom resources' storage answers 429 while it starts
        try:
            return get(cluster, f"/apis/{GROUP}/v1/widgets") is not None
        except ApiError as e:
            if e.status != 429:
                raise
            return False

    eventually(listed)


@pytest.fixture
def name() -> Iterator[str]:
    yield f"h-{uuid.uuid4().hex[:6]}"


def deployment(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def widget(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": 1},
    }


def set_status(cluster: Cluster, path: str, status: dict[str, Any]) -> None:
    """What a controller does: write the object's status subresource."""
    found = get(cluster, path)
    assert found is not None
    if "observedGeneration" in status:
        status = {**status, "observedGeneration": found["metadata"]["generation"]}
    cluster.request(
        "PATCH", f"{path}/status", body={"status": status}, content_type="application/merge-patch+json"
    )


def roll_out(cluster: Cluster, path: str) -> None:
    set_status(
        cluster,
        path,
        {
            "observedGeneration": 0,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    )


def stalled(reason: str, message: str, value: str = "True") -> dict[str, Any]:
    return {"conditions": [{"type": "Stalled", "status": value, "reason": reason, "message": message}]}


def condition(found: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    conditions = ((found or {}).get("status") or {}).get("conditions") or []
    return next(c for c in conditions if c["type"] == kind)


def health_of(cluster: Cluster, sync: str) -> dict[str, dict[str, str]]:
    return {
        f"{e.id.kind}/{e.id.name}": e.to_dict()
        for e in resourcestore.entries(resourcestore.read(cluster, sync))
    }


def kubectl_wait(control_plane: APIServer, sync: str, timeout: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(binaries.ensure("kubectl")),
            "--kubeconfig",
            control_plane.kubeconfig,
            "wait",
            "--for=condition=Ready",
            f"rootsync/{sync}",
            "-n",
            api.SYSTEM_NAMESPACE,
            f"--timeout={timeout}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_pass_records_health_reports_failed_objects_and_ready_flips(
    control_plane: APIServer,
    widgets: None,
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = GitRepo(tmp_path / "git")
    commit = repo.commit(
        {
            "ns.yaml": ns(name),
            "cm.yaml": cm("settings", name),
            "deploy.yaml": deployment("web", name),
            "w1.yaml": widget("w1", name),
            "w2.yaml": widget("w2", name),
        }
    )
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    options = SyncOptions(git_cache=tmp_path / "cache")
    deploy = f"/apis/apps/v1/namespaces/{name}/deployments/web"
    w1 = f"/apis/{GROUP}/v1/namespaces/{name}/widgets/w1"

    first = pipeline.run(spec, cluster, options)
    assert first.ok, [p.render() for p in first.problems]
    check_first_pass(control_plane, cluster, name, commit)

    # a controller reports the Deployment rolled out and w1 stalled
    roll_out(cluster, deploy)
    set_status(cluster, w1, stalled("QuotaExceeded", "no quota left for widgets in this namespace"))
    writes = cluster.writes
    second = pipeline.run(spec, cluster, options)
    assert second.ok  # a Failed object does not hold the commit back
    assert cluster.writes - writes == 2  # the one part holding both, and the RootSync's status
    check_failed_reported(cluster, name, second)
    stalled_since = condition(store.read(cluster, name), "Stalled")["lastTransitionTime"]

    # nothing changed: a pass writes nothing at all
    writes = cluster.writes
    third = pipeline.run(spec, cluster, options)
    assert third.ok
    assert cluster.writes == writes
    assert condition(store.read(cluster, name), "Stalled")["lastTransitionTime"] == stalled_since
    check_listing(control_plane, name, capsys)

    # the controller recovers: the next pass finds every object Current, Ready flips to True
    set_status(cluster, w1, stalled("Recovered", "", value="False"))
    fourth = pipeline.run(spec, cluster, options)
    assert fourth.ok and not [p for p in fourth.problems if p.code.id != "KNV1021"]
    rootsync = store.read(cluster, name)
    assert condition(rootsync, "Ready")["status"] == "True"
    assert condition(rootsync, "Stalled")["status"] == "False"
    waited = kubectl_wait(control_plane, name, "20s")
    assert waited.returncode == 0, waited.stderr
    assert "condition met" in waited.stdout


def check_first_pass(control_plane: APIServer, cluster: Cluster, name: str, commit: str) -> None:
    """Freshly applied, no controller: the Deployment is InProgress, Ready is False."""
    found = health_of(cluster, name)
    assert found["ConfigMap/settings"]["status"] == "Current"
    assert found["Widget/w1"]["status"] == "Current"
    assert found["Deployment/web"]["status"] == "InProgress"  # no controller has rolled it out
    assert found["Deployment/web"]["reason"] == "LessReplicas"
    assert found["Deployment/web"]["sourceCommit"] == commit
    rootsync = store.read(cluster, name)
    assert rootsync is not None
    assert rootsync["status"]["observedGeneration"] == rootsync["metadata"]["generation"]
    assert rootsync["status"]["objectHealth"]["InProgress"] == 1
    ready = condition(rootsync, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ObjectsInProgress")
    assert condition(rootsync, "Reconciling")["status"] == "True"
    assert ready["observedGeneration"] == rootsync["metadata"]["generation"]
    not_yet = kubectl_wait(control_plane, name, "1s")
    assert not_yet.returncode != 0  # Ready is False: kubectl wait gives up


def check_failed_reported(cluster: Cluster, name: str, result: pipeline.SyncResult) -> None:
    """A Failed object is KNV2009 with its reason and message; the rest is applied."""
    assert not [p for p in result.problems if p.code.id == "KNV2009"]  # not the pass's outcome
    failed = [p for p in result.health_problems if p.code.id == "KNV2009"]
    assert len(failed) == 1
    assert "Widget" in failed[0].message and "w1" in failed[0].message
    assert "QuotaExceeded" in failed[0].message and "no quota left" in failed[0].message
    assert failed[0].obj is not None and failed[0].obj["name"] == "w1"
    assert get(cluster, f"/api/v1/namespaces/{name}/configmaps/settings") is not None
    rootsync = store.read(cluster, name)
    assert rootsync is not None
    assert rootsync["status"]["state"] == "SYNCED"
    codes = [e["code"] for e in rootsync["status"]["errors"]]
    assert codes.count("KNV2009") == 1 and set(codes) == {"KNV2009", "KNV1021"}  # and two warnings
    assert all(e["blocking"] is False for e in rootsync["status"]["errors"])
    assert condition(rootsync, "Stalled")["status"] == "True"
    assert condition(rootsync, "Ready")["status"] == "False"


def check_listing(control_plane: APIServer, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`status --resources`, as JSON and as a table."""
    assert main(["status", "--kubeconfig", control_plane.kubeconfig, "--resources", "-o", "json"]) == 0
    listed = [r for r in json.loads(capsys.readouterr().out)["resources"] if r["sync"] == name]
    by_name = {f"{r['kind']}/{r['name']}": r for r in listed}
    assert by_name["Widget/w1"]["status"] == "Failed"
    assert by_name["Widget/w1"]["reason"] == "QuotaExceeded"
    assert by_name["Widget/w1"]["message"] == "no quota left for widgets in this namespace"
    assert by_name["Deployment/web"]["status"] == "Current"
    assert len(listed) == 5
    assert main(["status", "--kubeconfig", control_plane.kubeconfig, "--resources", "--name", name]) == 0
    text = capsys.readouterr().out
    assert "Widget.health.acm-lite.test" in text and f"{name}/w1" in text
    assert "Failed" in text and "QuotaExceeded: no quota left" in text
    assert main(["status", "--kubeconfig", control_plane.kubeconfig, "--name", name]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[5] == "READY" and text.splitlines()[1].split()[5] == "False"
    assert f"{name}: not ready: 1 error(s); first: KNV2009" in text


def gauge(daemon: Daemon, sync: str) -> dict[str, float]:
    families = text_string_to_metric_families(generate_latest(daemon.metrics.registry).decode())
    return {
        s.labels["status"]: s.value
        for f in families
        if f.name == "acm_lite_managed_objects"
        for s in f.samples
        if s.labels.get("sync") == sync
    }


def test_daemon_follows_health_reports_reconcile_timeout_and_becomes_ready(
    control_plane: APIServer, widgets: None, name: str, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "ns.yaml": ns(name),
            "cm.yaml": cm("settings", name),
            "deploy.yaml": deployment("web", name),
            "w1.yaml": widget("w1", name),
        }
    )
    cluster = Cluster.connect(control_plane.kubeconfig)
    # the RootSync's spec.override.reconcileTimeout (3s) over the daemon's default (300s)
    spec = SyncSpec(
        repo=repo.url, name=name, revision="main", source_format="unstructured", reconcile_timeout=3.0
    )
    daemon = Daemon(
        [(spec, lambda: cluster)], SyncOptions(git_cache=tmp_path / "cache"), DaemonOptions(period=0.3)
    )
    deploy = f"/apis/apps/v1/namespaces/{name}/deployments/web"
    w1 = f"/apis/{GROUP}/v1/namespaces/{name}/widgets/w1"
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: worker.synced_commit is not None and worker.tracker is not None)
        rootsync = store.read(cluster, name) or {}
        assert rootsync["spec"]["override"] == {"reconcileTimeout": "3s"}
        assert health_of(cluster, name)["Deployment/web"]["status"] == "InProgress"
        started = time.monotonic()

        # w1 stalls: reported as soon as the watch sees it, with its reason and message
        set_status(cluster, w1, stalled("BadSize", "size 1 is not offered"))

        def errors() -> list[dict[str, Any]]:
            return list(((store.read(cluster, name) or {}).get("status") or {}).get("errors") or [])

        eventually(lambda: any("BadSize" in e["message"] for e in errors()), 10)
        assert health_of(cluster, name)["Widget/w1"]["status"] == "Failed"
        assert gauge(daemon, name)["Failed"] == 1

        # the Deployment never rolls out: past the reconcile timeout it is reported too
        eventually(lambda: any("reconcile timeout" in e["message"] for e in errors()), 15)
        assert time.monotonic() - started >= 2.0
        late = next(e for e in errors() if "reconcile timeout" in e["message"])
        assert late["code"] == "KNV2009"
        assert late["object"]["kind"] == "Deployment" and late["object"]["name"] == "web"
        assert "InProgress" in late["message"] and "LessReplicas" in late["message"]
        assert get(cluster, f"/api/v1/namespaces/{name}/configmaps/settings") is not None
        assert worker.thread.is_alive() and daemon.ready()
        assert condition(store.read(cluster, name), "Stalled")["status"] == "True"

        # both recover: the table, the errors, the gauge and the conditions follow
        roll_out(cluster, deploy)
        set_status(cluster, w1, stalled("Fine", "", value="False"))
        eventually(lambda: condition(store.read(cluster, name), "Ready")["status"] == "True", 10)
        assert [e for e in errors() if e["code"] == "KNV2009"] == []
        assert {e["status"] for e in health_of(cluster, name).values()} == {"Current"}
        assert gauge(daemon, name) == {
            "Current": 4.0,
            "InProgress": 0.0,
            "Failed": 0.0,
            "Terminating": 0.0,
            "NotFound": 0.0,
            "Unknown": 0.0,
        }
        waited = kubectl_wait(control_plane, name, "20s")
        assert waited.returncode == 0, waited.stderr
        writes = worker.tracker.writes if worker.tracker else 0
        assert 0 < writes <= 6  # each change a part write, never one per event
    finally:
        daemon.stop()
