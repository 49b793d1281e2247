"""The render stage: a sync directory holding a kustomization is rendered with ``kustomize build``
(Helm charts inflated by the helm binary) into the objects the read stage takes, as Config Sync's
hydration does; one without is left to the reader.

I/O: reads the snapshot and copies it into a private render directory (``scan``), runs kustomize
there (``run``), and keeps results (``cache``). The snapshot itself is never written: kustomize
renders from the copy, where the root kustomization gets ``buildMetadata: [originAnnotations]``.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from acm_lite import bounded, errors
from acm_lite.devcluster import binaries
from acm_lite.errors import Code, Problem
from acm_lite.objects import Manifest
from acm_lite.parse import reader
from acm_lite.render import cache, plan, scan
from acm_lite.source.snapshot import Snapshot

HIERARCHY = "hierarchy"
_OUTPUT = "rendered.yaml"


@dataclass(frozen=True)
class Options:
    """What a render may do and how much it may take. Everything that could reach outside the
    snapshot is off unless switched on here."""

    allow_network: bool = False  # remote bases, resources and Helm charts
    allow_exec: bool = False  # exec KRM functions (and so alpha plugins)
    allow_alpha_plugins: bool = False
    timeout_seconds: float = 300.0
    max_output_bytes: int = 64 * 1024 * 1024
    max_kustomizations: int = 10_000
    max_source_files: int = 200_000
    cache_dir: Path | None = None  # rendered output kept on disk too, by key
    kustomize: Path | None = None  # the binaries; found as `acm-lite dev build` leaves them
    helm: Path | None = None
    work_dir: Path | None = None  # where private render directories go (the system's temp)

    def switches(self) -> plan.Switches:
        return plan.Switches(self.allow_network, self.allow_exec, self.allow_alpha_plugins)


@dataclass
class Rendered(reader.ReadResult):
    """The objects kustomize rendered (each with ``source`` the sync directory's kustomization
    and ``extra["origin"]`` the file kustomize recorded), or the problems that stopped it: what
    ``reader.read`` returns, so the read stage takes either."""

    kustomization: str = ""  # relative to the sync directory; "" when there is none
    cached: str = ""  # "memory" or "disk" when nothing ran
    seconds: float = 0.0
    tools: dict[str, str] = dataclasses.field(default_factory=dict)  # kustomize's and helm's versions


_MEMORY: cache.Memory[Rendered] = cache.Memory(8)


def clear_cache() -> None:
    """Forget every rendered result held in memory."""
    _MEMORY.clear()


def _failed(
    code: Code, message: str, source: str | None, hint: str | None = None, kustomization: str = ""
) -> Rendered:
    return Rendered(problems=[Problem(code, message, source=source, hint=hint)], kustomization=kustomization)


def render(
    snapshot_root: Path,
    sync_dir: str = ".",
    options: Options | None = None,
    *,
    commit: str | None = None,
    source_format: str = "unstructured",
) -> Rendered | None:
    """Render ``sync_dir`` of the snapshot at ``snapshot_root`` when it holds a kustomization;
    None when it needs no rendering (read it as usual). A ``commit`` makes the result cacheable
    (a plain directory, without one, is rendered every time)."""
    options = options or Options()
    sync = plan.normalize(sync_dir)
    if sync is None:
        return _failed(
            errors.RENDER_INTERNAL,
            f"the sync directory {errors.shown(sync_dir)} is not inside the snapshot",
            None,
        )
    name = scan.kustomization_in(snapshot_root / sync)
    if name is None:
        return _missing(snapshot_root, sync)
    if source_format == HIERARCHY:
        return _failed(
            errors.RENDER_NEEDS_UNSTRUCTURED,
            "sourceFormat must be unstructured when a kustomization is in the sync directory",
            name,
            "set sourceFormat: unstructured, or remove the kustomization",
            kustomization=name,
        )
    tools = _tools(options)
    if isinstance(tools, Rendered):
        return tools
    key = _key(commit, sync, tools, options)
    hit = _cached(key, name, options)
    if hit is not None:
        hit.tools = dict(tools.versions)
        return hit
    started = time.monotonic()
    result, output = _render(snapshot_root, sync, name, tools, options)
    result.seconds = time.monotonic() - started
    result.tools = dict(tools.versions)
    if key is not None and output is not None:
        _MEMORY.put(key, _copied(result))  # callers may extend their lists; the cache's stay
        if options.cache_dir is not None:
            cache.Disk(options.cache_dir).put(key, output)
    return result


def render_snapshot(
    snapshot: Snapshot, options: Options | None = None, *, source_format: str = "unstructured"
) -> Rendered | None:
    """``render`` for a source stage's snapshot (whose ``root`` is already its sync directory)."""
    sync = plan.normalize(snapshot.dir) or ""
    depth = len(sync.split("/")) if sync else 0
    root = snapshot.root.parents[depth - 1] if depth else snapshot.root
    return render(root, sync or ".", options, commit=snapshot.commit, source_format=source_format)


