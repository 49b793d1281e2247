"""Rendered output kept by key: a bounded in-memory LRU of parsed results, and optionally the raw
output on disk (one file per key, written atomically) so a restarted process renders nothing
it rendered before. The disk part is bounded too: after each write the least recently used files
beyond ``MAX_ENTRIES`` or ``MAX_BYTES`` are removed (a hit refreshes a file's time), and so are
partial files a killed writer left behind.

The memory part does no I/O; ``Disk`` reads and writes files under its directory only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 64  # rendered results kept on disk (one per commit, directory, tools and options)
MAX_BYTES = 512 * 1024 * 1024  # and their total size
PARTIAL_AGE = 3600.0  # seconds after which a partial file is a dead writer's
_PARTIAL = ".partial-"


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
    """Raw rendered output under ``directory``, one ``<key>.yaml`` per key, at most ``max_entries``
    files and ``max_bytes`` in all."""

    def __init__(self, directory: Path, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.directory = directory
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.yaml"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def touch(self, key: str) -> None:
        """Mark ``key`` as just used, so pruning keeps it over older ones."""
        with contextlib.suppress(OSError):
            os.utime(self.path(key))

    def put(self, key: str, output: bytes) -> None:
        """Store ``output``; a failure to store is not an error (the next render runs again)."""
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, partial = tempfile.mkstemp(dir=self.directory, prefix=_PARTIAL)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(output)
                os.replace(partial, self.path(key))
            except OSError:
                os.unlink(partial)
                raise
        self.prune()

    def prune(self) -> list[Path]:
        """Remove the least recently used files beyond the bounds, and stale partial files; the
        files removed. Another process pruning at the same time is harmless (a file already gone
        is skipped), and so is a file this cannot remove."""
        kept: list[tuple[float, int, Path]] = []
        removed: list[Path] = []
        now = time.time()
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return removed
        for entry in entries:
            try:
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            path = Path(entry.path)
            if entry.name.startswith(_PARTIAL):
                if now - stat.st_mtime > PARTIAL_AGE and _remove(path):
                    removed.append(path)
            elif entry.name.endswith(".yaml") and entry.is_file(follow_symlinks=False):
                kept.append((stat.st_mtime, stat.st_size, path))
        kept.sort(reverse=True)  # newest first
        total = 0
        for count, (_mtime, size, path) in enumerate(kept, start=1):
            total += size
            if (count > self.max_entries or total > self.max_bytes) and _remove(path):
                removed.append(path)
        return removed


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:  # gone already (another process pruned it) or not ours to remove
        return False
    return True
