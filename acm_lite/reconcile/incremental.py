"""Incremental passes: a new commit of a sync declared, checked and planned from what changed since
the last pass, not from the whole repository.

A pass that synced a commit cleanly leaves a ``Baseline``: its declared objects by file, what
declaring any of them needs of the whole set (``declare.Context``), the inventory it recorded
and the policies it checked against. The next commit of the same sync is then declared from
the files Git says changed (``source.changes``): only they are read; the per-object rules run
on their objects; the whole-set rules compare them with the rest (an identity declared twice, a
removed object another one depends on); the objects that changed are the only ones read live
(one GET each), reviewed by policy, planned and applied. Everything else is as the last pass
left it, kept so by the drift watches.

``declare_delta`` says why a full pass is needed instead whenever the shortcut could differ from
one: the format needs the whole tree (hierarchy, kustomize, dynamic NamespaceSelectors), the
commit touches an object that shapes how others are read (``declare.structural``: CRDs,
Namespaces, selectors, policy objects, depends-on), it has any problem at all (a full pass
reports it exactly), too many files changed, or policies read the whole inventory
(referential templates). The daemon adds its own reasons (the watches missed events since; the
periodic resync is due). No I/O but reading the changed files."""

from __future__ import annotations

import posixpath
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from acm_lite import declare, metadata
from acm_lite.cluster.discovery import Discovery
from acm_lite.objects import Manifest, ObjectId
from acm_lite.parse import files, hierarchy, reader
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.policy import library, referential
from acm_lite.reconcile import healthstage
from acm_lite.reconcile.model import SyncOptions, SyncSpec
from acm_lite.source import changes
from acm_lite.source.snapshot import Snapshot

MAX_CHANGED_FILES = 200  # more than this: a full pass reads them faster than one by one
MAX_CHANGED_OBJECTS = 2_000  # objects read live one GET each; above it a LIST per kind is cheaper


@dataclass
class Baseline:
    """What the last clean pass of a sync left for the next one to start from."""

    spec: SyncSpec
    options: SyncOptions
    snapshot: Snapshot
    by_file: dict[str, tuple[Manifest, ...]]  # the declared objects, by the file declaring them
    objects: dict[ObjectId, Manifest]  # the declared objects
    context: declare.Context
    policy: list[Manifest]  # the policy objects the source declares
    depended: frozenset[ObjectId]  # objects some declared object depends on
    # the inventory as the pass left it; None: exactly the declared objects (the usual case,
    # kept as the keys of ``objects`` rather than a second set of every identity)
    recorded_as: frozenset[ObjectId] | None
    discovery: Discovery
    referential: bool  # a policy reads the whole inventory: every object is reviewed each pass
    # the health table and its stored parts, to record the next pass's objects into: the pass's
    # own, or None when a health tracker keeps the table (the daemon hands its current one in)
    health: healthstage.Table | None
    # how many times the drift watches had lost their place as the pass started (set by the
    # daemon; None: not known, a full pass next)
    relists: int | None = None

    @property
    def recorded(self) -> AbstractSet[ObjectId]:
        return self.objects.keys() if self.recorded_as is None else self.recorded_as


def _recorded_as(
    recorded: frozenset[ObjectId], objects: dict[ObjectId, Manifest]
) -> frozenset[ObjectId] | None:
    return None if len(recorded) == len(objects) and recorded == objects.keys() else recorded


@dataclass
class Delta:
    """A commit declared from what changed since the baseline."""

    changed: declare.Declared  # the objects added or changed, declared (policy: the baseline's)
    removed: frozenset[ObjectId]  # declared at the baseline, gone now
    by_file: dict[str, tuple[Manifest, ...]]
    objects: dict[ObjectId, Manifest]
    files: int = 0  # files read
    unchanged: int = 0  # objects of the changed files that did not change


