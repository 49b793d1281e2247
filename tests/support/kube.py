"""Small helpers for tests that read a real API server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from acm_lite.cluster.client import ApiError, Cluster


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    """The object at ``path``, or None when it does not exist."""
    try:
        found: dict[str, Any] = cluster.request("GET", path)
        return found
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


ROOTSYNCS = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs"


def without_other_rootsyncs(cluster: Cluster) -> None:
    """Delete every RootSync earlier tests left in ``cluster``: each `sync --once` records one with
    its spec, and a daemon following the cluster's RootSyncs (`serve --from-cluster`) would sync
    them all beside the test's own (and wait for their passes when it stops). Their finalizers
    go first: no daemon is left to honour them. Nothing they applied is touched."""
    deadline = time.monotonic() + 30
    while True:
        try:
            items = cluster.request("GET", ROOTSYNCS)["items"]
            break
        except ApiError as e:
            if e.status == 404:
                return  # acm-lite's CRDs are not installed yet: there is none
            if e.status != 429 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # a CRD just installed: its storage answers 429 for a moment
    for item in items:
        if item["metadata"].get("finalizers"):
            try:
                cluster.request(
                    "PATCH",
                    f"{ROOTSYNCS}/{item['metadata']['name']}",
                    body={"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                )
            except ApiError as e:
                if e.status != 404:
                    raise
    if items:
        cluster.request("DELETE", ROOTSYNCS)
    eventually(lambda: not cluster.request("GET", ROOTSYNCS)["items"], 30)
