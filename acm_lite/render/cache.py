"""Rendered output kept by key: a bounded in-memory LRU of parsed results, and optionally the raw
output on disk (one file per key, written atomically) so a restarted process renders nothing
it rendered before.

The memory part does no I/O; ``Disk`` reads and writes files under its directory only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")


class Memory(Generic[V]):
    """A least-recently-used map of at most ``size`` entries, safe across threads."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Disk:
    """Raw rendered output under ``directory``, one ``<key>.yaml`` per key."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.yaml"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, output: bytes) -> None:
        """Store ``output``; a failure to store is not an error (the next render runs again)."""
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, partial = tempfile.mkstemp(dir=self.directory, prefix=".partial-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(output)
                os.replace(partial, self.path(key))
            except OSError:
                os.unlink(partial)
                raise
