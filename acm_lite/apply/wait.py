"""Waiting for what the next apply wave depends on: CRDs becoming Established."""

from __future__ import annotations

import time
from typing import Any

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"


def established(cluster: Client, name: str) -> bool:
    try:
        crd = cluster.request("GET", CRD_PATH + name)
    except ApiError as e:
        if e.status == 404:
            return False
        raise e.to_acm(f"CustomResourceDefinition {name}") from e
    return is_established(crd)


def is_established(crd: dict[str, Any]) -> bool:
    """Whether a CRD as read from the cluster serves its resources."""
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def why_not_established(cluster: Client, name: str) -> str:
    """What the CRD's conditions say stops it (a names conflict, say); "" when they say nothing."""
    try:
        crd = cluster.request("GET", CRD_PATH + name)
    except ApiError as e:
        return "it does not exist" if e.status == 404 else ""
    except AcmError:  # the API server went away: the wait's own error says enough
        return ""
    conditions = (crd.get("status") or {}).get("conditions") or []
    return "; ".join(
        f"{c.get('type')}: {c.get('reason', '')} {c.get('message', '')}".strip()
        for c in conditions
        if c.get("status") == "False"
    )


def not_established(cluster: Client, names: list[str], timeout: float = 60.0) -> list[str]:
    """The named CRDs still not Established after ``timeout`` seconds (none once all are)."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if not established(cluster, n)]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.1)
    return pending


def crds_established(cluster: Client, names: list[str], timeout: float = 60.0) -> None:
    """Return once every named CRD is Established; a coded error after ``timeout`` seconds."""
    pending = not_established(cluster, names, timeout)
    if pending:
        raise AcmError(
            errors.CRD_NOT_ESTABLISHED, f"CRDs not Established after {timeout:g}s: {', '.join(pending)}"
        )
