"""Read what a render needs from the snapshot, before anything runs: whether the sync directory
holds a kustomization, every kustomization reachable from it (for remote references and paths
leaving the source), and the private copy kustomize renders from.

File-system I/O only (reads the snapshot, writes the copy); no subprocess. The decisions are
``plan``'s. Paths are slash-separated, relative to the snapshot root; a problem's ``source`` is
relative to the sync directory, as the reader's are.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.parse import reader
from acm_lite.render import plan
from acm_lite.render.plan import Kind, Ref, Where

_SKIPPED = frozenset({".git"})


def kustomization_in(directory: Path) -> str | None:
    """The name of the kustomization file directly in ``directory``, if there is one."""
    for name in plan.KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return name
    return None


def kustomization_below(directory: Path) -> str | None:
    """The first kustomization file found in a sub-directory (slash path relative to
    ``directory``), walking without following symbolic links and skipping ``.git``."""
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = sorted(os.scandir(directory / rel_dir), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
            if entry.name in _SKIPPED:
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(rel)
            elif rel_dir and entry.name in plan.KUSTOMIZATION_FILES:
                return rel
    return None


def shown_path(rel: str, sync_dir: str) -> str:
    """A snapshot path as problems name it: relative to the sync directory."""
    return posixpath.relpath(rel or ".", sync_dir or ".")


def inside(path: str, directory: str) -> bool:
    """Whether the real path ``path`` is the real directory ``directory`` or below it."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


@dataclass
class References:
    """What the kustomizations reachable from the sync directory name, checked."""

    problems: list[Problem] = field(default_factory=list)
    leaves_sync_dir: bool = False  # a path names something outside the sync directory
    leaves_own_root: bool = False  # a file outside the kustomization naming it: RootOnly refuses
    kustomizations: int = 0


class _Walk:
    """The breadth-first walk over kustomizations; one instance per render."""

    def __init__(self, root: Path, sync_dir: str, switches: plan.Switches, limit: int):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.sync_dir = sync_dir
        self.real_sync = os.path.realpath(root / sync_dir)
        self.switches = switches
        self.limit = limit
        self.found = References()
        self.queue: deque[str] = deque([sync_dir])
        self.seen = {sync_dir}

    def problem(self, code: errors.Code, message: str, rel: str, hint: str | None = None) -> None:
        self.found.problems.append(Problem(code, message, source=shown_path(rel, self.sync_dir), hint=hint))

    def run(self) -> References:
        while self.queue and not self.found.problems:
            directory = self.queue.popleft()
            name = kustomization_in(self.root / directory)
            if name is None:
                continue  # kustomize says what is missing
            self.found.kustomizations += 1
            if self.found.kustomizations > self.limit:
                self.problem(
                    errors.RENDER_FAILED,
                    f"more than {self.limit} kustomizations are reachable from the sync directory",
                    directory,
                )
                break
            self.kustomization(directory, posixpath.join(directory, name) if directory else name)
        return self.found

    def documents(self, rel: str) -> list[Any] | None:
        if not inside(os.path.realpath(self.root / rel), self.real_root):
            self.problem(
                errors.SYMLINK_OUTSIDE_SOURCE,
                "symbolic link points outside the source",
                rel,
                hint="replace the link with the file it points to",
            )
            return None
        found = reader.load_documents(self.root / rel)
        if isinstance(found, Problem):
            self.problem(
                errors.RENDER_FAILED, f"cannot read {shown_path(rel, self.sync_dir)}: {found.message}", rel
            )
            return None
        return found

    def kustomization(self, directory: str, kfile: str) -> None:
        docs = self.documents(kfile)
        if docs is None:
            return
        doc = docs[0] if docs and isinstance(docs[0], dict) else {}
        for ref in plan.kustomization_refs(doc):
            self.ref(directory, kfile, ref)
        for chart in plan.charts(doc):
            self.chart(directory, kfile, chart)
        for home in plan.config_homes(doc):
            if home.startswith("/") or ".." in home.split("/"):
                self.problem(
                    errors.RENDER_PATH_OUTSIDE_SOURCE,
                    f"helm's configuration home {errors.shown(home)} is not a plain relative directory",
                    kfile,
                )

    def ref(self, directory: str, kfile: str, ref: Ref) -> None:
        kind = plan.where(ref.value)
        if kind is Where.INLINE:
            if ref.kind is Kind.PLUGIN:
                for doc in plan.inline_documents(ref.value):
                    self.plugin(directory, kfile, doc)
        elif kind is Where.OUTSIDE:
            self.problem(
                errors.RENDER_PATH_OUTSIDE_SOURCE,
                f"{ref.field} names {errors.shown(ref.value)}, outside the source",
                kfile,
                hint="name files by paths relative to the kustomization",
            )
        elif kind is Where.REMOTE and not self.exists_locally(directory, ref.value):
            if not self.switches.network:
                self.problem(
                    errors.RENDER_REMOTE_REFUSED,
                    f"{ref.field} names the remote "
                    f"{errors.shown(ref.value)}; rendering may not reach the network",
                    kfile,
                    hint="vendor it into the repository, or allow network access for rendering",
                )
        else:
            self.local(directory, kfile, ref)

    def exists_locally(self, directory: str, value: str) -> bool:
        """A path kustomize would load locally before trying it as a URL."""
        if "://" in value:
            return False
        rel = plan.join(directory, value)
        return rel is not None and os.path.lexists(self.root / rel)

    def resolved(self, directory: str, kfile: str, ref: Ref) -> tuple[str, str] | None:
        """The snapshot path and real path a local reference names, if both stay inside."""
        rel = plan.join(directory, ref.value)
        real = os.path.realpath(self.root / rel) if rel is not None else ""
        if rel is None or not inside(real, self.real_root):
            self.problem(
                errors.RENDER_PATH_OUTSIDE_SOURCE,
                f"{ref.field} names {errors.shown(ref.value)}, which leads outside the source",
                kfile,
                hint="keep bases, patches and charts inside the repository",
            )
            return None
        if not plan.within(rel, self.sync_dir) or not inside(real, self.real_sync):
            self.found.leaves_sync_dir = True
        return rel, real

    def local(self, directory: str, kfile: str, ref: Ref) -> None:
        found = self.resolved(directory, kfile, ref)
        if found is None:
            return
        rel, real = found
        if os.path.isdir(real):
            if ref.kind in (Kind.TARGET, Kind.PLUGIN) and rel not in self.seen:
                self.seen.add(rel)
                self.queue.append(rel)
            return
        if not os.path.isfile(real) or ref.kind is Kind.DIRECTORY:
            return  # missing: kustomize names it
        if not inside(real, os.path.realpath(self.root / directory)):
            self.found.leaves_own_root = True
        if ref.kind is Kind.PLUGIN:
            for doc in self.documents(rel) or []:
                if isinstance(doc, dict):
                    self.plugin(directory, kfile, doc)

    def plugin(self, directory: str, kfile: str, doc: dict[str, Any]) -> None:
        for ref in plan.plugin_refs(doc):
            self.ref(directory, kfile, ref)
        chart = plan.plugin_chart(doc)
        if chart is not None:
            self.chart(directory, kfile, chart)

    def chart(self, directory: str, kfile: str, chart: plan.Chart) -> None:
        home = Ref(f"{chart.field} chart home", chart.home, Kind.DIRECTORY)
        if plan.where(chart.home) is not Where.LOCAL:
            self.ref(directory, kfile, home)
            return
        where = plan.join(directory, chart.directory())
        if where is not None and os.path.isdir(self.root / where):
            self.local(directory, kfile, Ref(chart.field, chart.directory(), Kind.DIRECTORY))
            return
        if chart.repo and not self.switches.network:
            self.problem(
                errors.RENDER_REMOTE_REFUSED,
                f"{chart.field} pulls the chart "
                f"{errors.shown(chart.name)} from {errors.shown(chart.repo)}; rendering "
                "may not reach the network",
                kfile,
                hint=f"vendor the chart into {chart.directory()!r} next to the "
                "kustomization, or allow network access for rendering",
            )


