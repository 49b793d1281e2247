"""What a change to a fleet's repository would do, cluster by cluster, before it merges: the objects
the head revision would create, change, prune and leave, and the vet errors and policy violations
it introduces or fixes against the base revision. Nothing is written to any cluster.

Both revisions are fetched as snapshots and declared per cluster offline (as ``vet`` does, policy
included); problems are compared by code and object. The plan of the head revision runs against
the cluster's live state (as ``diff`` does). With ``offline`` — asked for, or because the cluster
cannot be reached — it runs against the inventory acm-lite recorded on the cluster instead, or,
when that cannot be read either, against the base revision's objects (taken as what is applied):
creations and prunes are known then, changes are not.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from acm_lite import declare, errors, metadata, policy, render
from acm_lite.apply import inventory
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError, Problem
from acm_lite.fleet import fanout, registry
from acm_lite.fleet.registry import FleetCluster
from acm_lite.objects import ObjectId
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.plan import render_diff
from acm_lite.plan.changeset import Action
from acm_lite.policy import library
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.source import git

LIVE, OFFLINE = "live", "offline"
INVENTORY, BASE = "inventory", "base"  # what an offline plan compares the head with
DIFF_LINES = 40  # lines of a change's field diff kept in the report
LINE_CHARS = 200  # characters of one diff line kept (a long value is cut)
SECRET_AUTH = ("token", "ssh")  # spec.git.auth values whose credentials are in spec.git.secretRef


@dataclass(frozen=True)
class Request:
    base: str
    head: str
    offline: bool = False
    options: SyncOptions = field(default_factory=SyncOptions)
    repo: str | None = None  # overrides every member's repository


@dataclass
class ClusterPreview:
    name: str
    reachable: bool = False
    mode: str = LIVE
    against: str = ""  # offline: "inventory" or "base"
    base_commit: str = ""
    head_commit: str = ""
    create: list[str] = field(default_factory=list)
    change: list[dict[str, str]] = field(default_factory=list)  # object, diff
    changes_known: bool = True  # offline: ``change`` lists the objects kept, changed or not
    prune: list[str] = field(default_factory=list)
    leave: int = 0
    introduced: list[Problem] = field(default_factory=list)
    fixed: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: Problem | None = None  # what stopped the preview of this cluster

    @property
    def blocking(self) -> bool:
        return any(p.blocking for p in self.introduced)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reachable": self.reachable,
            "mode": self.mode,
            "against": self.against or None,
            "base": self.base_commit or None,
            "head": self.head_commit or None,
            "create": self.create,
            "change": self.change,
            "changesKnown": self.changes_known,
            "prune": self.prune,
            "leave": self.leave,
            "introduced": [p.to_dict() for p in self.introduced],
            "fixed": [p.to_dict() for p in self.fixed],
            "blocking": self.blocking,
            "notes": self.notes,
            "error": self.error.to_dict() if self.error else None,
        }


def problem_key(problem: Problem) -> tuple[object, ...]:
    """A problem's identity across two revisions: its code and object (the file and the wording
    may move); a problem about no object is its code and message."""
    obj = problem.obj or {}
    if obj:
        return (
            problem.code.id,
            obj.get("group", ""),
            obj.get("kind", ""),
            obj.get("namespace", ""),
            obj.get("name", ""),
        )
    return (problem.code.id, problem.message)


def compare(base: list[Problem], head: list[Problem]) -> tuple[list[Problem], list[Problem]]:
    """The problems ``head`` introduces and the ones it fixes."""
    before = {problem_key(p) for p in base}
    after = {problem_key(p) for p in head}
    introduced = {problem_key(p): p for p in head if problem_key(p) not in before}
    fixed = {problem_key(p): p for p in base if problem_key(p) not in after}
    return (
        sorted(introduced.values(), key=lambda p: p.sort_key()),
        sorted(fixed.values(), key=lambda p: p.sort_key()),
    )


def _declared(
    spec: SyncSpec, revision: str, options: SyncOptions, refs: Cluster | None = None
) -> tuple[str, declare.Declared]:
    """One revision of ``spec``'s repository declared for its cluster, policy checked. A sync
    whose Git credentials are in its ``spec.git.secretRef`` fetches with them, read through
    ``refs`` (the sync's cluster) as its passes read them."""
    if spec.git_auth in SECRET_AUTH:
        snapshot = pipeline.fetch_source(
            replace(spec, revision=revision), options, lambda _m: None, cluster=refs
        )
    else:
        snapshot = git.fetch(spec.repo, revision, spec.dir, cache=options.git_cache, auth=options.auth)
    rendered = render.render_snapshot(snapshot, options.render, source_format=spec.source_format)
    target = ClusterTarget(spec.cluster_name, spec.cluster_labels)
    if rendered is not None and any(p.blocking for p in rendered.problems):
        return snapshot.commit or "", declare.Declared(target.name, problems=list(rendered.problems))
    source = (
        declare.from_render(rendered)
        if rendered is not None
        else declare.load(snapshot.root, spec.source_format)
    )
    result = declare.declare(
        source, target, declare.Options(source_format=spec.source_format, schema=options.schema)
    )
    if not result.blocking:
        result.problems += policy.check(result.objects, result.policy + library.load(options.policies))
    return snapshot.commit or "", result


def _reachable(cluster: Cluster) -> Problem | None:
    try:
        cluster.request("GET", "/version")
    except AcmError as e:
        return e.to_problem()
    except ApiError as e:
        return e.to_acm().to_problem()
    return None


def _live(preview: ClusterPreview, spec: SyncSpec, cluster: Cluster, options: SyncOptions) -> None:
    """The plan of the head against the live state, as ``diff`` makes it (nothing written); a
    head that does not declare for the cluster leaves a note instead."""
    result = pipeline.run(
        replace(spec, revision=preview.head_commit), cluster, replace(options, plan_only=True)
    )
    if result.changeset is None:
        blocking = [p for p in result.problems if p.blocking]
        preview.notes.append(
            "no plan: " + (blocking[0].render().splitlines()[0] if blocking else "the head does not declare")
        )
        return
    for change in result.changeset.changes:
        if change.action is Action.CREATE:
            preview.create.append(change.subject)
        elif change.action is Action.UPDATE:
            preview.change.append({"object": change.subject, "diff": short_diff(render_diff.unified(change))})
        elif change.action in (Action.PRUNE, Action.UNMANAGE):
            preview.prune.append(change.subject)
        elif change.action is Action.UNCHANGED:
            preview.leave += 1


def short_diff(diff: str, limit: int = DIFF_LINES) -> str:
    """The field lines of a unified diff (headers dropped), at most ``limit`` of them."""
    bookkeeping = f"{metadata.DECLARED_HASH}:"  # changes with every edit: noise to a reviewer
    lines = [
        line
        for line in diff.splitlines()
        if not line.startswith(("---", "+++"))
        and not (line[:1] in "+-" and line[1:].strip().startswith(bookkeeping))
    ]
    lines = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " …" for line in lines]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... {len(lines) - limit} more line(s)"]
    return "\n".join(lines)


