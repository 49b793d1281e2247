"""What a source stage hands on: a directory to read, and where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# (size, mtime_ns, inode, ctime_ns) of one file, as lstat gave them
FileStat = tuple[int, int, int, int]


@dataclass(frozen=True)
class FileRecord:
    """Every file below a plain directory's root when its snapshot was taken (slash paths).

    ``racy`` are the files changed so shortly before ``taken_ns`` that a later change within the
    same timestamp tick would leave their stat unchanged: they cannot be proven unchanged later.
    """

    taken_ns: int
    files: Mapping[str, FileStat]
    racy: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of ``repo`` at ``commit`` (None for a plain directory), narrowed to ``dir``.

    ``git_dir`` is the Git repository holding ``commit`` when the files below ``root`` are exactly
    that commit's tree at ``dir`` (a Git source, ``dir`` reached through no symbolic link);
    ``record`` is a plain directory's files when the snapshot was taken, when it can be trusted.
    Both only serve to tell what changed between two snapshots (``source.changes``).
    """

    root: Path
    repo: str
    revision: str
    commit: str | None
    dir: str = "."
    git_dir: Path | None = field(default=None, compare=False)
    record: FileRecord | None = field(default=None, compare=False, repr=False)

    @property
    def short_commit(self) -> str:
        return self.commit[:12] if self.commit else "(working tree)"
