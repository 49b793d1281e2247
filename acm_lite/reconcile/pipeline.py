"""One pass of the pipeline for one cluster: source → parse → validate → policy → plan → apply →
status. A blocking problem before apply stops the pass with nothing applied."""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acm_lite import api, declare, errors, metadata, policy
from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.cluster import inventory, live
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError, Problem
from acm_lite.kinds import builtin
from acm_lite.objects import ObjectId
from acm_lite.parse import namespace_selection, reader
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.parse.namespace_selection import LiveNamespaces
from acm_lite.paths import cache_dir
from acm_lite.plan import order, planner
from acm_lite.plan.changeset import Action, ChangeSet, Outcome, Result
from acm_lite.policy import library
from acm_lite.policy.library import PolicySources
from acm_lite.source import git, local
from acm_lite.source.auth import GitAuth, strip_userinfo
from acm_lite.source.snapshot import Snapshot
from acm_lite.status import store
from acm_lite.status.model import State, SyncStatus

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SyncSpec:
    """What to sync, shaped like a RootSync's spec."""

    repo: str
    name: str = api.DEFAULT_SYNC
    revision: str = "HEAD"
    dir: str = "."
    source_format: str = declare.HIERARCHY
    cluster_name: str | None = None
    cluster_labels: Mapping[str, str] | None = None
    namespace: str | None = None  # a tenant sync, limited to this namespace

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"sourceFormat": self.source_format, "sourceType": "git",
                                "git": {"repo": strip_userinfo(self.repo), "revision": self.revision,
                                        "dir": self.dir}}
        if self.cluster_name:
            spec["clusterName"] = self.cluster_name
        if self.namespace:
            spec["namespace"] = self.namespace
        return spec


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False  # plan, and have the API server validate, but change nothing
    plan_only: bool = False  # plan without any request that writes or validates (diff)
    force_conflicts: bool = True
    allow_prune_all: bool = False
    take_over: bool = False
    concurrency: int = 16
    crd_timeout: float = 60.0  # seconds the CRDs a level applied get to become Established
    schema: bool = True
    git_cache: Path = field(default_factory=cache_dir)
    auth: GitAuth | None = None
    policies: PolicySources = field(default_factory=PolicySources)
    deadline: float = 1800.0  # seconds a pass may send requests for (0: no deadline)


@dataclass
class SyncResult:
    spec: SyncSpec
    status: SyncStatus
    problems: list[Problem] = field(default_factory=list)
    changeset: ChangeSet | None = None
    results: list[Result] = field(default_factory=list)
    snapshot: Snapshot | None = None
    planned: int = 0  # changes the plan meant to make (not counting unchanged objects)
    status_error: AcmError | None = None  # the status could not be written to the cluster
    exception: BaseException | None = None  # the bug behind an internal error, for the log
    live_namespaces: LiveNamespaces | None = None  # dynamic NamespaceSelectors chose from these

    @property
    def ok(self) -> bool:
        return not any(p.blocking for p in self.problems)

    @property
    def applied(self) -> int:
        """Objects this pass changed in the cluster (created, configured, pruned, unmanaged)."""
        return sum(1 for r in self.results if r.outcome in _APPLIED)

    @property
    def counts(self) -> dict[str, int]:
        if self.results:
            counted = Counter(r.outcome.value for r in self.results)
            return {o.value: counted.get(o.value, 0) for o in Outcome}
        return self.changeset.counts() if self.changeset else {}


_APPLIED = frozenset({Outcome.CREATED, Outcome.CONFIGURED, Outcome.PRUNED, Outcome.UNMANAGED})


def fetch_source(spec: SyncSpec, options: SyncOptions, progress: Progress) -> Snapshot:
    path = Path(spec.repo)
    if path.is_dir() and not local.is_git_repository(path):
        return local.snapshot(path, spec.dir)
    return git.fetch(spec.repo, spec.revision, spec.dir, cache=options.git_cache,
                     auth=options.auth or GitAuth.from_env(), progress=progress)


