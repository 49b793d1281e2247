"""Read trees of a local Git repository (the source's mirror) without a work tree: what changed
between two commits, the entries of one commit, and blobs written out as files.

Everything here is bounded (time, output, number of paths) and says "unknown" (None, or
``TreeError``) rather than guess: callers fall back to the slow, general way.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from acm_lite import bounded

TIMEOUT = float(os.environ.get("ACM_LITE_GIT_TIMEOUT", "300"))
REGULAR = {"100644": 0o644, "100755": 0o755}  # the modes a full export gives these files
SYMLINK, GITLINK, MISSING = "120000", "160000", "000000"
_OBJECT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_ENTRY_BYTES = 4096 + 200  # a path git accepts, and its line
MAX_OUTPUT = 64 << 20  # of one listing or diff: past it, the caller takes the general way
MAX_SYMLINK = 4096  # PATH_MAX: a longer target is no link the system can make
_CHUNK = 1 << 16
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class TreeError(Exception):
    """The tree (or the repository) holds something the fast path does not reproduce exactly."""


@dataclass(frozen=True)
class Change:
    """One path of ``git diff-tree -r --no-renames``: modes are Git's octal strings, ``000000``
    for the side where the path does not exist."""

    old_mode: str
    new_mode: str
    new_object: str
    status: str
    path: str


@dataclass(frozen=True)
class Entry:
    """A non-directory entry of a commit's tree (``git ls-tree -r``)."""

    mode: str
    object: str
    path: str


def is_object_name(name: str) -> bool:
    return bool(_OBJECT.match(name))


def safe_path(path: str) -> bool:
    """A relative slash path that stays where it is joined (no ``..``, ``.``, empty part or NUL)."""
    parts = path.split("/")
    return bool(path) and "\0" not in path and all(p not in ("", ".", "..") for p in parts)


def _environment() -> dict[str, str]:
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "GIT_OPTIONAL_LOCKS": "0"}


def _run(git_dir: Path, args: list[str], max_stdout: int) -> bytes | None:
    """Output of a git command reading ``git_dir``, or None on any failure or limit."""
    try:
        done = bounded.run(
            ["git", "--git-dir", str(git_dir), *args],
            cwd=git_dir,
            env=_environment(),
            timeout=TIMEOUT,
            max_stdout=max_stdout,
        )
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TreeError("a path is not UTF-8") from None


def diff(git_dir: Path, old: str, new: str, directory: str = ".", *, limit: int) -> list[Change] | None:
    """The files (blobs, links, submodules) that differ between commits ``old`` and ``new``,
    below ``directory`` (paths stay relative to the repository's root); None when git fails, a
    path is not UTF-8, or more than ``limit`` paths changed."""
    if not (is_object_name(old) and is_object_name(new)):
        return None
    args = ["diff-tree", "-r", "--no-renames", "--no-ext-diff", "--no-textconv", "-z", old, new]
    if directory not in ("", "."):
        args += ["--", f":(literal){directory}"]
    out = _run(git_dir, args, max_stdout=min((limit + 1) * _ENTRY_BYTES, MAX_OUTPUT))
    if out is None:
        return None
    fields = out.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    if len(fields) % 2 or len(fields) // 2 > limit:
        return None
    changes = []
    try:
        for head, raw_path in zip(fields[0::2], fields[1::2], strict=True):
            old_mode, new_mode, _old_object, new_object, status = head.decode("ascii").lstrip(":").split(" ")
            changes.append(Change(old_mode, new_mode, new_object, status, _decode(raw_path)))
    except (UnicodeDecodeError, ValueError, TreeError):
        return None
    return changes


def entries(git_dir: Path, commit: str, *paths: str, limit: int) -> list[Entry] | None:
    """Every non-directory entry of ``commit`` (at or below ``paths``, else all); None on failure,
    a path that is not UTF-8, or more than ``limit`` entries."""
    if not is_object_name(commit):
        return None
    args = ["ls-tree", "-r", "-z", "--full-tree", commit]
    if paths and "." not in paths:
        args += ["--", *(f":(literal){path}" for path in paths)]
    out = _run(git_dir, args, max_stdout=min((limit + 1) * _ENTRY_BYTES, MAX_OUTPUT))
    if out is None:
        return None
    lines = [line for line in out.split(b"\0") if line]
    if len(lines) > limit:
        return None
    found = []
    try:
        for line in lines:
            head, raw_path = line.split(b"\t", 1)
            mode, _kind, name = head.decode("ascii").split(" ")
            found.append(Entry(mode, name, _decode(raw_path)))
    except (UnicodeDecodeError, ValueError, TreeError):
        return None
    return found


def write_blobs(git_dir: Path, wanted: Iterable[Entry], root: Path) -> None:
    """Write each entry's blob below ``root`` through one ``git cat-file --batch``: a regular file
    with the export's mode, or a symbolic link. The parent directories exist already; nothing
    is written through a link or over an existing name. Raises ``TreeError`` or OSError."""
    todo = list(wanted)
    if not todo:
        return
    proc = subprocess.Popen(
        ["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
        cwd=git_dir,
        env=_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    requests = b"".join(f"{entry.object}\n".encode() for entry in todo)

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(requests)
            proc.stdin.close()
        except OSError:  # killed: the reader sees the end of the output
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    timer = threading.Timer(TIMEOUT, proc.kill)
    feeder.start()
    timer.start()
    started = time.monotonic()
    try:
        for entry in todo:
            _write_one(proc.stdout, entry, root)
        if time.monotonic() - started > TIMEOUT:
            raise TreeError("git cat-file took too long")
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
        feeder.join()
        proc.stdout.close()
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _write_one(out: IO[bytes], entry: Entry, root: Path) -> None:
    header = out.readline(200).split()
    if len(header) != 3 or header[0].decode("ascii", "replace") != entry.object or header[1] != b"blob":
        raise TreeError(f"git cat-file did not give the blob of {entry.path}")
    size = int(header[2])
    target = os.path.join(root, entry.path)
    if entry.mode == SYMLINK:
        if size > MAX_SYMLINK:
            raise TreeError(f"the symbolic link {entry.path} is too long")
        link = _read_exactly(out, size)
        if b"\0" in link:
            raise TreeError(f"the symbolic link {entry.path} holds a NUL")
        os.symlink(link, target)
    else:
        fd = os.open(target, _CREATE, 0o600)
        try:
            left = size
            while left:
                chunk = out.read(min(left, _CHUNK))
                if not chunk:
                    raise TreeError("git cat-file stopped early")
                _write_all(fd, chunk)
                left -= len(chunk)
            os.fchmod(fd, REGULAR[entry.mode])
        finally:
            os.close(fd)
    if out.read(1) != b"\n":
        raise TreeError("git cat-file stopped early")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(out: IO[bytes], size: int) -> bytes:
    data = out.read(size)
    if len(data) != size:
        raise TreeError("git cat-file stopped early")
    return data
