"""`acm-lite sync --once --wait` against the full local cluster: the real kube-controller-manager
rolls the Deployments out onto kwok's fake nodes, and nothing writes a status by hand. Exit 0 only
once every Deployment is Available; exit 1 naming a Deployment whose Pods crash-loop or a Job whose
Pod fails, the rest of the commit applied; depends-on holds a dependent until its dependency is
Current, and skips it (ACM2004) when the dependency never gets there."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from acm_lite import health
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import kwok
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.health import Status
from tests.e2e.test_wait_cli import finish, start
from tests.support.gitrepo import GitRepo
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns


def deployment(
    name: str,
    namespace: str,
    *,
    replicas: int = 1,
    annotations: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": annotations or {}}
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations or {}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    }


def service(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def failing_job(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {kwok.SIMULATE_ANNOTATION: "fail"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "job", "image": "registry.example/job:1"}],
                },
            },
        },
    }


CRASHLOOP = {kwok.SIMULATE_ANNOTATION: "crashloop"}


@pytest.fixture
def setup(live_cluster: APIServer, tmp_path: Path) -> tuple[Cluster, GitRepo, list[str], str]:
    name, namespace = f"live-{uuid.uuid4().hex[:6]}", f"live-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    common = ["--repo", repo.url, "--revision", "main", "--source-format", "unstructured", "--name", name]
    return Cluster.connect(live_cluster.kubeconfig), repo, common, namespace


def sync(live_cluster: APIServer, tmp_path: Path, common: list[str], *flags: str) -> tuple[int, str, str]:
    run = start(live_cluster.kubeconfig, "sync", "--once", *common, *flags, cache=tmp_path / "cache")
    return finish(run)


def _deploy(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def _available(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def _current_soon(cluster: Cluster, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (found := health.compute(get(cluster, path))).status is not Status.CURRENT:
        assert time.monotonic() < deadline, f"{path}: {found}"
        time.sleep(0.2)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_wait_exits_0_only_once_every_deployment_is_available(
    live_cluster: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    # Available no sooner than 3 s after the Pods are Ready, so the wait sees the rollout in
    # progress however fast the controllers and kwok are
    web = deployment("web", namespace, replicas=3)
    web["spec"]["minReadySeconds"] = 3
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "web.yaml": web,
            "api.yaml": deployment("api", namespace, replicas=2),
            "svc.yaml": service("web", namespace),
            "a.yaml": cm("a", namespace),
            "b.yaml": cm("b", namespace),
        }
    )
    code, out, err = sync(live_cluster, tmp_path, common, "--wait", "--timeout", "60s")
    assert code == 0, err
    for name, replicas in (("web", 3), ("api", 2)):  # read the moment the command returned
        obj = get(cluster, _deploy(namespace, name))
        assert _available(obj), obj
        assert obj is not None and obj["status"]["readyReplicas"] == replicas
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert "waiting for 6 objects to be Current (timeout 60s)" in err
    assert "InProgress" in err  # progress while the Deployments rolled out
    assert "waiting: 6 Current" in err
    assert "6 objects Current (" in out and "SYNCED: synced" in out
    assert "Traceback" not in err


def test_a_crash_looping_deployment_is_named_and_holds_nothing_else_back(
    live_cluster: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    crashing = deployment("crashing", namespace, pod_annotations=CRASHLOOP)
    crashing["spec"]["progressDeadlineSeconds"] = 5  # the controller gives up soon: Failed
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "crashing.yaml": crashing,
            "web.yaml": deployment("web", namespace),
            "svc.yaml": service("web", namespace),
            "a.yaml": cm("a", namespace),
        }
    )
    started = time.monotonic()
    code, _out, err = sync(live_cluster, tmp_path, common, "--wait", "--timeout", "60s")
    assert code == 1, err
    assert time.monotonic() - started < 60  # Failed ends the wait before the timeout
    assert (
        f"KNV2009 ApplyError: failed to wait for apps/Deployment {namespace}/crashing: reconcile failed: "
        in err
    )
    assert "Failed (ProgressDeadlineExceeded): Progress deadline exceeded" in err
    assert err.count("failed to wait for") == 1, err  # nothing else is named
    assert "Traceback" not in err
    # everything else of the commit was applied and becomes Current
    _current_soon(cluster, _deploy(namespace, "web"))
    for path in (
        f"/api/v1/namespaces/{namespace}/services/web",
        f"/api/v1/namespaces/{namespace}/configmaps/a",
    ):
        assert health.compute(get(cluster, path)).status is Status.CURRENT


def test_a_crash_looping_deployment_without_a_deadline_is_named_when_the_time_runs_out(
    live_cluster: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    _cluster, repo, common, namespace = setup
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "crashing.yaml": deployment("crashing", namespace, pod_annotations=CRASHLOOP),
            "a.yaml": cm("a", namespace),
        }
    )
    code, _out, err = sync(live_cluster, tmp_path, common, "--wait", "--timeout", "10s")
    assert code == 1, err
    assert (
        f"KNV2009 ApplyError: failed to wait for apps/Deployment {namespace}/crashing: "
        "reconcile timeout after 10s: InProgress (LessAvailable): Available: 0/1"
    ) in err, err
    assert err.count("failed to wait for") == 1, err


def test_a_failing_job_is_named(
    live_cluster: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "job.yaml": failing_job("migrate", namespace),
            "a.yaml": cm("a", namespace),
        }
    )
    code, _out, err = sync(live_cluster, tmp_path, common, "--wait", "--timeout", "60s")
    assert code == 1, err
    assert (
        f"KNV2009 ApplyError: failed to wait for batch/Job {namespace}/migrate: reconcile failed: "
        "Failed (JobFailed): Job Failed. failed: 1/1"
    ) in err
    assert err.count("failed to wait for") == 1, err
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a") is not None


def test_a_dependent_deployment_is_applied_only_once_its_dependency_is_current(
    live_cluster: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    depends = {"config.kubernetes.io/depends-on": f"apps/namespaces/{namespace}/Deployment/a"}
    a_body = deployment("a", namespace, replicas=2)
    a_body["spec"]["minReadySeconds"] = 3  # Available no sooner than 3 s after its Pods are Ready
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "a.yaml": a_body,
            "b.yaml": deployment("b", namespace, annotations=depends),
        }
    )
    code, _out, err = sync(live_cluster, tmp_path, common, "--timeout", "60s")
    assert code == 0, err
    a, b = get(cluster, _deploy(namespace, "a")), get(cluster, _deploy(namespace, "b"))
    assert a is not None and b is not None
    available = next(c for c in a["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True"
    # b was created no earlier than a became Available (the API server keeps whole seconds)
    assert _time(b["metadata"]["creationTimestamp"]) >= _time(available["lastTransitionTime"])
    # and not at once: a's Pods had to become Ready, and stay so for minReadySeconds, first
    held = _time(b["metadata"]["creationTimestamp"]) - _time(a["metadata"]["creationTimestamp"])
    assert held.total_seconds() >= 3, held


def test_a_dependent_of_a_crash_looping_deployment_is_skipped_in_time(
    live_cluster: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    depends = {"config.kubernetes.io/depends-on": f"apps/namespaces/{namespace}/Deployment/a"}
    repo.commit(
        {
            "ns.yaml": ns(namespace),
            "a.yaml": deployment("a", namespace, pod_annotations=CRASHLOOP),
            "b.yaml": deployment("b", namespace, annotations=depends),
            "other.yaml": cm("other", namespace),
        }
    )
    started = time.monotonic()
    code, _out, err = sync(live_cluster, tmp_path, common, "--timeout", "10s")
    elapsed = time.monotonic() - started
    assert code == 1, err
    assert 10 <= elapsed < 40, elapsed
    assert (
        f"ACM2004 DependencyNotReady: not applied: apps/Deployment {namespace}/a, which "
        f"apps/Deployment {namespace}/b depends on, is not Current after 10s: InProgress ("
    ) in err, err
    assert get(cluster, _deploy(namespace, "b")) is None
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/other") is not None
    assert get(cluster, _deploy(namespace, "a")) is not None