class _Pass:
    """The state of one pass, stage by stage."""

    def __init__(self, spec: SyncSpec, cluster: Cluster, options: SyncOptions, progress: Progress):
        self.spec, self.cluster, self.options, self.progress = spec, cluster, options, progress
        self.durations: dict[str, float] = {}
        self.started = time.monotonic()
        self.result = SyncResult(spec, SyncStatus(State.PENDING))
        self.existing: dict[str, Any] | None = None
        self.stage = "setup"
        self.writes = not (options.dry_run or options.plan_only)
        self.managed: int | None = None  # size of the inventory as last read or written
        self.seen: list[Result] = []  # results as they arrive, kept if apply stops part-way

    def timed(self, stage: str, started: float) -> None:
        self.durations[stage] = round(time.monotonic() - started, 3)

    def finish(self, stage: str, problems: list[Problem], state: State | None = None
               ) -> SyncResult:
        result = self.result
        result.problems += problems
        if not result.results and self.seen:  # apply stopped part-way: what it did still counts
            result.results = list(self.seen)
        blocking = any(p.blocking for p in result.problems)
        commit = result.snapshot.commit if result.snapshot else None
        previous = SyncStatus.from_status((self.existing or {}).get("status"))
        self.durations["total"] = round(time.monotonic() - self.started, 3)
        result.status = SyncStatus(
            state=state or (State.ERROR if blocking else State.SYNCED), commit=commit,
            synced_commit=previous.synced_commit if blocking else commit,
            source={"repo": result.snapshot.repo if result.snapshot else strip_userinfo(self.spec.repo),
                    "revision": self.spec.revision, "dir": self.spec.dir},
            errors=[p.to_dict() for p in result.problems], counts=result.counts,
            durations=self.durations, stage=stage if blocking else "",
            managed=previous.managed if self.managed is None else self.managed,
            message=_stopped(stage, result) if blocking else "")
        self.cluster.deadline = None  # the outcome is recorded even after the deadline
        if self.writes:
            self.record(result.status)
        return result

    def record(self, status: SyncStatus) -> None:
        """Write the status; a failure (the API server went away) is kept on the result, and
        the next pass writes its own status as always."""
        try:
            store.write_status(self.cluster, self.spec.name, status, self.existing)
        except AcmError as e:
            self.result.status_error = AcmError(
                errors.STATUS_NOT_RECORDED, f"status of {self.spec.name!r} not recorded: "
                f"{e.message}", hint="the next pass records its status")
            return
        self.result.status_error = None
        self.existing = {**(self.existing or {}), "status": status.to_status()}


def _stopped(stage: str, result: SyncResult) -> str:
    """One line on where a failed pass stopped and how far it got, for the RootSync's status."""
    if result.planned:
        return (f"stopped at {stage}: {result.applied} of {result.planned} changes applied "
                "before the failure")
    return f"stopped at {stage}: nothing applied"


def run(spec: SyncSpec, cluster: Cluster, options: SyncOptions | None = None,
        *, progress: Progress = lambda _m: None,
        on_result: Callable[[Result], None] = lambda _r: None,
        snapshot: Snapshot | None = None) -> SyncResult:
    """One full pass. Problems of the source, of single objects and of the cluster going away
    are part of the result; nothing raises except a bug. A caller that fetched the source
    already (the daemon's poll) hands its ``snapshot`` in rather than fetching twice."""
    options = options or SyncOptions()
    sync = _Pass(spec, cluster, options, progress)
    sync.result.snapshot = snapshot
    cluster.breaker.reset()  # each pass finds out afresh whether the API server answers
    cluster.deadline = time.monotonic() + options.deadline if options.deadline > 0 else None
    try:
        with _collector_paused():
            return _run(sync, on_result)
    except AcmError as e:
        return sync.finish(sync.stage, [Problem(e.code, e.message, source=e.path, hint=e.hint)])
    except Exception as e:  # a bug: a coded error for the status, the exception for the log
        sync.result.exception = e
        return sync.finish(sync.stage, [internal_problem(e, sync.stage)])
    finally:
        cluster.deadline = None


def internal_problem(error: BaseException, stage: str) -> Problem:
    """An unexpected exception as a coded problem: its type and message, never its traceback."""
    text = f"{type(error).__name__}: {error}"
    if len(text) > 500:
        text = text[:500] + "…"
    return Problem(errors.INTERNAL_ERROR, f"the {stage} stage failed unexpectedly: {text}",
                   hint="a bug in acm-lite; the traceback is in the log; the pass is retried")