def _missing(snapshot_root: Path, sync: str) -> Rendered | None:
    below = scan.kustomization_below(snapshot_root / sync)
    if below is None:
        return None
    shown = sync or "."
    return _failed(
        errors.RENDER_FAILED,
        f"Kustomization config file is missing from the sync "
        f"directory {shown}. To fix, either add kustomization.yaml in the sync "
        f"directory to trigger the rendering process, or remove kustomization.yaml "
        f"from all sub directories to skip rendering (found {below}).",
        below,
    )


@dataclass(frozen=True)
class _Tools:
    kustomize: Path
    helm: Path
    identity: dict[str, str]
    versions: dict[str, str]


def _tools(options: Options) -> _Tools | Rendered:
    found = {
        "kustomize": options.kustomize or binaries.find("kustomize"),
        "helm": options.helm or binaries.find("helm"),
    }
    identity: dict[str, str] = {}
    for tool, path in found.items():
        try:
            info = os.stat(path) if path is not None else None
        except OSError:
            info = None
        if path is None or info is None:
            return _failed(
                errors.RENDER_INTERNAL,
                f"the {tool} binary is not available",
                None,
                hint=f"run `acm-lite dev build {tool}` or set KUBEBUILDER_ASSETS",
            )
        identity[tool] = f"{path}:{info.st_size}:{info.st_mtime_ns}"
    assert found["kustomize"] is not None and found["helm"] is not None
    versions = {tool: _version(tool, path) for tool, path in found.items() if path is not None}
    return _Tools(found["kustomize"], found["helm"], identity, versions)


def _version(tool: str, path: Path) -> str:
    """The version a binary was built at, as its cache directory (``NAME-VERSION/NAME``) names
    it; "unknown" for one found elsewhere (``KUBEBUILDER_ASSETS``, an explicit path)."""
    prefix = f"{tool}-"
    parent = path.parent.name
    return parent[len(prefix) :] if parent.startswith(prefix) and len(parent) > len(prefix) else "unknown"


def _key(commit: str | None, sync: str, tools: _Tools, options: Options) -> str | None:
    if commit is None:
        return None
    return plan.cache_key(commit, sync, tools.identity, options.switches(), options.max_output_bytes)


def _cached(key: str | None, name: str, options: Options) -> Rendered | None:
    if key is None:
        return None
    hit = _MEMORY.get(key)
    if hit is not None:
        return _copied(hit, cached="memory")
    if options.cache_dir is None or not cache.Disk(options.cache_dir).has(key):
        return None
    disk = cache.Disk(options.cache_dir)
    result = _parsed(disk.directory, disk.path(key).name, name, options)
    if result.problems:
        return None  # unreadable: render again
    disk.touch(key)
    _MEMORY.put(key, result)
    return _copied(result, cached="disk")


def _copied(result: Rendered, cached: str = "") -> Rendered:
    """The same objects (never mutated) in lists of its own."""
    return dataclasses.replace(
        result,
        manifests=list(result.manifests),
        problems=list(result.problems),
        cached=cached or result.cached,
        seconds=0.0 if cached else result.seconds,
    )


@dataclass(frozen=True)
class _Job:
    root: Path  # the snapshot root
    sync: str  # the sync directory, relative to it
    name: str  # the kustomization file's name
    tools: _Tools
    options: Options


def _render(
    root: Path, sync: str, name: str, tools: _Tools, options: Options
) -> tuple[Rendered, bytes | None]:
    job = _Job(root, sync, name, tools, options)
    found = scan.references(root, sync, options.switches(), options.max_kustomizations)
    if found.problems:
        return Rendered(problems=found.problems, kustomization=name), None
    try:
        with tempfile.TemporaryDirectory(prefix="acm-lite-render-", dir=options.work_dir) as tmp:
            return _in_work_dir(job, Path(tmp), found)
    except OSError as e:
        return _failed(
            errors.RENDER_INTERNAL,
            f"the render directory could not be prepared: {e.strerror or e}",
            name,
            kustomization=name,
        ), None


def _copy(job: _Job, work: Path, wide: bool) -> tuple[str, list[Problem]]:
    """Copy the sync directory (the whole snapshot when something outside it is named) to
    ``work/src``; the copied directory's snapshot path and any refusals."""
    dest = work / "src"
    copy_root = "" if wide else job.sync
    limit = job.options.max_source_files
    try:
        return copy_root, scan.copy_tree(job.root, copy_root, dest, job.sync, limit)
    except scan.CopyRootTooNarrowError:
        shutil.rmtree(dest)
        return "", scan.copy_tree(job.root, "", dest, job.sync, limit)