def usable(declared: declare.Declared, spec: SyncSpec, *, rendered: bool) -> str | None:
    """Why a pass's declared set cannot be a baseline (None: it can)."""
    if rendered:
        return "the source is rendered by kustomize"
    if declared.live_namespaces is not None:
        return "dynamic NamespaceSelectors choose from live Namespaces"
    if declared.problems:
        return "the last pass had problems"
    return None


def baseline(
    declared: declare.Declared,
    spec: SyncSpec,
    options: SyncOptions,
    snapshot: Snapshot,
    *,
    recorded: frozenset[ObjectId],
    discovery: Discovery,
    health: healthstage.Table,
) -> Baseline:
    """The baseline a clean pass leaves (``usable`` said it can)."""
    by_file: dict[str, list[Manifest]] = {}
    for obj in declared.objects:
        by_file.setdefault(obj.source, []).append(obj)
    for obj in declared.policy:
        by_file.setdefault(obj.source, []).append(obj)
    policy_objects = declared.policy + library.load(options.policies)
    objects = {o.id: o for o in declared.objects}
    return Baseline(
        spec=spec,
        options=options,
        snapshot=snapshot,
        by_file={k: tuple(v) for k, v in by_file.items()},
        objects=objects,
        context=declare.Context.of(declared.objects, _options(spec, options)),
        policy=list(declared.policy),
        depended=frozenset(d for o in declared.objects for d in metadata.dependencies(o)),
        recorded_as=_recorded_as(recorded, objects),
        discovery=discovery,
        referential=bool(policy_objects) and bool(referential.wanted(policy_objects).kinds),
        health=health,
    )


def _options(spec: SyncSpec, options: SyncOptions) -> declare.Options:
    return declare.Options(
        source_format=spec.source_format, schema=options.schema, tenant_namespace=spec.namespace
    )


def same_sync(base: Baseline, spec: SyncSpec, options: SyncOptions) -> bool:
    """Whether ``spec`` and ``options`` declare and plan as the baseline's did (anything else
    than the commit and the knobs of applying changed means a full pass)."""
    return base.spec == spec and (
        base.options.schema,
        base.options.policies,
        base.options.take_over,
        base.options.allow_prune_all,
        base.options.render,
    ) == (options.schema, options.policies, options.take_over, options.allow_prune_all, options.render)


def declare_delta(
    base: Baseline,
    snapshot: Snapshot,
    spec: SyncSpec,
    options: SyncOptions,
    *,
    limits: reader.Limits | None = None,
) -> Delta | str:
    """The new commit declared from the files that changed since ``base``; or why it must be
    declared in full."""
    if not same_sync(base, spec, options):
        return "the sync's spec or options changed"
    if base.referential:
        return "a policy reads the whole inventory (referential constraint)"
    if base.health is None:
        return "the health table to record into is not known"
    found = _read_changes(base, snapshot, limits or reader.Limits())
    if isinstance(found, str):
        return found
    paths, read, files_read = found
    target = ClusterTarget(spec.cluster_name, spec.cluster_labels)
    declared = declare.declare_some(read, target, _options(spec, options), base.context)
    if declared.problems:
        return "the changed objects have problems (a full pass reports them)"
    delta = _merged(base, declared, paths, spec)
    if isinstance(delta, str):
        return delta
    if base.recorded and not base.recorded & delta.objects.keys() and not options.allow_prune_all:
        return "the commit would prune everything (a full pass refuses it)"
    delta.files = files_read
    return delta


