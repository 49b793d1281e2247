"""Live Namespaces for dynamic NamespaceSelectors: watched only while a sync's source has one, so a
Namespace created, deleted or relabelled in the cluster starts a pass (as Config Sync's namespace
controller does). One LIST, then a watch from its resourceVersion; a broken watch lists again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError
from acm_lite.parse import namespace_selection
from acm_lite.parse.namespace_selection import LiveNamespaces

log = logging.getLogger("acm_lite.namespaces")
PATH = "/api/v1/namespaces"


class NamespaceWatch:
    """Wakes a sync when the live Namespaces differ from those its last pass selected from."""

    def __init__(self, cluster: Cluster, on_change: Callable[[], None], *, retry: float = 1.0):
        self.cluster, self.on_change, self.retry = cluster, on_change, retry
        self._lock = threading.Lock()
        self._used: LiveNamespaces | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def follow(self, used: LiveNamespaces | None) -> None:
        """After a pass: the live Namespaces it selected from, or None when its source has no
        dynamic NamespaceSelector (the watch then stops)."""
        with self._lock:
            self._used = used
        if used is None:
            self.stop()
        elif self._stop.is_set() or not self.watching:  # a stopped thread ends on its own
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), daemon=True, name="namespace-watch"
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, stop: threading.Event) -> None:
        items: dict[str, dict[str, Any]] = {}
        version: str | None = None
        while not stop.is_set():
            try:
                if version is None:
                    listed = self.cluster.request("GET", PATH)
                    items = {i["metadata"]["name"]: i for i in listed.get("items") or []}
                    version = (listed.get("metadata") or {}).get("resourceVersion")
                    self._compare(items)
                version = self._follow_events(items, version, stop)
            except (AcmError, ApiError) as e:
                log.info("namespace watch interrupted", extra={"fields": {"error": str(e)}})
                version = None
                stop.wait(self.retry)
            except Exception:  # a bug must not end the watch for good
                log.exception("namespace watch failed")
                version = None
                stop.wait(self.retry)

    def _follow_events(
        self, items: dict[str, dict[str, Any]], version: str | None, stop: threading.Event
    ) -> str | None:
        """Apply watch events to ``items`` until the server ends the watch; the version to go on
        from (None: list again)."""
        for event in self.cluster.watch(
            PATH, {"resourceVersion": version, "timeoutSeconds": 60, "allowWatchBookmarks": "true"}, stop
        ):
            kind, obj = event.get("type"), event.get("object") or {}
            meta = obj.get("metadata") or {}
            if kind == "ERROR":  # too old a version: start over from a fresh LIST
                return None
            version = meta.get("resourceVersion", version)
            if kind == "DELETED":
                items.pop(meta.get("name", ""), None)
            elif kind in ("ADDED", "MODIFIED"):
                items[meta.get("name", "")] = obj
            else:
                continue
            self._compare(items)
        return version

    def _compare(self, items: dict[str, dict[str, Any]]) -> None:
        current = namespace_selection.live(items.values())
        with self._lock:
            changed = self._used is not None and current != self._used
            if changed:
                self._used = current  # one wake per change, not one per later event
        if changed:
            self.on_change()