def _in_work_dir(job: _Job, work: Path, found: scan.References) -> tuple[Rendered, bytes | None]:
    for sub in ("home", "tmp", "plugins"):
        (work / sub).mkdir()
    copy_root, refused = _copy(job, work, found.leaves_sync_dir)
    if refused:
        return Rendered(problems=refused, kustomization=job.name), None
    target = work / "src" / os.path.relpath(job.root / job.sync, job.root / copy_root)
    _add_origin_annotations(target / job.name)
    restrictor = plan.NO_RESTRICTIONS if found.leaves_own_root else plan.ROOT_ONLY
    switches = job.options.switches()
    argv = plan.command(str(job.tools.kustomize), str(job.tools.helm), str(target), switches, restrictor)
    with bounded.closed_port() as port:
        env = plan.environment(os.environ, str(work), switches, port)
        try:
            finished = bounded.run(
                argv,
                cwd=work,
                env=env,
                timeout=job.options.timeout_seconds,
                max_stdout=job.options.max_output_bytes,
            )
        except OSError as e:
            return _not_started(e, job.name), None
    problem = _failure(finished, job, _shown_paths(work, copy_root, job.tools))
    if problem is not None:
        return Rendered(problems=[problem], kustomization=job.name), None
    (work / _OUTPUT).write_bytes(finished.stdout)
    return _parsed(work, _OUTPUT, job.name, job.options), finished.stdout


def _add_origin_annotations(kustomization: Path) -> None:
    """Ask kustomize to record each object's origin, in the copy (as Config Sync does in place)."""
    try:
        text = kustomization.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # kustomize says what is wrong with it
    edited = plan.with_origin_annotations(text)
    if edited is not None:
        kustomization.unlink()  # a link in the copy is replaced, never written through
        kustomization.write_text(edited, encoding="utf-8")


def _shown_paths(work: Path, copy_root: str, tools: _Tools) -> dict[str, str]:
    prefix = f"{copy_root}/" if copy_root else ""
    shown: dict[str, str] = {}
    for base in {str(work), os.path.realpath(work)}:
        shown[f"{base}/src/"] = prefix
        shown[f"{base}/src"] = copy_root or "."
        shown[base] = "<render-dir>"
    shown[str(tools.helm)] = "helm"
    shown[str(tools.kustomize)] = "kustomize"
    return shown


def _not_started(e: OSError, name: str) -> Rendered:
    transient = e.errno in (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE)
    code = errors.RENDER_TRANSIENT if transient else errors.RENDER_INTERNAL
    return _failed(code, f"kustomize could not be started: {e.strerror or e}", name, kustomization=name)


def _failure(finished: bounded.Finished, job: _Job, shown: dict[str, str]) -> Problem | None:
    where, name, options = job.sync or ".", job.name, job.options
    if finished.timed_out:
        return Problem(
            errors.RENDER_TRANSIENT,
            f"kustomize build in {where} did not finish within {options.timeout_seconds:g}s and was stopped",
            source=name,
            hint="it is retried; raise the render time limit if it always takes longer",
        )
    if finished.too_large:
        return Problem(
            errors.RENDER_OUTPUT_TOO_LARGE,
            f"kustomize build in {where} printed more than {options.max_output_bytes} bytes and was stopped",
            source=name,
            hint="split the kustomization, or raise the render output limit",
        )
    code = finished.returncode
    if code is not None and code < 0:
        return Problem(
            errors.RENDER_TRANSIENT,
            f"kustomize build in {where} was killed by {signal.Signals(-code).name}",
            source=name,
        )
    if code:
        message = plan.scrub(finished.stderr.decode("utf-8", "replace").strip(), shown)
        if len(finished.stderr) >= bounded.MAX_STDERR:
            message += " [cut short]"
        return Problem(
            errors.RENDER_FAILED,
            f"failed to run kustomize build in {where}: {message or f'exit status {code}'}",
            source=name,
        )
    return None


def _parsed(directory: Path, file: str, name: str, options: Options) -> Rendered:
    """The objects of kustomize's output, read with the reader's checks and limits, each
    recorded as coming from the kustomization."""
    limits = reader.Limits(max_file_bytes=options.max_output_bytes)
    found = reader.read_file(directory, file, limits)
    manifests = [_from_kustomization(m, name) for m in found.manifests]
    problems = [dataclasses.replace(p, source=name) for p in found.problems]
    return Rendered(manifests=manifests, problems=problems, kustomization=name)


def _from_kustomization(manifest: Manifest, name: str) -> Manifest:
    origin = manifest.annotations.get(plan.ORIGIN_ANNOTATION)
    extra = {"origin": plan.origin_file(origin)} if isinstance(origin, str) else {}
    return Manifest(manifest.body, name, manifest.index, extra)