def _read_changes(
    base: Baseline, snapshot: Snapshot, limits: reader.Limits
) -> tuple[list[str], list[Manifest], int] | str:
    """The paths that changed since ``base`` and the objects of those still there, read; or why
    a full pass is needed."""
    found = changes.changed(base.snapshot, snapshot)
    if found is None:
        return "what changed since the last pass is not known"
    paths = sorted(found.modified | found.removed)
    if len(paths) > MAX_CHANGED_FILES:
        return f"{len(paths)} files changed (more than {MAX_CHANGED_FILES})"
    hierarchical = base.spec.source_format == declare.HIERARCHY
    if hierarchical:
        outside = [p for p in paths if not _leaf(p, base.context.namespace_dirs)]
        if any(p.partition("/")[0] in hierarchy.TOP_DIRS for p in outside):
            return "the commit changes a file others inherit from or that shapes the tree"
        paths = [p for p in paths if p not in outside]  # not read at all in this format
    root = Path(snapshot.root)
    readable = {p: files.read_by_walk(root, p) for p in sorted(found.modified) if p in paths}
    if None in readable.values():
        return "a changed path is a symbolic link or not a regular file"
    if any(declare.structural(o) for p in paths for o in base.by_file.get(p, ())):
        return "the commit changes an object that shapes how others are declared"
    if len(base.by_file) + len(readable) > limits.max_files // 2:
        return "the source is close to the file limit"
    read = reader.ReadResult()
    for path in (p for p, wanted in readable.items() if wanted):
        one = reader.read_file(root, path, limits)
        read.manifests += one.manifests
        read.problems += one.problems
    if read.problems:
        return "the changed files have problems (a full pass reports them)"
    if any(declare.structural(o) for o in read.manifests):
        return "the commit adds an object that shapes how others are declared"
    return paths, read.manifests, sum(1 for w in readable.values() if w)


def _leaf(path: str, namespace_dirs: frozenset[str]) -> bool:
    """Whether a hierarchical source's file declares objects nothing inherits and that shape no
    other: in ``cluster/``, or directly in a namespace directory."""
    return path.startswith("cluster/") or posixpath.dirname(path) in namespace_dirs


def _merged(base: Baseline, declared: declare.Declared, paths: list[str], spec: SyncSpec) -> Delta | str:
    """The declared set after the commit: the baseline's, less the objects of the changed files,
    plus what they declare now; or why a full pass is needed (an identity declared twice, a
    removed object another depends on, too many objects changed)."""
    touched = set(paths)
    before = [o for p in paths for o in base.by_file.get(p, ())]
    new_ids = {o.id for o in declared.objects}
    for obj in declared.objects:
        old = base.objects.get(obj.id)
        if old is not None and old.source not in touched:
            return f"{obj.id} is declared in {old.source} too (a full pass reports it)"
    removed = frozenset(o.id for o in before if o.id not in new_ids)
    if removed & base.depended:
        return "a removed object is depended on (a full pass reports it)"
    if len(new_ids) + len(removed) > MAX_CHANGED_OBJECTS:
        return f"{len(new_ids) + len(removed)} objects changed (more than {MAX_CHANGED_OBJECTS})"
    objects = dict(base.objects)
    for oid in removed:
        del objects[oid]
    changed = []
    for obj in declared.objects:
        old = objects.get(obj.id)
        if old is None or old.digest != obj.digest or old.source != obj.source:
            changed.append(obj)
        objects[obj.id] = obj
    by_file = dict(base.by_file)
    for path in paths:
        by_file.pop(path, None)
    for obj in declared.objects:
        by_file[obj.source] = (*by_file.get(obj.source, ()), obj)
    result = declare.Declared(spec.cluster_name, objects=changed, policy=base.policy)
    return Delta(result, removed, by_file, objects, unchanged=len(declared.objects) - len(changed))


def advance(
    base: Baseline,
    delta: Delta,
    snapshot: Snapshot,
    recorded: frozenset[ObjectId],
    *,
    health: healthstage.Table,
) -> Baseline:
    """The baseline after a clean incremental pass."""
    return Baseline(
        spec=base.spec,
        options=base.options,
        snapshot=snapshot,
        by_file=delta.by_file,
        objects=delta.objects,
        context=base.context,
        policy=base.policy,
        depended=base.depended,
        recorded_as=_recorded_as(recorded, delta.objects),
        discovery=base.discovery,
        referential=base.referential,
        health=health,
        relists=base.relists,
    )
