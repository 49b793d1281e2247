"""Deployments whose status a test writes itself (a bare API server runs no controllers), to make
an object Current, Failed or leave it never converging."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from acm_lite.cluster.client import Cluster
from tests.support.kube import eventually, get


def deployment(name: str, namespace: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


CURRENT: dict[str, Any] = {
    "observedGeneration": 1,
    "replicas": 1,
    "updatedReplicas": 1,
    "readyReplicas": 1,
    "availableReplicas": 1,
    "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
    ],
}
FAILED: dict[str, Any] = {
    "observedGeneration": 1,
    "replicas": 1,
    "updatedReplicas": 1,
    "conditions": [
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "web-1" has timed out progressing.',
        },
    ],
}


def deployment_path(name: str, namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def write_status(cluster: Cluster, path: str, status: dict[str, Any]) -> None:
    """Write ``status`` through the object's status subresource, as its controller would."""
    cluster.request(
        "PATCH", path + "/status", body={"status": status}, content_type="application/merge-patch+json"
    )


def when_created(
    cluster: Cluster, path: str, then: Callable[[], None], *, settle: float = 0.0
) -> threading.Thread:
    """A thread that waits until ``path`` exists (and ``settle`` seconds more), then runs ``then``."""

    def run() -> None:
        eventually(lambda: get(cluster, path) is not None, timeout=120)
        threading.Event().wait(settle)
        then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
