"""Find the manifest files of a source and read them, refusing anything that is not a regular file.

Anyone with push access controls the tree: a FIFO named ``x.yaml`` would block a read forever, a
device node would feed it without end, and a symbolic link may loop or lead out of the source. The
walk is iterative (no recursion limit to hit in a deep tree) and reads are bounded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from acm_lite import errors
from acm_lite.errors import Problem

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_IGNORED_PARTS = frozenset({".github", ".gitlab", ".gitlab-ci.yml"})
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_BOM = "\ufeff"


@dataclass(frozen=True)
class Walk:
    """The manifest files found (slash paths relative to the root, sorted) and what was refused."""

    files: list[str]
    problems: list[Problem]


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_PARTS


def read_by_walk(root: Path, rel: str) -> bool | None:
    """Whether ``walk`` would list ``rel`` (a path below ``root``, read from a list of changed
    files): True for a regular manifest file in no skipped directory, False for a file it never
    reads (another suffix, a skipped part, gone); None when only the walk itself can tell (a
    symbolic link on the way, anything but a regular file)."""
    parts = rel.split("/")
    if not rel or any(not p or p in (".", "..") for p in parts):
        return None
    if any(_skipped(p) for p in parts):
        return False
    if not parts[-1].endswith(MANIFEST_SUFFIXES):
        return None if os.path.islink(os.path.join(root, rel)) else False
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            return None
    if not path.exists():
        return False
    return True if path.is_file() else None


def walk(root: Path, max_files: int) -> Walk:
    """Every manifest file under ``root``; symbolic links are checked, never followed into
    directories (no cycles, no duplicates)."""
    real_root = os.path.realpath(root)
    found: list[str] = []
    problems: list[Problem] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir)))
        except OSError as e:
            problems.append(
                Problem(errors.OBJECT_PARSE, f"cannot list directory: {e.strerror}", source=rel_dir or ".")
            )
            continue
        for entry in entries:
            if _skipped(entry.name):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                pending.append(rel)
            elif (entry.name.endswith(MANIFEST_SUFFIXES) or entry.is_symlink()) and _accepted(
                entry, rel, real_root, problems
            ):
                found.append(rel)
                if len(found) > max_files:
                    return Walk(
                        [],
                        [
                            Problem(
                                errors.TOO_MANY_FILES,
                                f"more than {max_files} manifest files",
                                source=".",
                                hint="sync a sub-directory, or split the repository",
                            )
                        ],
                    )
    return Walk(sorted(found), sorted(problems, key=lambda p: p.source or ""))


def _accepted(entry: os.DirEntry[str], rel: str, real_root: str, problems: list[Problem]) -> bool:
    """Whether a file-like entry is a manifest to read; refusals are added to ``problems``."""
    manifest = entry.name.endswith(MANIFEST_SUFFIXES)
    if not entry.is_symlink():
        if entry.is_file(follow_symlinks=False):
            return True
        with contextlib.suppress(OSError):  # gone since the directory was listed: nothing to say
            problems.append(_not_regular(rel, entry.stat(follow_symlinks=False).st_mode))
        return False
    try:
        target = os.path.realpath(entry.path, strict=True)
        mode = os.stat(target).st_mode
    except OSError as e:
        if manifest:
            why = "loops" if e.errno == errno.ELOOP else "points at nothing"
            problems.append(
                Problem(
                    errors.BROKEN_SYMLINK,
                    f"symbolic link {why}",
                    source=rel,
                    hint="remove the link or replace it with the file",
                )
            )
        return False
    if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
        if manifest or stat.S_ISDIR(mode):
            problems.append(
                Problem(
                    errors.SYMLINK_OUTSIDE_SOURCE,
                    f"symbolic link points outside the source directory (to {target})",
                    source=rel,
                    hint="replace the link with the file it points to",
                )
            )
        return False
    if stat.S_ISDIR(mode) or not manifest:
        return False
    if not stat.S_ISREG(mode):
        problems.append(_not_regular(rel, mode))
        return False
    return True


def _not_regular(rel: str, mode: int) -> Problem:
    kind = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    return Problem(
        errors.NOT_A_REGULAR_FILE,
        f"{kind}, not a regular file: it is not read",
        source=rel,
        hint="only regular files are read as manifests",
    )


def read_text(root: Path, rel: str, max_bytes: int) -> str | Problem:
    """The file's text (a leading UTF-8 byte-order mark dropped), or why it cannot be read.
    Checked again on the open descriptor, so a file swapped for a FIFO after the walk is refused
    too; never more than ``max_bytes`` + 1 bytes are read."""
    try:
        fd = os.open(root / rel, _OPEN_FLAGS)
    except OSError as e:
        return Problem(errors.OBJECT_PARSE, f"cannot read file: {e.strerror}", source=rel)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _not_regular(rel, info.st_mode)
        if info.st_size > max_bytes:
            return _too_large(rel, info.st_size, max_bytes)
        data = _read_bounded(fd, max_bytes + 1)
    except OSError as e:
        return Problem(errors.OBJECT_PARSE, f"cannot read file: {e.strerror}", source=rel)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return _too_large(rel, len(data), max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return Problem(
            errors.OBJECT_PARSE,
            f"not UTF-8 at line {line}: {e.reason} (byte 0x{data[e.start]:02x})",
            source=rel,
            hint="save the file as UTF-8",
        )
    return text[1:] if text.startswith(_BOM) else text


def _read_bounded(fd: int, limit: int) -> bytes:
    chunks = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_large(rel: str, size: int, max_bytes: int) -> Problem:
    return Problem(errors.FILE_TOO_LARGE, f"{size} bytes, over the {max_bytes}-byte limit", source=rel)
