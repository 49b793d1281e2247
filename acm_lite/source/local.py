"""A plain local directory as a source (no Git): for `vet`, `hydrate` and development.

A snapshot of a directory is the directory itself (nothing is copied), with a record of every
file's (size, mtime_ns, inode, ctime_ns) taken first, so a later snapshot can tell which files
changed (``source.changes``). ctime cannot be set by any tool (``touch -d``, ``cp -p``, ``rsync
-t`` set mtime only) and changes with every write, rename-over gives a new inode, so an equal
record means an unchanged file, with two exceptions handled: a file written within one timestamp
tick of the record (``racy``, always reported changed next time, as Git treats racily clean
index entries), and file systems whose timestamps or inode numbers come from elsewhere (network
and FUSE file systems, FAT): no record there.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source.snapshot import FileRecord, FileStat, Snapshot

# local file systems stamping files with this machine's clock and keeping inode numbers stable
TRUSTED_FILE_SYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "bcachefs", "jfs"}
)
# a file changed this shortly before the record may change again with the same timestamps
# (one-second granularity of ext3's small inodes, a jiffy elsewhere)
RACY_NS = 1_000_000_000
MAX_RECORDED = 100_000
SKIPPED = frozenset({".git"})  # as the renderer skips it; the reader skips every dot name


def is_git_repository(path: Path) -> bool:
    """A work tree (``.git`` inside) or a bare repository."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def snapshot(path: Path, directory: str = ".") -> Snapshot:
    root = (path / directory).resolve()
    if not root.is_dir():
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND, f"directory {root} does not exist", hint="check the path and --dir"
        )
    return Snapshot(root, str(path), "(local)", None, directory, record=record(root))


def _unescape(field: str) -> str:
    """A mount point as /proc/self/mountinfo writes it (space, tab, newline, backslash in octal)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def file_system(path: Path) -> str | None:
    """The type of the file system holding ``path`` (the longest mount point above it)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.read(4 << 20).splitlines()
    except OSError:
        return None
    real, best, kind = os.path.realpath(path), "", None
    for line in lines:
        fields, _, rest = line.partition(" - ")
        parts = fields.split(" ")
        if len(parts) < 5 or not rest:
            continue
        mount = _unescape(parts[4])
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, rest.split(" ", 1)[0]
    return kind


def record(root: Path) -> FileRecord | None:
    """Every regular file below ``root`` with its stat, or None when that cannot be trusted to tell
    changes: an untrusted file system, another one mounted below, a symbolic link (what it points
    at may change while it does not), a FIFO or device, too many files, or an error."""
    if file_system(root) not in TRUSTED_FILE_SYSTEMS:
        return None
    taken = time.time_ns()
    files: dict[str, FileStat] = {}
    racy: set[str] = set()
    try:
        device = os.stat(root).st_dev
        pending = [""]
        while pending:
            folder = pending.pop()
            with os.scandir(os.path.join(root, folder)) as listing:
                for entry in listing:
                    if entry.name in SKIPPED:
                        continue
                    rel = f"{folder}/{entry.name}" if folder else entry.name
                    info = entry.stat(follow_symlinks=False)
                    if info.st_dev != device:
                        return None
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(rel)
                        continue
                    if not stat.S_ISREG(info.st_mode) or len(files) >= MAX_RECORDED:
                        return None
                    files[rel] = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
                    if max(info.st_mtime_ns, info.st_ctime_ns) >= taken - RACY_NS:
                        racy.add(rel)
    except (OSError, UnicodeError):
        return None
    return FileRecord(taken, files, frozenset(racy))
