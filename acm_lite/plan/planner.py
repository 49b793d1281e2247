"""Declared set + live objects + previous inventory → the change set. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acm_lite import errors, metadata
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId
from acm_lite.plan import compare, ignorefields, order, ownership, protected
from acm_lite.plan.changeset import Action, Change, ChangeSet


@dataclass(frozen=True)
class PlanOptions:
    sync: str
    commit: str | None = None
    take_over: bool = False  # adopt objects another sync manages (never by default)
    ignore: ignorefields.Rules = ignorefields.NONE  # fields never applied nor counted as drift


def _declared_change(
    obj: Manifest, live: dict[str, Any] | None, opts: PlanOptions, level: int
) -> tuple[Change, Problem | None]:
    ignored = opts.ignore.for_object(obj.id)

    def change(action: Action, reason: str, desired: dict[str, Any] | None = None) -> Change:
        return Change(
            action,
            obj.id,
            reason,
            level=level,
            desired=desired,
            live=live,
            manifest=obj,
            depends_on=tuple(metadata.dependencies(obj)),
            ignored=ignored,
        )

    if metadata.is_disabled(obj):
        if live is not None and metadata.owner(live) == opts.sync:
            return change(Action.UNMANAGE, "management disabled in the source"), None
        return change(Action.SKIP, "management disabled in the source"), None
    desired = ignorefields.strip(ownership.stamp(obj, opts.sync, opts.commit), ignored)
    if live is None:
        return change(Action.CREATE, "not on the cluster", desired), None
    current_owner = metadata.owner(live)
    if current_owner and current_owner != opts.sync and not opts.take_over:
        problem = Problem.about(
            errors.MANAGEMENT_CONFLICT,
            f"{obj.id} is managed by sync {current_owner!r}; not taking it over",
            obj,
            hint="remove it from one of the two sources",
        )
        return change(Action.SKIP, f"managed by sync {current_owner!r}"), problem
    if metadata.ignores_mutation(obj):
        # Config Sync's rule: an object that exists is never changed, only marked as managed.
        if current_owner != opts.sync:
            reason = f"adopting an existing object ({metadata.MUTATION}: ignore: marks only)"
            return change(Action.UPDATE, reason, ownership.marks_only(desired)), None
        return change(
            Action.UNCHANGED, f"exists; {metadata.MUTATION}: ignore leaves it as it is", desired
        ), None
    if current_owner is None:
        return change(Action.UPDATE, "adopting an existing object", desired), None
    if metadata.live_annotation(live, metadata.DECLARED_HASH) != obj.digest:
        return change(Action.UPDATE, "declared object changed", desired), None
    drift = compare.difference(ownership.without_commit(desired), ignorefields.strip(live, ignored))
    if drift is not None:
        return change(Action.UPDATE, f"live object differs at {drift}", desired), None
    return change(Action.UNCHANGED, "matches the declared object", desired), None


def manageable(
    declared: list[Manifest], live: Mapping[ObjectId, dict[str, Any]], opts: PlanOptions
) -> set[ObjectId]:
    """The declared objects ``plan`` may go on to manage (create, update or leave unchanged): all
    but those whose management is disabled and those another sync owns. Cheap: what a pass
    records before it has made its plan."""
    out = set()
    for obj in declared:
        if metadata.is_disabled(obj):
            continue
        current_owner = metadata.owner(live.get(obj.id))
        if current_owner and current_owner != opts.sync and not opts.take_over:
            continue
        out.add(obj.id)
    return out


def _prune_change(oid: ObjectId, live: dict[str, Any] | None, opts: PlanOptions) -> Change | None:
    level = order.base_level(oid)
    if live is None:
        return None  # already gone
    if metadata.owner(live) != opts.sync:
        return Change(
            Action.SKIP, oid, "left the source, but no longer owned by this sync", level=level, live=live
        )
    if metadata.live_annotation(live, metadata.DELETION) == metadata.DETACH:
        return Change(
            Action.UNMANAGE,
            oid,
            f"left the source; {metadata.DELETION}: detach keeps it",
            level=level,
            live=live,
        )
    if protected.never_delete(oid):
        return Change(
            Action.UNMANAGE,
            oid,
            "left the source; a protected object is never deleted, only unmanaged",
            level=level,
            live=live,
        )
    return Change(Action.PRUNE, oid, "left the source", level=level, live=live)


def pruned(
    declared: set[ObjectId],
    live: Mapping[ObjectId, dict[str, Any]],
    inventory: set[ObjectId],
    opts: PlanOptions,
) -> set[ObjectId]:
    """The recorded objects ``plan`` will delete: those that left the source, still exist and are
    this sync's (not detached, not protected)."""
    out = set()
    for oid in inventory - declared:
        change = _prune_change(oid, live.get(oid), opts)
        if change is not None and change.action is Action.PRUNE:
            out.add(oid)
    return out


def plan(
    declared: list[Manifest],
    live: Mapping[ObjectId, dict[str, Any]],
    inventory: set[ObjectId],
    opts: PlanOptions,
    levels: order.Levels | None = None,
) -> ChangeSet:
    """``levels``: ``order.levels(declared)``, when the caller has it already."""
    result = ChangeSet()
    if levels is None:
        levels = order.levels(declared)
    result.problems = list(levels.problems)
    for obj in declared:
        change, problem = _declared_change(obj, live.get(obj.id), opts, levels.of[obj.id])
        result.changes.append(change)
        if problem:
            result.problems.append(problem)
    declared_ids = {o.id for o in declared}
    for oid in sorted(inventory - declared_ids):
        pruned = _prune_change(oid, live.get(oid), opts)
        if pruned:
            result.changes.append(pruned)
    result.changes.sort(key=lambda c: (c.level, c.id))
    return result