def failed_pass(spec: SyncSpec, cluster: Cluster, options: SyncOptions, stage: str, *,
                problems: list[Problem], exception: BaseException | None = None) -> SyncResult:
    """The result (and recorded status) of a pass that failed before ``run`` could start it,
    such as a poll whose source could not be fetched."""
    sync = _Pass(spec, cluster, options, lambda _m: None)
    sync.result.exception = exception
    if sync.writes:
        try:
            sync.existing = store.read(cluster, spec.name)
        except AcmError as e:
            sync.result.status_error = AcmError(errors.STATUS_NOT_RECORDED,
                                                f"status not recorded: {e.message}")
            sync.writes = False
    return sync.finish(stage, problems)


class _CollectorPause:
    """A pass makes hundreds of thousands of short-lived objects (parsed documents, listed live
    objects) with no reference cycles among them; the cyclic collector would rescan them again
    and again, which was a third of a no-op pass over 5,500 objects. Reference counting frees
    them all the same; the few cycles wait until no pass runs. Counted, as passes for several
    clusters run in threads side by side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passes = 0
        self._was_on = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._passes == 0:
                self._was_on = gc.isenabled()
                gc.disable()
            self._passes += 1
        try:
            yield
        finally:
            with self._lock:
                self._passes -= 1
                if self._passes == 0 and self._was_on:
                    gc.enable()


_collector_paused = _CollectorPause()


def _run(sync: _Pass, on_result: Callable[[Result], None]) -> SyncResult:
    spec, cluster, options = sync.spec, sync.cluster, sync.options
    if sync.writes:
        store.install(cluster)
        sync.existing = store.read(cluster, spec.name)
        store.write_spec(cluster, spec.name, spec.to_spec(), sync.existing)

    started = time.monotonic()
    sync.stage = "source"
    try:
        if sync.result.snapshot is None:
            sync.result.snapshot = fetch_source(spec, options, sync.progress)
    except AcmError as e:
        return sync.finish("source", [Problem(e.code, e.message, source=strip_userinfo(spec.repo),
                                              hint=e.hint)],
                           State.STALLED if e.category is errors.Category.PERMANENT else None)
    sync.timed("source", started)

    started = time.monotonic()
    sync.stage = "parse"
    sync.progress(f"reading {sync.result.snapshot.short_commit}")
    declared = _declare(sync.result.snapshot, spec, options, cluster)
    sync.result.live_namespaces = declared.live_namespaces
    sync.timed("parse", started)
    sync.result.problems += declared.problems
    if declared.blocking:
        return sync.finish("parse", [])

    started = time.monotonic()
    sync.stage = "policy"
    violations = policy.check(declared.objects, declared.policy + library.load(options.policies))
    sync.timed("policy", started)
    sync.result.problems += violations
    if any(p.blocking for p in violations):
        return sync.finish("policy", [])
    return _plan_and_apply(sync, declared, on_result)


def _plan_and_apply(sync: _Pass, declared: declare.Declared,
                    on_result: Callable[[Result], None]) -> SyncResult:
    spec, cluster, options = sync.spec, sync.cluster, sync.options
    assert sync.result.snapshot is not None
    started = time.monotonic()
    sync.stage = "plan"
    discovery = Discovery(cluster)
    recorded = inventory.read(cluster, spec.name) if sync.writes or store.installed(cluster) else set()
    sync.managed = len(recorded) if sync.writes else None
    declared_ids = {o.id for o in declared.objects}
    guard = _prune_all_guard(declared_ids, recorded, options)
    if guard:
        return sync.finish("plan", [guard])
    wanted = declared_ids | recorded
    sync.progress(f"reading live state of {len({o.group_kind for o in wanted})} kinds")
    current = live.snapshot(cluster, discovery, wanted, f"{metadata.SYNC_LABEL}={spec.name}",
                            scope=spec.namespace,
                            versions={o.id: o.version for o in declared.objects})
    opts = planner.PlanOptions(spec.name, sync.result.snapshot.commit, options.take_over)
    ordered = order.levels(declared.objects)
    cyclic = any(p.code is errors.DEPENDENCY_CYCLE for p in ordered[1])
    # whatever this pass may apply is recorded before anything is applied (a pass killed halfway
    # never forgets what it created); the write goes out while the plan is made
    early = recorded | planner.manageable(declared.objects, current, opts)
    writing = None
    notes: list[Problem] = []  # warnings of the inventory writes
    if sync.writes and early != recorded and not cyclic:
        writing = _Background(lambda: _record_before_applying(cluster, spec.name, early, notes))
    written = early if writing else recorded
    try:
        changes = planner.plan(declared.objects, current, recorded, opts, ordered)
    finally:
        if writing:
            writing.wait()
            sync.managed = len(written)
    sync.result.changeset = changes
    sync.result.planned = sum(1 for c in changes.changes
                              if c.action not in (Action.UNCHANGED, Action.SKIP))
    sync.timed("plan", started)
    if any(p.blocking for p in changes.problems if p.code is errors.DEPENDENCY_CYCLE):
        return sync.finish("plan", changes.problems)
    if options.plan_only:
        return sync.finish("plan", changes.problems)
    return _apply(sync, discovery, changes, recorded=recorded, written=written,
                  notes=notes, on_result=on_result)


def _apply(sync: _Pass, discovery: Discovery, changes: ChangeSet, *, recorded: set[ObjectId],
           written: set[ObjectId], notes: list[Problem],
           on_result: Callable[[Result], None]) -> SyncResult:
    spec, cluster, options = sync.spec, sync.cluster, sync.options
    started = time.monotonic()
    sync.stage = "apply"
    managed = _managed(changes)
    if sync.writes and not managed <= written:  # never expected: the plan manages more than
        written = written | managed  # ``manageable`` said; still recorded before applying
        _record_before_applying(cluster, spec.name, written, notes)
        sync.managed = len(written)
    if sync.writes and sync.result.planned:
        _record_applying(sync)

    def seen(result: Result) -> None:
        sync.seen.append(result)
        on_result(result)

    prevalidated = frozenset(builtin()) if options.schema else frozenset()
    applier = Applier(cluster, discovery, ApplyOptions(
        force_conflicts=options.force_conflicts, concurrency=options.concurrency,
        dry_run=options.dry_run, crd_timeout=options.crd_timeout, prevalidated=prevalidated),
        seen)
    sync.progress(f"applying {sum(1 for c in changes.changes if c.action is not Action.UNCHANGED)}"
                  f" of {len(changes.changes)} objects")
    sync.result.results = applier.run(changes)
    final = _final_inventory(recorded, managed, sync.result.results)
    unrecorded = _record_after_applying(cluster, spec.name, final, notes) \
        if sync.writes and final != written else None
    sync.managed = len(final if unrecorded is None else written)
    sync.timed("apply", started)
    failures = [r.problem for r in sync.result.results if r.problem]
    conflicts = [p for p in changes.problems if p.code is errors.MANAGEMENT_CONFLICT]
    return sync.finish("apply", _unique(failures + conflicts + notes)
                       + ([unrecorded] if unrecorded else []))


def _record_before_applying(cluster: Cluster, sync: str, objects: set[ObjectId],
                            notes: list[Problem]) -> None:
    """Record what the pass may apply; a failure stops the pass before anything is applied, and
    says so. A warning of the write goes into ``notes``."""
    try:
        notes += filter(None, [inventory.write(cluster, sync, objects)])
    except AcmError as e:
        raise AcmError(e.code, f"{e.message}; nothing was applied", path=e.path,
                       subject=e.subject, hint=e.hint) from e


def _record_after_applying(cluster: Cluster, sync: str, objects: set[ObjectId],
                           notes: list[Problem]) -> Problem | None:
    """Record the set left after pruning. Everything applied was recorded before applying, so a
    failure here only keeps pruned objects on the record until the next pass: reported, and the
    results of the applies are kept."""
    try:
        notes += filter(None, [inventory.write(cluster, sync, objects)])
    except AcmError as e:
        return Problem(e.code, f"{e.message}; the objects were applied and recorded before "
                       "applying, and the next pass records what was pruned", hint=e.hint)
    return None


def _record_applying(sync: _Pass) -> None:
    """Before the first write to the cluster, the status says a pass is applying this commit: if
    the pass dies half-way, the RootSync does not go on claiming the old commit is synced."""
    assert sync.result.snapshot is not None
    previous = SyncStatus.from_status((sync.existing or {}).get("status"))
    sync.record(SyncStatus(
        State.PENDING, commit=sync.result.snapshot.commit, synced_commit=previous.synced_commit,
        source={"repo": sync.result.snapshot.repo, "revision": sync.spec.revision,
                "dir": sync.spec.dir}, managed=sync.managed or 0, stage="apply",
        message=f"applying {sync.result.planned} changes"))


class _Background:
    """One call on a thread of its own; ``wait`` returns when it is done and raises what it
    raised."""

    def __init__(self, call: Callable[[], None]):
        self._error: BaseException | None = None

        def run() -> None:
            try:
                call()
            except BaseException as e:  # handed to the waiting thread
                self._error = e

        self._thread = threading.Thread(target=run, name="acm-lite-background", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


@dataclass(frozen=True)
class _Rendered:
    """A declared set kept for reuse; with the live Namespaces it was made for, and the source
    read, when dynamic NamespaceSelectors made it depend on them."""

    result: declare.Declared
    live: LiveNamespaces | None = None
    loaded: reader.ReadResult | None = None


_DECLARED: OrderedDict[tuple[object, ...], _Rendered] = OrderedDict()
_DECLARED_LOCK = threading.Lock()
_DECLARED_KEEP = 8


def _declare(snapshot: Snapshot, spec: SyncSpec, options: SyncOptions, cluster: Cluster
             ) -> declare.Declared:
    """Parse and validate a snapshot; a commit already rendered the same way in this process is
    not read again (snapshots of a commit never change, and the result is never mutated) unless
    dynamic NamespaceSelectors select from live Namespaces that have changed since."""
    labels = tuple(sorted((spec.cluster_labels or {}).items()))
    key = (snapshot.repo, snapshot.commit, snapshot.dir, spec.source_format, spec.cluster_name,
           labels, options.schema, spec.namespace)
    cached = None
    if snapshot.commit is not None:
        with _DECLARED_LOCK:
            cached = _DECLARED.get(key)
            if cached is not None:
                _DECLARED.move_to_end(key)
    if cached is not None and cached.live is None:
        return cached.result
    loaded = cached.loaded if cached is not None and cached.loaded is not None else (
        declare.load(snapshot.root, spec.source_format))
    selectable = (live_namespaces(cluster)
                  if declare.needs_live_namespaces(loaded, spec.source_format) else None)
    if cached is not None and cached.live == selectable:
        return cached.result
    result = declare.declare(loaded, ClusterTarget(spec.cluster_name, spec.cluster_labels),
                             declare.Options(source_format=spec.source_format,
                                             schema=options.schema,
                                             tenant_namespace=spec.namespace,
                                             live_namespaces=selectable))
    if snapshot.commit is not None:
        with _DECLARED_LOCK:
            _DECLARED[key] = _Rendered(result, selectable,
                                       loaded if selectable is not None else None)
            while len(_DECLARED) > _DECLARED_KEEP:
                _DECLARED.popitem(last=False)
    return result


def live_namespaces(cluster: Cluster) -> LiveNamespaces:
    """The cluster's Namespaces and their labels, for dynamic NamespaceSelectors (one LIST)."""
    try:
        listed = cluster.request("GET", "/api/v1/namespaces")
    except ApiError as e:
        raise e.to_acm("Namespaces, listed for dynamic NamespaceSelectors") from e
    return namespace_selection.live(listed.get("items") or [])


