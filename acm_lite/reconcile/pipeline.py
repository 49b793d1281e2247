"""One pass of the pipeline for one cluster, read top to bottom in ``_run``: source → render
(a kustomization, ``acm_lite.render``) → parse (parse and validate, ``acm_lite.declare``) → live
(the inventory's record and the live objects, read once) → policy → plan → apply → status, then
with ``SyncOptions.wait`` waiting until the applied objects are Current (after the status is
recorded: the RootSync records the apply). Each stage is a function of plain data, run by
``Pass.step``, which keeps its name and its time. A blocking problem before apply stops the pass
with nothing applied; the first write of the sync's own objects (the inventory) is made while
planning, after the policy stage.

No I/O here; the stages call the modules that do it: the source (``source.git`` fetches,
``source.local`` reads a directory), render (kustomize and helm on a private copy of the
snapshot), parse (``reconcile.declared_cache``: the files, and the live
Namespaces dynamic selectors choose from), live (``cluster.discovery``, ``cluster.live``, and the
inventory's record through ``reconcile.recording``), policy (``reconcile.policydata``: the live
objects referential policies read), plan (the inventory written through ``reconcile.recording``),
apply (``apply.applier``, the inventory again) and the
status (``status.store``: installed and the spec written first, the status through
``reconcile.bookkeeping``) and health (``reconcile.healthstage``: each managed object's status
read after apply and recorded in its ResourceStatus parts)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acm_lite import declare, errors, metadata, policy, render
from acm_lite.apply import waiting
from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.cluster import live
from acm_lite.cluster.client import Client, Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.devcluster import binaries
from acm_lite.errors import AcmError, Problem
from acm_lite.kinds import builtin
from acm_lite.objects import ObjectId
from acm_lite.plan import ignorefields, order, planner
from acm_lite.plan.changeset import Action, ChangeSet, Result
from acm_lite.policy import library, referential
from acm_lite.policy.library import PolicySources
from acm_lite.reconcile import (
    collector,
    declared_cache,
    healthstage,
    incremental,
    model,
    policydata,
    recording,
    sourcerefs,
)
from acm_lite.reconcile.bookkeeping import Pass, StageError
from acm_lite.reconcile.model import DEFAULT_RECONCILE_TIMEOUT, Progress, SyncOptions, SyncResult, SyncSpec
from acm_lite.source import git, helm, local, oci
from acm_lite.source.auth import GitAuth, strip_userinfo
from acm_lite.source.snapshot import Snapshot
from acm_lite.status import store
from acm_lite.status.model import State

__all__ = [
    "DEFAULT_RECONCILE_TIMEOUT",
    "Progress",
    "SyncOptions",
    "SyncResult",
    "SyncSpec",
    "failed_pass",
    "fetch_source",
    "internal_problem",
    "run",
]


def run(
    spec: SyncSpec,
    cluster: Cluster,
    options: SyncOptions | None = None,
    *,
    progress: Progress = lambda _m: None,
    on_result: Callable[[Result], None] = lambda _r: None,
    snapshot: Snapshot | None = None,
    target: Cluster | None = None,
    baseline: incremental.Baseline | None = None,
) -> SyncResult:
    """One full pass. Problems of the source, of single objects and of the cluster going away
        are part of the result; nothing raises except a bug. A caller that fetched the source
        already (the daemon's poll) hands its ``snapshot`` in rather than fetching twice; one that keeps
    a client for the sync's own objects (``target_of``) hands it in as ``target``; one that kept
    the ``baseline`` the sync's last pass left (``SyncResult.baseline``) hands it in for this
    pass to start from what changed since (``reconcile.incremental``) where it can."""
    options = options or SyncOptions()
    if spec.reconcile_timeout is not None:  # the RootSync's spec.override.reconcileTimeout
        options = dataclasses.replace(options, reconcile_timeout=spec.reconcile_timeout)
    sync = Pass(spec, cluster, options, progress, target=target or target_of(spec, cluster))
    sync.result.snapshot = snapshot
    deadline = time.monotonic() + options.deadline if options.deadline > 0 else None
    for client in {id(c): c for c in (cluster, sync.target)}.values():
        client.breaker.reset()  # each pass finds out afresh whether the API server answers
        client.deadline = deadline
    try:
        with collector.paused():
            return _run(sync, on_result, baseline)
    except StageError as e:
        return sync.finish(sync.stage, e.problems, e.state)
    except AcmError as e:
        return sync.finish(sync.stage, [e.to_problem()])
    except Exception as e:  # a bug: a coded error for the status, the exception for the log
        sync.result.exception = e
        return sync.finish(sync.stage, [internal_problem(e, sync.stage)])
    finally:
        cluster.deadline = sync.target.deadline = None


def target_of(spec: SyncSpec, cluster: Cluster) -> Cluster:
    """The client for the sync's own objects: ``cluster`` itself for a RootSync, the same API
    server as a RepoSync's ServiceAccount (impersonated) for a RepoSync, so the sync can do
    nothing its bindings do not allow. A caller that keeps one for many passes passes it in."""
    user = spec.user
    if user is None or cluster.impersonate == user:
        return cluster
    return cluster.as_user(user)


def _run(
    sync: Pass, on_result: Callable[[Result], None], baseline: incremental.Baseline | None
) -> SyncResult:
    """The stages in order, one ``sync.step`` each. Each hands its output on, and the pass stops
    where one blocks: a render that fails stops it before anything is read, planned or applied."""
    spec, cluster, options, progress = sync.spec, sync.cluster, sync.options, sync.progress
    target = sync.target  # the sync's own objects: a RepoSync's as its ServiceAccount
    if sync.writes:
        store.install(cluster)
        name, namespace = spec.object_key
        sync.existing = store.read(cluster, name, namespace, kind=spec.kind)
        if spec.repo_sync and sync.existing is not None:  # a team's (or the root repo's): left as it is
            sync.generation = store.generation_of(sync.existing)
        else:
            sync.generation = store.write_spec(
                cluster, name, spec.to_spec(), sync.existing, namespace, kind=spec.kind
            )
    snapshot = sync.result.snapshot = sync.step(
        "source", _source, spec, options, progress, given=sync.result.snapshot, cluster=target
    )
    rendered = sync.step("render", _render, snapshot, spec, options.render, progress)
    if rendered is None:  # nothing to render: the pass times (and records) what it did
        del sync.durations["render"]
    else:
        sync.rendering = _rendering(rendered, snapshot)
        if sync.blocked(rendered.problems):
            return sync.finish("render", [])
    delta = _delta(sync, baseline, snapshot, on_result) if rendered is None else None
    if delta is not None:
        return delta
    declared = sync.step(
        "parse",
        _parse,
        snapshot,
        spec,
        options.schema,
        target,
        progress,
        rendered=rendered,
        render_options=options.render,
    )
    sync.result.live_namespaces = declared.live_namespaces
    if sync.blocked(declared.problems):
        return sync.finish("parse", [])
    record = sync.inventory = recording.Record(cluster, spec.name, writes=sync.writes)
    seen = sync.step(
        "live",
        _live,
        declared,
        snapshot.commit,
        spec,
        options,
        target,
        record=record,
        progress=progress,
        records=cluster,
    )
    policy_problems = sync.step(
        "policy", _policy, declared, options.policies, seen, target, spec, own=cluster
    )
    if sync.blocked(policy_problems) and not (options.plan_only and options.plan_blocked):
        return sync.finish("policy", [])  # nothing written: the inventory is recorded while planning
    plan = sync.step("plan", _plan, declared, seen, record=record)
    sync.result.changeset, sync.result.planned = plan.changes, plan.changed
    if plan.cyclic or options.plan_only:
        return sync.finish("plan", plan.changes.problems)
    problems = _apply_step(sync, plan, record, on_result)
    if sync.writes:
        recorded = sync.step(
            "health",
            healthstage.record,
            target,
            plan.discovery,
            spec.name,
            sync.applied,
            label_selector=f"{metadata.SYNC_LABEL}={spec.name}",
            scope=spec.namespace,
            records=cluster,
        )
        sync.result.health, sync.result.written = recorded.entries, recorded.applied
        sync.result.health_stored = recorded.stored
        sync.health = recorded.counts
        sync.health_problems = recorded.failed
        problems = problems + recorded.problems
    result = sync.finish("apply", problems)
    _leave_baseline(result, declared, options, plan.discovery, record.kept, rendered=rendered is not None)
    if options.wait and sync.writes and result.ok:
        waited = result.waited = sync.step(
            "wait", _wait, plan, result.results, options, target, sync_name=spec.name, progress=progress
        )
        result.problems += waited.problems() if waited.error is None else [waited.error.to_problem()]
        sync.durations["total"] = round(time.monotonic() - sync.started, 3)  # the status's own dict
    return result


def _delta(
    sync: Pass, baseline: incremental.Baseline | None, snapshot: Snapshot, on_result: Callable[[Result], None]
) -> SyncResult | None:
    """The pass run from what changed since ``baseline``; None when it must be a full one (why is
    kept in the result)."""
    if baseline is None or not sync.writes or sync.options.wait:
        return None
    delta = sync.step("changes", incremental.declare_delta, baseline, snapshot, sync.spec, sync.options)
    if isinstance(delta, str):
        sync.result.full_because = delta
        return None
    return _run_delta(sync, baseline, delta, on_result)


def _leave_baseline(
    result: SyncResult,
    declared: declare.Declared,
    options: SyncOptions,
    discovery: Discovery,
    recorded: set[ObjectId] | None,
    *,
    rendered: bool,
) -> None:
    """What a clean full pass leaves for the next pass of the sync to start from, where it can."""
    snapshot = result.snapshot
    if not result.ok or result.problems or recorded is None or snapshot is None or result.health is None:
        return
    spec = result.spec
    why = incremental.usable(declared, spec, rendered=rendered)
    if why is None:
        result.baseline = incremental.baseline(
            declared,
            spec,
            options,
            snapshot,
            recorded=frozenset(recorded),
            discovery=discovery,
            health=healthstage.Table.of(result.health, result.health_stored),
        )


def _run_delta(
    sync: Pass, base: incremental.Baseline, delta: incremental.Delta, on_result: Callable[[Result], None]
) -> SyncResult:
    """The stages after parse for a commit declared from what changed since ``base``: the changed
    and removed objects read live (one GET each), reviewed by policy, planned, applied and their
    health recorded into the table the last pass left; nothing else is read."""
    spec, cluster, options, progress = sync.spec, sync.cluster, sync.options, sync.progress
    target, snapshot = sync.target, sync.result.snapshot
    assert snapshot is not None
    sync.result.incremental = True
    progress(
        f"reading {snapshot.short_commit}: {delta.files} changed files, "
        f"{len(delta.changed.objects)} changed and {len(delta.removed)} removed objects"
    )
    record = sync.inventory = recording.Record(cluster, spec.name, writes=sync.writes)
    record.start_from(base.recorded)
    seen = sync.step("live", _live_some, delta, base, snapshot.commit, spec, options=options, cluster=target)
    policy_problems = sync.step(
        "policy", _policy, delta.changed, options.policies, seen, target, spec, own=cluster
    )
    if sync.blocked(policy_problems):
        return sync.finish("policy", [])
    plan = sync.step("plan", _plan, delta.changed, seen, record=record)
    sync.result.changeset, sync.result.planned = plan.changes, plan.changed
    if plan.cyclic:
        return sync.finish("plan", plan.changes.problems)
    problems = _apply_step(sync, plan, record, on_result)
    recorded = sync.step(
        "health",
        healthstage.record_some,
        target,
        plan.discovery,
        spec.name,
        sync.applied,
        before=base.health or healthstage.Table({}, {}),  # declare_delta saw it is there
        removed=delta.removed,
        records=cluster,
    )
    sync.result.health, sync.result.written = recorded.entries, recorded.applied
    sync.result.health_stored = recorded.stored
    sync.health = recorded.counts
    sync.health_problems = recorded.failed
    result = sync.finish("apply", problems + recorded.problems)
    if result.ok and not result.problems and record.kept is not None and recorded.table is not None:
        result.baseline = incremental.advance(
            base,
            delta,
            snapshot,
            frozenset(record.kept),
            health=recorded.table,
        )
    return result


def _live_some(
    delta: incremental.Delta,
    base: incremental.Baseline,
    commit: str | None,
    spec: SyncSpec,
    *,
    options: SyncOptions,
    cluster: Cluster,
) -> _Live:
    """The live objects of the changed and removed identities, one GET each."""
    ignore = ignorefields.compile_rules(spec.ignore_fields, spec.name)
    versions = {oid: base.objects[oid].version for oid in delta.removed if oid in base.objects}
    versions.update({o.id: o.version for o in delta.changed.objects})
    # a RepoSync's objects it may not read are refused one by one at apply, as in a full pass
    current = live.objects(
        cluster, base.discovery, versions.keys(), versions=versions, forbidden_absent=spec.user is not None
    )
    opts = planner.PlanOptions(spec.name, commit, options.take_over, ignore)
    return _Live(base.discovery, set(delta.removed & base.recorded), current, opts)


def _apply_step(
    sync: Pass, plan: _Plan, record: recording.Record, on_result: Callable[[Result], None]
) -> list[Problem]:
    """The apply stage of a pass, full or incremental: its change set, as the sync's own client."""
    return sync.step(
        "apply",
        _apply,
        plan,
        sync.options,
        sync.target,
        record=record,
        selector=f"{metadata.SYNC_LABEL}={sync.spec.name}",
        before_first_write=sync.mark_applying,
        applied=sync.applied,
        on_result=on_result,
        progress=sync.progress,
    )


def _wait(
    plan: _Plan,
    results: list[Result],
    options: SyncOptions,
    cluster: Cluster,
    *,
    sync_name: str,
    progress: Progress,
) -> waiting.Waited:
    """Read the applied objects until each is Current (and each pruned one gone), one is Failed,
    or the reconcile timeout passed; progress says how many are Current as it changes."""
    targets = waiting.targets(results, plan.discovery)
    progress(f"waiting for {len(targets)} objects to be Current (timeout {options.reconcile_timeout:g}s)")
    shown: list[dict[str, int]] = []

    def said(waited: waiting.Waited) -> None:
        counts = {k: n for k, n in waited.counts().items() if n}
        if not shown or counts != shown[-1]:
            shown.append(counts)
            parts = ", ".join(f"{n} {k}" for k, n in counts.items())
            progress(f"waiting: {parts} ({waited.seconds:.1f}s)")

    try:
        return waiting.wait(
            cluster,
            targets,
            options.reconcile_timeout,
            selector=f"{metadata.SYNC_LABEL}={sync_name}",
            on_round=said,
        )
    except AcmError as e:  # the API server went away while we waited
        return waiting.Waited(targets, timeout=options.reconcile_timeout, error=e)


def _source(
    spec: SyncSpec,
    options: SyncOptions,
    progress: Progress,
    *,
    given: Snapshot | None,
    cluster: Cluster | None = None,
) -> Snapshot:
    """The commit to sync: the one the caller fetched already, or fetched now. A source that
    cannot be fetched stops the pass; stalled when fetching again cannot help."""
    if given is not None:
        return given
    try:
        return fetch_source(spec, options, progress, cluster=cluster)
    except AcmError as e:
        raise StageError(
            [e.to_problem(source=strip_userinfo(spec.repo))],
            State.STALLED if e.category is errors.Category.PERMANENT else None,
        ) from e


def fetch_source(
    spec: SyncSpec, options: SyncOptions, progress: Progress, *, cluster: Client | None = None
) -> Snapshot:
    """The source stage's work: a Git commit fetched into the cache, a plain directory, a Helm
    chart rendered (``sourceType: helm``) or an OCI artifact unpacked (``sourceType: oci``).
    ``cluster`` is where a chart's ``valuesFileRefs`` ConfigMaps and ``secretRef`` Secret are
    read (``reconcile.sourcerefs``)."""
    if spec.source_type == model.HELM and spec.helm is not None:
        inputs = sourcerefs.helm_inputs(spec.helm, cluster, tenant=spec.namespace, namespace=_refs_ns(spec))
        return helm.fetch(
            spec.helm,
            helm=binaries.find("helm"),
            cache=options.git_cache,
            credentials=inputs.credentials,
            progress=progress,
            ref_values=inputs.ref_values,
        )
    if spec.source_type == model.OCI and spec.oci is not None:
        return oci.fetch(
            spec.oci,
            cache=options.git_cache,
            credentials=sourcerefs.oci_credentials(spec.oci),
            progress=progress,
        )
    path = Path(spec.repo)
    if path.is_dir() and not local.is_git_repository(path):
        return local.snapshot(path, spec.dir)
    if spec.git_auth in ("token", "ssh"):  # credentials from spec.git.secretRef, for this fetch only
        with tempfile.TemporaryDirectory(prefix="acm-lite-git-") as keys:
            return git.fetch(
                spec.repo,
                spec.revision,
                spec.dir,
                cache=options.git_cache,
                auth=sourcerefs.git_auth(
                    spec.git_auth, spec.git_secret_ref, cluster, Path(keys), _refs_ns(spec)
                ),
                progress=progress,
            )
    return git.fetch(
        spec.repo,
        spec.revision,
        spec.dir,
        cache=options.git_cache,
        auth=options.auth or GitAuth.from_env(),
        progress=progress,
    )


def _refs_ns(spec: SyncSpec) -> str | None:
    """Where a sync's Secrets and ConfigMaps are: a RepoSync's own namespace (read as its
    ServiceAccount), the system namespace for a RootSync (None)."""
    return spec.namespace if spec.repo_sync else None


def _render(
    snapshot: Snapshot, spec: SyncSpec, options: render.Options, progress: Progress
) -> render.Rendered | None:
    """The sync directory rendered by kustomize when it holds a kustomization (a commit rendered
    before with the same options comes from the render cache); None when it is read as it is."""
    rendered = render.render_snapshot(snapshot, options, source_format=spec.source_format)
    if rendered is not None and not rendered.problems:
        how = f"cached in {rendered.cached}" if rendered.cached else f"{rendered.seconds:.1f}s"
        progress(f"rendered {rendered.kustomization}: {len(rendered.manifests)} objects ({how})")
    return rendered


def _rendering(rendered: render.Rendered, snapshot: Snapshot) -> dict[str, object]:
    """What the status says about a render (Config Sync's ``status.rendering`` message)."""
    failed = any(p.blocking for p in rendered.problems)
    out: dict[str, object] = {
        "commit": snapshot.commit,
        "message": "Rendering failed" if failed else "Rendering succeeded",
    }
    if rendered.kustomization:
        out["kustomization"] = rendered.kustomization
    if rendered.tools:
        out["tools"] = dict(rendered.tools)
    return out


def _parse(
    snapshot: Snapshot,
    spec: SyncSpec,
    schema: bool,
    cluster: Cluster,
    progress: Progress,
    *,
    rendered: render.Rendered | None,
    render_options: render.Options,
) -> declare.Declared:
    """The commit's files (or what rendering made of them) → what this cluster should hold
    (parsed, validated), or the problems."""
    progress(f"reading {snapshot.short_commit}")
    return declared_cache.declared(
        snapshot,
        cluster,
        source_format=spec.source_format,
        cluster_name=spec.cluster_name,
        cluster_labels=spec.cluster_labels,
        schema=schema,
        namespace=spec.namespace,
        rendered=rendered,
        render_options=render_options,
    )


def _policy(
    declared: declare.Declared,
    policies: PolicySources,
    seen: _Live,
    cluster: Cluster,
    spec: SyncSpec,
    *,
    own: Cluster | None = None,
) -> list[Problem]:
    """The declared objects against the source's policies and the policy library, as Gatekeeper's
    webhook would admit them: an object that exists is an UPDATE of its live self, a new one a
    CREATE; ``data.inventory`` holds the declared set and the live objects of the kinds the sync
    configuration names (``reconcile.policydata``); a constraint's namespaceSelector judges an
    object in a Namespace the repository does not declare by the live one, read with the daemon's
    own rights (``own``) as Gatekeeper reads Namespaces with its own."""
    policy_objects = declared.policy + library.load(policies)
    if not policy_objects:
        return []
    wanted = referential.wanted(policy_objects)
    found: list[tuple[ObjectId, dict[str, Any]]] = []
    notes: list[Problem] = []
    if wanted.kinds and not wanted.problems:
        found, notes = policydata.read_kinds(cluster, seen.discovery, wanted.kinds, scope=spec.namespace)
    view = policydata.live_for_policy(declared.objects, seen.current, found, seen.recorded, seen.opts)
    namespaces = policydata.live_namespaces(own or cluster, declared.objects, policy_objects)
    return notes + policy.check(declared.objects, policy_objects, live_namespaces=namespaces, live=view)


@dataclass(frozen=True)
class _Live:
    """What the live stage read for the policy and plan stages."""

    discovery: Discovery  # what the cluster serves, read once for planning and applying
    recorded: set[ObjectId]  # the inventory's record
    current: dict[ObjectId, dict[str, Any]]  # the live objects of declared and recorded identities
    opts: planner.PlanOptions


@dataclass(frozen=True)
class _Plan:
    """What the plan stage hands to apply."""

    changes: ChangeSet
    discovery: Discovery  # what the cluster serves, read once for planning and applying
    cyclic: bool  # depends-on forms a cycle: nothing is applied

    @property
    def changed(self) -> int:
        """Changes the plan means to make (not counting unchanged or skipped objects)."""
        return sum(1 for c in self.changes.changes if c.action not in (Action.UNCHANGED, Action.SKIP))


def _live(
    declared: declare.Declared,
    commit: str | None,
    spec: SyncSpec,
    options: SyncOptions,
    cluster: Cluster,
    *,
    record: recording.Record,
    progress: Progress,
    records: Cluster | None = None,
) -> _Live:
    """The inventory's record and the live objects of the declared and recorded identities, read
    once for the policy and plan stages; nothing is written. A commit that would prune all the
    record holds stops the pass; invalid ignore rules stop it before anything is read."""
    ignore = ignorefields.compile_rules(spec.ignore_fields, spec.name)
    discovery = Discovery(cluster)
    recorded = record.read(record.writes or store.installed(records or cluster))
    declared_ids = {o.id for o in declared.objects}
    refused = recording.refuse_prune_all(declared_ids, recorded, options.allow_prune_all)
    if refused:
        raise StageError([refused])
    wanted = declared_ids | recorded
    progress(f"reading live state of {len({o.group_kind for o in wanted})} kinds")
    current = live.snapshot(
        cluster,
        discovery,
        wanted,
        f"{metadata.SYNC_LABEL}={spec.name}",
        scope=spec.namespace,
        versions={o.id: o.version for o in declared.objects},
        # a RepoSync may be refused some kinds: their objects are then refused one by one at
        # apply (KNV2013, each named), and the rest of the sync goes on
        forbidden=set() if spec.user else None,
    )
    opts = planner.PlanOptions(spec.name, commit, options.take_over, ignore)
    return _Live(discovery, recorded, current, opts)


def _plan(declared: declare.Declared, seen: _Live, *, record: recording.Record) -> _Plan:
    """The declared set, the live objects and the inventory's record → the change set; what the
    pass may apply is recorded while the plan is made (the pass's first write)."""
    levels = order.levels(declared.objects)
    may_apply = set() if levels.cyclic else planner.manageable(declared.objects, seen.current, seen.opts)
    with record.writing(may_apply):
        changes = planner.plan(declared.objects, seen.current, seen.recorded, seen.opts, levels)
    return _Plan(changes, seen.discovery, levels.cyclic)


def _apply(
    plan: _Plan,
    options: SyncOptions,
    cluster: Cluster,
    *,
    record: recording.Record,
    selector: str,
    before_first_write: Callable[[], None],
    applied: list[Result],
    on_result: Callable[[Result], None],
    progress: Progress,
) -> list[Problem]:
    """The change set → the cluster, level by level; the inventory records what the sync manages
    before anything is applied and what is left after. ``applied`` gets the results as they
    arrive, then the applier's list; the problems of the stage are returned."""
    changes = plan.changes
    managed = recording.managed(changes)
    record.before_applying(managed)
    before_first_write()

    def seen(result: Result) -> None:
        applied.append(result)
        on_result(result)

    prevalidated = frozenset(builtin()) if options.schema else frozenset()
    applier = Applier(
        cluster,
        plan.discovery,
        ApplyOptions(
            force_conflicts=options.force_conflicts,
            concurrency=options.concurrency,
            dry_run=options.dry_run,
            crd_timeout=options.crd_timeout,
            reconcile_timeout=options.reconcile_timeout,
            selector=selector,
            prevalidated=prevalidated,
        ),
        seen,
    )
    progress(
        f"applying {sum(1 for c in changes.changes if c.action is not Action.UNCHANGED)}"
        f" of {len(changes.changes)} objects"
    )
    results = applier.run(changes)
    applied[:] = results
    unrecorded = record.after_applying(managed, results)
    failures = [r.problem for r in results if r.problem]
    conflicts = [p for p in changes.problems if p.code is errors.MANAGEMENT_CONFLICT]
    return _unique(failures + conflicts + record.notes) + ([unrecorded] if unrecorded else [])


def internal_problem(error: BaseException, stage: str) -> Problem:
    """An unexpected exception as a coded problem: its type and message, never its traceback."""
    text = f"{type(error).__name__}: {error}"
    if len(text) > 500:
        text = text[:500] + "…"
    return Problem(
        errors.INTERNAL_ERROR,
        f"the {stage} stage failed unexpectedly: {text}",
        hint="a bug in acm-lite; the traceback is in the log; the pass is retried",
    )


def failed_pass(
    spec: SyncSpec,
    cluster: Cluster,
    options: SyncOptions,
    stage: str,
    *,
    problems: list[Problem],
    exception: BaseException | None = None,
) -> SyncResult:
    """The result (and recorded status) of a pass that failed before ``run`` could start it,
    such as a poll whose source could not be fetched."""
    sync = Pass(spec, cluster, options, lambda _m: None)
    sync.result.exception = exception
    if sync.writes:
        try:
            name, namespace = spec.object_key
            sync.existing = store.read(cluster, name, namespace, kind=spec.kind)
        except AcmError as e:
            sync.result.status_error = AcmError(
                errors.STATUS_NOT_RECORDED, f"status not recorded: {e.message}"
            )
            sync.writes = False
    return sync.finish(stage, problems)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: dict[tuple[object, ...], Problem] = {}
    for p in problems:
        seen.setdefault(p.identity(), p)
    return list(seen.values())