def _offline(
    preview: ClusterPreview,
    spec: SyncSpec,
    cluster: Cluster | None,
    base: declare.Declared,
    head: declare.Declared,
) -> None:
    recorded: set[ObjectId] | None = None
    if cluster is not None:
        try:
            recorded = inventory.read(cluster, spec.name)
        except AcmError as e:
            preview.notes.append(f"recorded inventory not readable ({e.code.id}): planned against the base")
    if recorded is not None:
        preview.against = INVENTORY
    else:
        preview.against = BASE
        recorded = {m.id for m in base.objects}
        if base.blocking:
            preview.notes.append("the base has blocking problems here, so it cannot all be applied")
    wanted = {m.id for m in head.objects}
    preview.create = sorted(str(o) for o in wanted - recorded)
    preview.prune = sorted(str(o) for o in recorded - wanted)
    preview.change = [{"object": str(o), "diff": ""} for o in sorted(wanted & recorded)]
    preview.changes_known = False
    if head.blocking:
        preview.notes.append("no plan: the head does not declare for this cluster")
        preview.create, preview.prune, preview.change = [], [], []


def preview_one(
    member: FleetCluster, request: Request, connect: Callable[[FleetCluster], Cluster]
) -> ClusterPreview:
    """The preview of one member; a problem that stops it is its ``error``, never raised."""
    spec = fanout.spec_for(member)
    if request.repo:
        spec = replace(spec, repo=request.repo)
    return preview_sync(member.name, spec, request, lambda: connect(member))


def preview_sync(
    name: str, spec: SyncSpec, request: Request, connect: Callable[[], Cluster]
) -> ClusterPreview:
    """The preview of one sync (``name`` is its cluster's) on the cluster ``connect`` reaches; a
    problem that stops it is its ``error``, never raised."""
    try:
        return _preview_sync(name, spec, request, connect)
    except AcmError as e:
        return ClusterPreview(name, error=e.to_problem(message=f"{name}: {e.message}"))
    except ApiError as e:
        error = e.to_acm()
        return ClusterPreview(name, error=error.to_problem(message=f"{name}: {error.message}"))


def _preview_sync(
    name: str, spec: SyncSpec, request: Request, connect: Callable[[], Cluster]
) -> ClusterPreview:
    preview = ClusterPreview(name)
    if spec.source_type != registry.GIT:
        preview.error = Problem(
            errors.PREVIEW_NEEDS_GIT,
            f"cluster {name} syncs a {spec.source_type} source; a preview compares two Git revisions",
            hint="give the cluster a Git repository in the fleet file, or leave it out with --cluster",
        )
        return preview
    refs: Cluster | None = None
    if spec.git_auth in SECRET_AUTH:  # the Secret is read as the sync reads it
        refs = pipeline.target_of(spec, connect())
    try:
        preview.base_commit, base = _declared(spec, request.base, request.options, refs)
        preview.head_commit, head = _declared(spec, request.head, request.options, refs)
    except AcmError as e:
        preview.error = e.to_problem(message=f"{name}: {e.message}")
        return preview
    preview.introduced, preview.fixed = compare(base.problems, head.problems)
    cluster: Cluster | None = None
    try:
        cluster = connect()
        unreachable = _reachable(cluster)
    except AcmError as e:
        unreachable = e.to_problem()
    preview.reachable = unreachable is None
    if unreachable is not None:
        preview.notes.append(f"unreachable ({unreachable.code.id}): planned offline")
        cluster = None
    if request.offline or cluster is None:
        preview.mode = OFFLINE
        _offline(preview, spec, cluster, base, head)
        return preview
    _live(preview, spec, cluster, request.options)
    return preview


def preview_all(
    members: list[FleetCluster],
    request: Request,
    *,
    parallel: int = 4,
    connect: Callable[[FleetCluster], Cluster] = fanout.connect,
) -> list[ClusterPreview]:
    """One preview per member, ``parallel`` at a time, in fleet order."""
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(lambda m: preview_one(m, request, connect), members))
