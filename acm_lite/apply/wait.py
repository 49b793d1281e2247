"""Waiting for what the next apply wave depends on: CRDs becoming Established."""

from __future__ import annotations

import time

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"


def established(cluster: Cluster, name: str) -> bool:
    try:
        crd = cluster.request("GET", CRD_PATH + name)
    except ApiError as e:
        if e.status == 404:
            return False
        raise e.to_acm(f"CustomResourceDefinition {name}") from e
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def crds_established(cluster: Cluster, names: list[str], timeout: float = 60.0) -> None:
    """Return once every named CRD is Established; a coded error after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if not established(cluster, n)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AcmError(errors.CRD_NOT_ESTABLISHED,
                           f"CRDs not Established after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.1)