def references(root: Path, sync_dir: str, switches: plan.Switches, limit: int) -> References:
    """Walk every kustomization reachable from ``sync_dir`` (resources, bases, components,
    generators, transformers, validators) and check each path they name."""
    return _Walk(root, sync_dir, switches, limit).run()


class CopyRootTooNarrowError(Exception):
    """A symbolic link below the copy root points elsewhere in the snapshot."""


@dataclass
class _Copy:
    source: str  # real path of the directory copied
    dest: Path
    real_root: str  # the snapshot's real root: no link may leave it
    sync_dir: str
    prefix: str  # the copied directory, relative to the snapshot root
    max_files: int
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def copy_tree(root: Path, copy_root: str, dest: Path, sync_dir: str, max_files: int) -> list[Problem]:
    """Copy ``copy_root`` of the snapshot to ``dest`` (``.git`` left out), refusing symbolic links
    that leave the snapshot; links inside it are kept, as relative links. Raises
    CopyRootTooNarrowError when a link points inside the snapshot but outside ``copy_root``."""
    job = _Copy(
        os.path.realpath(root / copy_root), dest, os.path.realpath(root), sync_dir, copy_root, max_files
    )
    dest.mkdir(parents=True, exist_ok=True)
    pending = [""]
    while pending and not job.problems:
        rel_dir = pending.pop()
        with os.scandir(os.path.join(job.source, rel_dir)) as entries:
            for entry in entries:
                if job.problems:
                    break
                if entry.name not in _SKIPPED:
                    _copy_entry(job, entry, posixpath.join(rel_dir, entry.name), pending)
    return job.problems


def _copy_entry(job: _Copy, entry: os.DirEntry[str], rel: str, pending: list[str]) -> None:
    target = job.dest / rel
    if entry.is_symlink():
        _copy_link(job, entry, rel)
    elif entry.is_dir(follow_symlinks=False):
        target.mkdir()
        pending.append(rel)
    elif entry.is_file(follow_symlinks=False):
        job.files += 1
        if job.files > job.max_files:
            job.problems.append(
                Problem(
                    errors.TOO_MANY_FILES,
                    f"more than {job.max_files} files to render from",
                    source=shown_path(job.prefix, job.sync_dir),
                )
            )
            return
        shutil.copyfile(entry.path, target, follow_symlinks=False)
        mode = entry.stat(follow_symlinks=False).st_mode
        if mode & 0o111:
            os.chmod(target, stat.S_IMODE(mode) & 0o755)


def _copy_link(job: _Copy, entry: os.DirEntry[str], rel: str) -> None:
    try:
        real = os.path.realpath(entry.path, strict=True)
    except OSError:
        return  # dangling or looping: kustomize says so if it is named
    snapshot_rel = posixpath.join(job.prefix, rel) if job.prefix else rel
    if not inside(real, job.real_root):
        job.problems.append(
            Problem(
                errors.SYMLINK_OUTSIDE_SOURCE,
                "symbolic link points outside the source",
                source=shown_path(snapshot_rel, job.sync_dir),
                hint="replace the link with the file it points to",
            )
        )
        return
    if not inside(real, job.source):
        raise CopyRootTooNarrowError(snapshot_rel)
    parent = os.path.join(job.source, posixpath.dirname(rel))
    os.symlink(os.path.relpath(real, parent), job.dest / rel)
