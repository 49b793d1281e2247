"""Which files differ between two snapshots of one source (placeholder: compares every file)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from acm_lite.source.snapshot import Snapshot


@dataclass(frozen=True)
class Changes:
    modified: frozenset[str]
    removed: frozenset[str]


def _files(root: Path) -> dict[str, str]:
    out = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = Path(base) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changed(old: Snapshot, new: Snapshot) -> Changes | None:
    if old.repo != new.repo or old.dir != new.dir or old.commit is None or new.commit is None:
        return None
    a, b = _files(old.root), _files(new.root)
    return Changes(frozenset(p for p, h in b.items() if a.get(p) != h), frozenset(p for p in a if p not in b))
