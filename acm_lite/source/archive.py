"""Unpack a tarball from an untrusted source (a Helm chart, an OCI layer) into a directory.

Only directories and regular files are written, each below the target: a member with an
absolute path or one climbing out (``../``), a hard link, a device, a FIFO, or (unless
``symlinks`` allows them) a symbolic link is refused, and so is a symbolic link whose target
leaves the target directory. The unpacked size and the member count are bounded, so a small
compressed layer cannot fill the disk. Every refusal is ``ACM1105`` naming the source.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from pathlib import Path

from acm_lite import errors
from acm_lite.errors import AcmError

MAX_UNPACKED = int(os.environ.get("ACM_LITE_SOURCE_MAX_UNPACKED_MB", "512")) << 20
MAX_MEMBERS = 100_000


def _rejected(about: str, why: str) -> AcmError:
    return AcmError(errors.ARTIFACT_REJECTED, f"{about}: {why}", hint="the archive was not unpacked")


def _safe_name(name: str, about: str) -> str:
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _rejected(about, f"member {errors.shown(name)} has an absolute path")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{name}/":
        raise _rejected(about, f"member {errors.shown(name)} leads outside the archive")
    return normal


def unpack(
    data: bytes,
    target: Path,
    about: str,
    *,
    symlinks: bool = True,
    strip: str | None = None,
    max_bytes: int = MAX_UNPACKED,
    budget: list[int] | None = None,
) -> None:
    """Unpack ``data`` (a tar, gzip-compressed or not) into ``target`` (which exists).
    ``strip``: a leading directory every member must be under, removed (a chart's own name).
    ``budget``: a shared remaining byte count, when several layers go into one directory."""
    budget = budget if budget is not None else [max_bytes]
    count = 0
    with _open(data, about) as archive:
        try:
            for member in archive:
                count += 1
                if count > MAX_MEMBERS:
                    raise _rejected(about, f"more than {MAX_MEMBERS} members")
                _unpack_one(archive, member, target, about, symlinks=symlinks, strip=strip, budget=budget)
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            if isinstance(e, AcmError):
                raise
            raise _rejected(about, f"not a readable tar archive ({e})") from None


def _open(data: bytes, about: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise _rejected(about, f"not a tar archive ({e})") from None


def _unpack_one(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    target: Path,
    about: str,
    *,
    symlinks: bool,
    strip: str | None,
    budget: list[int],
) -> None:
    name = _safe_name(member.name, about)
    if strip is not None:
        if name == strip:
            return
        if not name.startswith(strip + "/"):
            raise _rejected(about, f"member {errors.shown(member.name)} is not under {strip}/")
        name = name[len(strip) + 1 :]
    if name in ("", "."):
        return
    path = target / name
    _parents_inside(path, target, about, member.name)
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
        return
    if member.issym():
        _symlink(member, name, path, about, allowed=symlinks)
        return
    if not member.isreg():
        kind = "a hard link" if member.islnk() else "a device, FIFO or other special file"
        raise _rejected(about, f"member {errors.shown(member.name)} is {kind}")
    budget[0] -= member.size
    if budget[0] < 0:
        raise _rejected(about, "unpacks to more than the size limit")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise _rejected(about, f"member {errors.shown(member.name)} would write through a symbolic link")
    source = archive.extractfile(member)
    if source is None:
        raise _rejected(about, f"member {errors.shown(member.name)} cannot be read")
    with source, path.open("wb") as out:
        written = 0
        while chunk := source.read(1 << 16):
            written += len(chunk)
            if written > member.size:
                raise _rejected(about, f"member {errors.shown(member.name)} is longer than it says")
            out.write(chunk)
    path.chmod(0o644 | (0o111 if member.mode & 0o100 else 0))


def _symlink(member: tarfile.TarInfo, name: str, path: Path, about: str, *, allowed: bool) -> None:
    if not allowed:
        raise _rejected(about, f"member {errors.shown(member.name)} is a symbolic link")
    link = member.linkname
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
    if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise _rejected(
            about, f"symbolic link {errors.shown(member.name)} leads outside the archive ({link!r})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        raise _rejected(about, f"member {errors.shown(member.name)} appears twice")
    os.symlink(link, path)


def _parents_inside(path: Path, target: Path, about: str, name: str) -> None:
    """No directory on the way to ``path`` may be a symbolic link (written earlier in the same
    archive): writing through it could leave the target."""
    current = path.parent
    while current != target and target in current.parents:
        if current.is_symlink():
            raise _rejected(about, f"member {errors.shown(name)} would write through a symbolic link")
        current = current.parent
