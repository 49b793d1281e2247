"""``health.compute`` of real objects as the real controllers move them, on the full local cluster
(kube-controller-manager, kube-scheduler and kwok's fake nodes): every object is read from the API
server exactly as it stands and its health computed, never a status the test wrote."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from acm_lite import health
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import kwok
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.health import Health, Status
from tests.support.kube import get

TIMEOUT = 60.0  # two loaded cores; each step takes a few seconds when the machine is idle


@pytest.fixture(scope="module")
def api(live_cluster: APIServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=live_cluster.kubeconfig)


@pytest.fixture(scope="module")
def cluster(live_cluster: APIServer) -> Cluster:
    return Cluster.connect(live_cluster.kubeconfig)


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    name = f"health-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(api).delete_namespace(name)


def _template(app: str, image: str = "registry.example/web:1", **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}, "annotations": annotations},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def _follow(
    cluster: Cluster, path: str, until: Callable[[Health], bool], timeout: float = TIMEOUT
) -> tuple[list[Health], dict[str, Any] | None]:
    """Read the object every 0.1 s and compute its health until ``until`` holds: every health seen
    (consecutive repeats dropped) and the object as it was when it held."""
    deadline = time.monotonic() + timeout
    seen: list[Health] = []
    while True:
        obj = get(cluster, path)
        found = health.compute(obj)
        if not seen or seen[-1] != found:
            seen.append(found)
        if until(found):
            return seen, obj
        assert time.monotonic() < deadline, f"{path}: not reached in {timeout:.0f}s; seen {seen}"
        time.sleep(0.1)


def _is(status: Status) -> Callable[[Health], bool]:
    return lambda h: h.status is status


def test_a_deployment_is_in_progress_until_its_pods_are_ready_then_current(
    api: client.ApiClient, cluster: Cluster, ns: str
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                # available only 3 s after ready: on a quiet machine the rollout could otherwise
                # finish before the first read, and InProgress never be seen
                "minReadySeconds": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _template("web"),
            },
        },
    )
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    seen, obj = _follow(cluster, path, _is(Status.CURRENT))
    assert seen[0].status is Status.IN_PROGRESS, seen
    assert {h.status for h in seen} == {Status.IN_PROGRESS, Status.CURRENT}, seen
    assert seen[-1].message == "Deployment is available. Replicas: 2"
    assert obj is not None and obj["status"]["readyReplicas"] == 2
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=web").items
    ready = [
        p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    assert len(ready) == 2


def test_a_rolling_update_is_in_progress_until_rolled_out(
    api: client.ApiClient, cluster: Cluster, ns: str
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _template("web"),
            },
        },
    )
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/web"
    _follow(cluster, path, _is(Status.CURRENT))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.example/web:2"}]}}}
    }
    apps.patch_namespaced_deployment("web", ns, patch)
    seen, obj = _follow(cluster, path, _is(Status.CURRENT))
    assert seen[0].status is Status.IN_PROGRESS, seen  # the first read after the new image
    assert obj is not None and obj["metadata"]["generation"] == 2
    assert obj["status"]["updatedReplicas"] == 3 and obj["status"]["readyReplicas"] == 3
    # rolled out: every Pod left runs the new image (the old ReplicaSet scaled to 0)
    for rs in apps.list_namespaced_replica_set(ns).items:
        image = rs.spec.template.spec.containers[0].image
        assert rs.status.replicas == (3 if image.endswith(":2") else 0), image
        rs_health = health.compute(
            get(cluster, f"/apis/apps/v1/namespaces/{ns}/replicasets/{rs.metadata.name}")
        )
        assert rs_health.status is Status.CURRENT, (image, rs_health)


def test_a_job_is_current_when_complete_and_failed_when_its_pods_fail(
    api: client.ApiClient, cluster: Cluster, ns: str
) -> None:
    batch = client.BatchV1Api(api)
    for name, marks in (("once", {}), ("failing", {kwok.SIMULATE_ANNOTATION: "fail"})):
        template = _template(name, **marks)
        template["spec"]["restartPolicy"] = "Never"
        batch.create_namespaced_job(
            ns, {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template}}
        )
    # running, a Job is InProgress (Flux's rule; kstatus would call it Current already)
    settled = _is(Status.CURRENT), _is(Status.FAILED)
    done = _follow(cluster, f"/apis/batch/v1/namespaces/{ns}/jobs/once", lambda h: any(s(h) for s in settled))
    assert done[0][-1] == Health(Status.CURRENT, "", "Job Completed. succeeded: 1/1"), done[0]
    assert {h.status for h in done[0][:-1]} <= {Status.IN_PROGRESS}, done[0]
    failed = _follow(
        cluster, f"/apis/batch/v1/namespaces/{ns}/jobs/failing", lambda h: any(s(h) for s in settled)
    )
    assert failed[0][-1] == Health(Status.FAILED, "JobFailed", "Job Failed. failed: 1/1"), failed[0]


def test_a_statefulset_and_a_daemonset_on_the_fake_nodes_become_current(
    api: client.ApiClient, cluster: Cluster, ns: str
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(
        ns,
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": _template("db"),
            },
        },
    )
    seen, sts = _follow(cluster, f"/apis/apps/v1/namespaces/{ns}/statefulsets/db", _is(Status.CURRENT))
    assert seen[0].status is Status.IN_PROGRESS, seen
    assert sts is not None and sts["status"]["readyReplicas"] == 2
    # the API server defaults rollingUpdate.partition to 0, so kstatus's partition rule answers
    assert seen[-1].message == "Partition rollout complete. updated: 2"
    # kwok's nodes carry no taints; the DaemonSet controller adds its own tolerations
    apps.create_namespaced_daemon_set(
        ns,
        {
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": _template("agent")},
        },
    )
    seen, ds = _follow(cluster, f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent", _is(Status.CURRENT))
    assert seen[0].status is Status.IN_PROGRESS, seen
    assert ds is not None and ds["status"]["numberReady"] == kwok.DEFAULT_NODES
    assert seen[-1].message == f"All replicas scheduled as expected. Replicas: {kwok.DEFAULT_NODES}"
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=agent").items
    assert sorted(p.spec.node_name for p in pods) == kwok.node_names(kwok.DEFAULT_NODES)


def test_a_claim_stays_in_progress_with_no_provisioner(
    api: client.ApiClient, cluster: Cluster, ns: str
) -> None:
    """The local clusters run no storage provisioner (and have no StorageClass nor PersistentVolume):
    a PersistentVolumeClaim stays Pending, which kstatus reports as InProgress, never Current."""
    client.CoreV1Api(api).create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data"
    # the persistent volume binder sets the phase; wait for it, then stay a few seconds
    seen, _ = _follow(cluster, path, lambda h: h.message == "PVC is not Bound. phase: Pending")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert health.compute(get(cluster, path)) == Health(
            Status.IN_PROGRESS, "NotBound", "PVC is not Bound. phase: Pending"
        )
        time.sleep(0.5)
    assert {h.status for h in seen} == {Status.IN_PROGRESS}


def test_a_deleted_namespace_is_terminating_then_not_found(api: client.ApiClient, cluster: Cluster) -> None:
    core = client.CoreV1Api(api)
    name = f"gone-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}, "data": {"a": "b"}})
    path = f"/api/v1/namespaces/{name}"
    assert health.compute(get(cluster, path)).status is Status.CURRENT
    core.delete_namespace(name)
    seen, obj = _follow(cluster, path, _is(Status.NOT_FOUND))
    assert obj is None
    assert [h.status for h in seen] == [Status.TERMINATING, Status.NOT_FOUND], seen
    assert seen[0].message == "Resource scheduled for deletion"
