"""The namespace watch of dynamic NamespaceSelectors, against a stand-in cluster: it wakes its sync
once per change of what the selectors could choose from, and a stop followed at once by a new
follow leaves a watch running."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from acm_lite.parse import namespace_selection
from acm_lite.reconcile.namespace_watch import NamespaceWatch


def _ns(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels, "resourceVersion": "2"}}


class _Cluster:
    """Lists one Namespace, then streams the events put on ``events`` until stopped."""

    def __init__(self) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()

    def request(self, _method: str, _path: str) -> dict[str, Any]:
        return {"items": [_ns("a", team="x")], "metadata": {"resourceVersion": "1"}}

    def watch(self, _path: str, _query: dict[str, Any], stop: threading.Event) -> Iterator[Any]:
        while not stop.is_set():
            try:
                yield self.events.get(timeout=0.05)
            except queue.Empty:
                continue


def _eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_change_wakes_once_and_a_restart_keeps_watching() -> None:
    cluster, woken = _Cluster(), []
    watch = NamespaceWatch(cluster, lambda: woken.append(1), retry=0.05)  # type: ignore[arg-type]
    used = namespace_selection.live([_ns("a", team="x")])
    watch.follow(used)
    watch.follow(None)  # a pass without dynamic selectors ...
    watch.follow(used)  # ... and at once one with: the old thread must not be taken for running
    _eventually(lambda: watch.watching and not watch._stop.is_set())
    cluster.events.put({"type": "MODIFIED", "object": _ns("a", team="x")})  # no label change
    cluster.events.put({"type": "ADDED", "object": _ns("b", team="x")})
    cluster.events.put({"type": "MODIFIED", "object": _ns("b", team="x")})
    _eventually(lambda: woken == [1])
    time.sleep(0.2)
    assert woken == [1]
    watch.stop()
