"""The full local cluster behaves like a cluster: the real kube-controller-manager and kube-scheduler,
and kwok's fake nodes moving Pods through the Stages acm-lite ships."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from acm_lite.devcluster import controllers, kwok, process
from acm_lite.devcluster.controlplane import APIServer, Environment

TIMEOUT = 90.0  # two loaded cores; each step takes a few seconds when the machine is idle


def _until(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout:.0f}s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(live_cluster: APIServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=live_cluster.kubeconfig)


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    name = f"live-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(api).delete_namespace(name)


def _pod_template(app: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
    }


def _condition(obj: Any, kind: str) -> str | None:
    for c in obj.status.conditions or []:
        if c.type == kind:
            return str(c.status)
    return None


def test_every_controller_is_healthy_and_the_fake_nodes_are_ready(
    live_env: Environment, api: client.ApiClient
) -> None:
    server = live_env.clusters[0]
    assert [c.name for c in server.children] == ["kube-controller-manager", "kube-scheduler", "kwok"]
    for child in server.children:
        assert process.alive(child.pid)
        assert controllers.healthy(child), child.name
    nodes = client.CoreV1Api(api).list_node().items
    assert sorted(n.metadata.name for n in nodes) == kwok.node_names(kwok.DEFAULT_NODES)
    for node in nodes:
        assert node.metadata.annotations[kwok.NODE_ANNOTATION] == "fake"
        assert _condition(node, "Ready") == "True"
        assert node.status.allocatable["pods"] == "110"


def test_a_deployment_rolls_out_to_ready_pods_on_the_fake_nodes(api: client.ApiClient, ns: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _pod_template("web"),
            },
        },
    )

    def available() -> Any:
        d = apps.read_namespaced_deployment("web", ns)
        done = (
            d.status.observed_generation == d.metadata.generation
            and d.status.ready_replicas == 3
            and d.status.updated_replicas == 3
            and _condition(d, "Available") == "True"
        )
        return d if done else None

    deployment = _until("Deployment web Available", available)
    assert _condition(deployment, "Progressing") == "True"
    replicasets = apps.list_namespaced_replica_set(ns).items
    assert len(replicasets) == 1
    assert replicasets[0].metadata.owner_references[0].name == "web"
    pods = core.list_namespaced_pod(ns, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.owner_references[0].name == replicasets[0].metadata.name
        assert pod.spec.node_name in kwok.node_names(kwok.DEFAULT_NODES)
        assert pod.status.phase == "Running"
        assert _condition(pod, "Ready") == "True"
        assert pod.spec.service_account_name == "default"  # admitted with its ServiceAccount


def test_a_job_completes(api: client.ApiClient, ns: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(
        ns,
        {
            "metadata": {"name": "once"},
            "spec": {
                "completions": 2,
                "template": {
                    **_pod_template("once"),
                    "spec": {**_pod_template("once")["spec"], "restartPolicy": "Never"},
                },
            },
        },
    )
    job = _until(
        "Job once Complete",
        lambda: (j := batch.read_namespaced_job("once", ns)) and _condition(j, "Complete") == "True" and j,
    )
    assert job.status.succeeded == 2
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=once").items
    assert {p.status.phase for p in pods} == {"Succeeded"}


def test_a_deleted_namespace_is_gone_with_everything_in_it(api: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    name = f"gone-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}, "data": {"a": "b"}})
    apps.create_namespaced_deployment(
        name,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _pod_template("web"),
            },
        },
    )
    _until("two Pods running", lambda: len(core.list_namespaced_pod(name).items) == 2)
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as e:
            return e.status == 404
        return False

    _until(f"namespace {name} deleted", gone)


def test_the_garbage_collector_deletes_a_replicasets_pods(api: client.ApiClient, ns: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_replica_set(
        ns,
        {
            "metadata": {"name": "orphaned"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "gc"}},
                "template": _pod_template("gc"),
            },
        },
    )
    _until(
        "two Pods owned by the ReplicaSet",
        lambda: len(core.list_namespaced_pod(ns, label_selector="app=gc").items) == 2,
    )
    apps.delete_namespaced_replica_set("orphaned", ns, propagation_policy="Background")
    _until(
        "the ReplicaSet's Pods deleted",
        lambda: not core.list_namespaced_pod(ns, label_selector="app=gc").items,
    )


def test_a_new_namespace_gets_its_default_service_account_and_root_ca(api: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(api)
    account = _until(
        "ServiceAccount default",
        lambda: next(
            (a for a in core.list_namespaced_service_account(ns).items if a.metadata.name == "default"), None
        ),
    )
    assert account.metadata.namespace == ns
    _until(
        "ConfigMap kube-root-ca.crt",
        lambda: any(c.metadata.name == "kube-root-ca.crt" for c in core.list_namespaced_config_map(ns).items),
    )
    token = core.create_namespaced_service_account_token(
        "default", ns, {"spec": {"audiences": ["https://127.0.0.1/"], "expirationSeconds": 600}}
    )
    assert token.status.token.count(".") == 2


def test_a_pod_marked_to_fail_fails_and_so_does_its_job(api: client.ApiClient, ns: str) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    marked = {kwok.SIMULATE_ANNOTATION: "fail"}
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "doomed", "annotations": marked},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "registry.example/c:1"}],
            },
        },
    )
    pod = _until(
        "Pod doomed Failed",
        lambda: (p := core.read_namespaced_pod("doomed", ns)) and p.status.phase == "Failed" and p,
    )
    assert pod.spec.node_name in kwok.node_names(kwok.DEFAULT_NODES)
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (1, "Error")

    template = _pod_template("failing", marked)
    template["spec"]["restartPolicy"] = "Never"
    batch.create_namespaced_job(
        ns, {"metadata": {"name": "failing"}, "spec": {"backoffLimit": 0, "template": template}}
    )
    job = _until(
        "Job failing Failed",
        lambda: (j := batch.read_namespaced_job("failing", ns)) and _condition(j, "Failed") == "True" and j,
    )
    assert job.status.failed == 1 and not job.status.succeeded


def test_a_deployment_whose_pods_crash_loop_never_becomes_ready(api: client.ApiClient, ns: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "crashing"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "crashing"}},
                "template": _pod_template("crashing", {kwok.SIMULATE_ANNOTATION: "crashloop"}),
            },
        },
    )
    pod = _until(
        "a crash-looping Pod",
        lambda: next(
            (
                p
                for p in core.list_namespaced_pod(ns, label_selector="app=crashing").items
                if p.status.container_statuses
            ),
            None,
        ),
    )
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason == "CrashLoopBackOff"
    assert pod.status.phase == "Running" and _condition(pod, "Ready") == "False"
    deployment = _until(
        "Deployment crashing reports Available",
        lambda: _condition(d := apps.read_namespaced_deployment("crashing", ns), "Available") and d,
    )
    assert not deployment.status.ready_replicas
    assert _condition(deployment, "Available") == "False"


def test_stopping_the_environment_stops_every_controller(control_plane_binaries: dict[str, Path]) -> None:
    """A second full environment, started and stopped: nothing it ran is left behind."""
    from acm_lite.devcluster import binaries, controlplane

    full = binaries.ensure_all(["kube-controller-manager", "kube-scheduler", "kwok"])
    env = controlplane.start(
        ["short"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
        controllers=controllers.Controllers(
            str(full["kube-controller-manager"]), str(full["kube-scheduler"]), str(full["kwok"]), nodes=1
        ),
    )
    pids = env.pids
    assert len(pids) == 5
    assert all(process.alive(p) for p in pids)
    controlplane.stop(env)
    assert [p for p in pids if process.alive(p)] == []
    assert not Path(env.root).exists()