def _managed(changes: ChangeSet) -> set[ObjectId]:
    """Declared objects this sync manages after the pass (not the disabled or conflicting ones)."""
    return {c.id for c in changes.changes if c.manifest is not None
            and c.action in (Action.CREATE, Action.UPDATE, Action.UNCHANGED)}


def _final_inventory(recorded: set[ObjectId], managed: set[ObjectId],
                     results: list[Result]) -> set[ObjectId]:
    released = {r.change.id for r in results if r.change.id not in managed
                and r.outcome in (Outcome.PRUNED, Outcome.UNMANAGED)}
    dropped = {r.change.id for r in results if r.change.action is Action.SKIP
               and r.change.manifest is None}  # left the source and no longer ours
    return managed | (recorded - released - dropped)


def _prune_all_guard(declared: set[ObjectId], recorded: set[ObjectId], options: SyncOptions
                     ) -> Problem | None:
    if options.allow_prune_all or not recorded:
        return None
    if not recorded & declared:
        return Problem(errors.EMPTY_SOURCE,
                       f"this commit would prune all {len(recorded)} objects the sync manages and "
                       "keep none; refusing", hint="check --repo and --dir; pass --allow-prune-all "
                       "if removing everything is intended")
    return None


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: dict[tuple[object, ...], Problem] = {}
    for p in problems:
        seen.setdefault(p.identity(), p)
    return list(seen.values())
