"""Kubernetes Events on a sync object, so `kubectl describe rootsync` tells what happened."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from acm_lite import api
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError

log = logging.getLogger("acm_lite.events")


def record(
    cluster: Cluster,
    sync: str,
    reason: str,
    message: str,
    *,
    warning: bool = False,
    namespace: str | None = None,
) -> None:
    """Best effort: a failure to record an event never fails a pass."""
    namespace = namespace or api.system_namespace()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{sync}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": api.API_VERSION,
            "kind": "RootSync",
            "name": sync,
            "namespace": namespace,
        },
        "reason": reason,
        "message": message[:1000],
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": "acm-lite"},
        "reportingComponent": "acm-lite",
    }
    try:
        cluster.request("POST", f"/api/v1/namespaces/{namespace}/events", body=body, decode=False)
    except (ApiError, AcmError) as e:
        log.info("event not recorded", extra={"fields": {"sync": sync, "error": str(e)}})
