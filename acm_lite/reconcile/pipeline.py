"""One pass of the pipeline for one cluster: source → parse → validate → policy → plan → apply →
status. A blocking problem before apply stops the pass with nothing applied."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acm_lite import api, declare, errors, policy
from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.cluster import live
from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError, Problem
from acm_lite.kinds import builtin
from acm_lite.parse.namespace_selection import LiveNamespaces
from acm_lite.paths import cache_dir
from acm_lite.plan import order, ownership, planner
from acm_lite.plan.changeset import Action, ChangeSet, Outcome, Result
from acm_lite.policy import library
from acm_lite.policy.library import PolicySources
from acm_lite.reconcile import collector, declared_cache, recording
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
        self.inventory: recording.Record | None = None  # from the plan stage on
        self.seen: list[Result] = []  # results as they arrive, kept if apply stops part-way

    @property
    def managed(self) -> int | None:
        """Size of the inventory as last read or written."""
        return self.inventory.managed if self.inventory else None

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
        with collector.paused():
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
    declared = declared_cache.declared(
        sync.result.snapshot, cluster, source_format=spec.source_format,
        cluster_name=spec.cluster_name, cluster_labels=spec.cluster_labels, schema=options.schema,
        namespace=spec.namespace)
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
    record = sync.inventory = recording.Record(cluster, spec.name, writes=sync.writes)
    recorded = record.read(sync.writes or store.installed(cluster))
    declared_ids = {o.id for o in declared.objects}
    guard = recording.refuse_prune_all(declared_ids, recorded, options.allow_prune_all)
    if guard:
        return sync.finish("plan", [guard])
    wanted = declared_ids | recorded
    sync.progress(f"reading live state of {len({o.group_kind for o in wanted})} kinds")
    current = live.snapshot(cluster, discovery, wanted, f"{ownership.SYNC_LABEL}={spec.name}",
                            scope=spec.namespace,
                            versions={o.id: o.version for o in declared.objects})
    opts = planner.PlanOptions(spec.name, sync.result.snapshot.commit, options.take_over)
    ordered = order.levels(declared.objects)
    may_apply = set() if ordered.cyclic else planner.manageable(declared.objects, current, opts)
    with record.writing(may_apply):
        changes = planner.plan(declared.objects, current, recorded, opts, ordered)
    sync.result.changeset = changes
    sync.result.planned = sum(1 for c in changes.changes
                              if c.action not in (Action.UNCHANGED, Action.SKIP))
    sync.timed("plan", started)
    if ordered.cyclic:
        return sync.finish("plan", changes.problems)
    if options.plan_only:
        return sync.finish("plan", changes.problems)
    return _apply(sync, discovery, changes, record, on_result=on_result)


def _apply(sync: _Pass, discovery: Discovery, changes: ChangeSet, record: recording.Record, *,
           on_result: Callable[[Result], None]) -> SyncResult:
    cluster, options = sync.cluster, sync.options
    started = time.monotonic()
    sync.stage = "apply"
    managed = recording.managed(changes)
    record.before_applying(managed)
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
    unrecorded = record.after_applying(managed, sync.result.results)
    sync.timed("apply", started)
    failures = [r.problem for r in sync.result.results if r.problem]
    conflicts = [p for p in changes.problems if p.code is errors.MANAGEMENT_CONFLICT]
    return sync.finish("apply", _unique(failures + conflicts + record.notes)
                       + ([unrecorded] if unrecorded else []))


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


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: dict[tuple[object, ...], Problem] = {}
    for p in problems:
        seen.setdefault(p.identity(), p)
    return list(seen.values())
