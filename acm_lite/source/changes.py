"""Which files changed between two snapshots of the same source, when that is known cheaply and
exactly: from the diff of two commits (Git), or from the record of a plain directory's files.

Paths are slash paths relative to the snapshots' root (below the sync's ``dir``). ``modified``
holds the files added or changed (content, or mode for Git), ``removed`` the files gone;
directories are not listed. None means "unknown": read everything again. Only files below
``dir`` are compared: a kustomization there that reads files above it (``../base``) is rendered
from files this does not cover.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from acm_lite.source import gittree
from acm_lite.source.snapshot import FileRecord, Snapshot

MAX_CHANGED = 100_000
MAX_ENTRIES = 500_000


@dataclass(frozen=True)
class Changes:
    modified: frozenset[str]
    removed: frozenset[str]


def changed(old: Snapshot, new: Snapshot) -> Changes | None:
    """The files that differ from ``old`` to ``new``; None when they cannot be told cheaply and
    exactly (another repository or ``dir``, a plain directory without a record, a symbolic link
    below ``dir``, a submodule changing, attributes Git's export applies, a failure)."""
    directory = posixpath.normpath(new.dir)
    if old.repo != new.repo or posixpath.normpath(old.dir) != directory:
        return None
    if old.commit is None and new.commit is None:
        if old.root != new.root or old.record is None or new.record is None:
            return None
        return _from_records(old.record, new.record)
    if old.commit is None or new.commit is None or old.git_dir is None or old.git_dir != new.git_dir:
        return None
    if old.commit == new.commit:
        return Changes(frozenset(), frozenset())
    return _from_git(old, new, directory)


def _from_records(old: FileRecord, new: FileRecord) -> Changes:
    """A file whose stat is unchanged is unchanged, unless it was racy in the older record."""
    modified = {p for p, seen in new.files.items() if old.files.get(p) != seen or p in old.racy}
    return Changes(frozenset(modified), frozenset(old.files.keys() - new.files.keys()))


def _from_git(old: Snapshot, new: Snapshot, directory: str) -> Changes | None:
    assert old.commit and new.commit and new.git_dir
    git_dir = new.git_dir
    if directory.startswith("../") or directory == ".." or (git_dir / "info" / "attributes").exists():
        return None
    prefix = "" if directory == "." else directory + "/"
    # attributes apply from every directory above, and a link below may point at a changed file
    parts = prefix.split("/")[:-1]
    attributes = [f"{'/'.join(parts[:i])}/.gitattributes".lstrip("/") for i in range(len(parts))]
    for commit in (old.commit, new.commit):
        entries = gittree.entries(git_dir, commit, directory, *attributes, limit=MAX_ENTRIES)
        if entries is None or any(
            e.mode == gittree.SYMLINK or e.path.rsplit("/", 1)[-1] == ".gitattributes" for e in entries
        ):
            return None
    diff = gittree.diff(git_dir, old.commit, new.commit, directory, limit=MAX_CHANGED)
    if diff is None or any(gittree.GITLINK in (c.old_mode, c.new_mode) for c in diff):
        return None
    modified: set[str] = set()
    removed: set[str] = set()
    for change in diff:
        if not change.path.startswith(prefix):
            return None
        rel = change.path[len(prefix) :]
        (removed if change.new_mode == gittree.MISSING else modified).add(rel)
    return Changes(frozenset(modified), frozenset(removed))
