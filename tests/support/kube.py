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
