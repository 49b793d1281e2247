"""What a source stage hands on: a directory to read, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of ``repo`` at ``commit`` (None for a plain directory), narrowed to ``dir``."""

    root: Path
    repo: str
    revision: str
    commit: str | None
    dir: str = "."

    @property
    def short_commit(self) -> str:
        return self.commit[:12] if self.commit else "(working tree)"
