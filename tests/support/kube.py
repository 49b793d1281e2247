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


GROUP = "/apis/acm-lite.io/v1alpha1"
ROOTSYNCS = f"{GROUP}/namespaces/acm-lite-system/rootsyncs"
REPOSYNCS = f"{GROUP}/reposyncs"  # in every namespace


def without_other_rootsyncs(cluster: Cluster) -> None:
    """Delete every RootSync and RepoSync earlier tests left in ``cluster``: each `sync --once`
    records a RootSync with its spec, and a daemon following the cluster's sync objects
    (`serve --from-cluster`) would sync them all beside the test's own (and wait for their passes
    when it stops). Their finalizers go first: no daemon is left to honour them. Nothing they
    applied is touched."""
    for listed in (ROOTSYNCS, REPOSYNCS):
        items = _listed(cluster, listed)
        for item in items:
            meta = item["metadata"]
            path = f"{GROUP}/namespaces/{meta['namespace']}/{listed.rsplit('/', 1)[1]}/{meta['name']}"
            try:
                if meta.get("finalizers"):
                    cluster.request(
                        "PATCH",
                        path,
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
                cluster.request("DELETE", path)
            except ApiError as e:
                if e.status != 404:
                    raise
        if items:
            _until_none(cluster, listed)


def _until_none(cluster: Cluster, path: str) -> None:
    eventually(lambda: not _listed(cluster, path), 30)


def _listed(cluster: Cluster, path: str) -> list[dict[str, Any]]:
    """The items at ``path``; none when acm-lite's CRDs are not installed yet."""
    deadline = time.monotonic() + 30
    while True:
        try:
            items: list[dict[str, Any]] = cluster.request("GET", path)["items"]
            return items
        except ApiError as e:
            if e.status == 404:
                return []
            if e.status != 429 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)  # a CRD just installed: its storage answers 429 for a moment
