"""The health stage of a pass, after apply: each managed object's status (``health.compute`` on
the live object), recorded in the sync's ResourceStatus parts, and the objects that Failed as
``KNV2009`` problems for the RootSync's status (they never fail the pass: the rest of the commit
is applied, and only ``sync --wait`` makes an object's health the pass's outcome). I/O: one labelled LIST per
kind whose objects this pass changed (unchanged objects were read by the plan), the LIST of the
stored parts, and a write per part that changed (``status.resourcestore``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acm_lite import errors, health, metadata
from acm_lite.cluster import live
from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId
from acm_lite.plan.changeset import Outcome, Result
from acm_lite.status import resources, resourcestore
from acm_lite.status.resources import Entry

MAX_REPORTED = 50  # objects named one by one in the status; the rest are counted in one problem
_KEPT = frozenset({Outcome.CREATED, Outcome.CONFIGURED, Outcome.UNCHANGED})
_WRITTEN = frozenset({Outcome.CREATED, Outcome.CONFIGURED})


@dataclass
class Recorded:
    """What the stage found and stored."""

    entries: list[Entry] = field(default_factory=list)
    stored: resourcestore.Stored = field(default_factory=dict)
    applied: set[ObjectId] = field(default_factory=set)  # written by this pass
    failed: list[Problem] = field(default_factory=list)  # KNV2009: reported, never blocking the pass
    problems: list[Problem] = field(default_factory=list)  # warnings: the record was not read or written
    table: Table | None = None  # the table as stored, by identity (``record_some``)

    @property
    def counts(self) -> dict[str, int]:
        return resources.counts(self.entries)


def commit_of(obj: Mapping[str, Any] | None) -> str:
    """The commit acm-lite last applied ``obj`` from (its commit annotation)."""
    return metadata.live_annotation(dict(obj or {}), metadata.COMMIT) or ""


def entry(oid: ObjectId, obj: Mapping[str, Any] | None) -> Entry:
    """One object's entry from its live state (None: it is gone)."""
    try:
        found = health.compute(obj)
    except Exception as e:  # a status no rule foresaw must not end the pass or a watch
        found = health.Health(health.Status.UNKNOWN, "Unreadable", f"{type(e).__name__}: {e}"[:200])
    return Entry.of(oid, found, commit_of(obj))


def record(
    cluster: Cluster,
    discovery: Discovery,
    sync: str,
    results: Iterable[Result],
    *,
    label_selector: str,
    scope: str | None,
    records: Cluster | None = None,
) -> Recorded:
    """The health of every object the pass left managed, stored; problems for those that Failed
    and for a record that could not be written. The objects are read through ``cluster``, the
    record kept through ``records`` (default the same; a RepoSync reads as its ServiceAccount,
    while its record is acm-lite's own)."""
    records = records or cluster
    kept = [r for r in results if r.outcome in _KEPT]
    written = [r for r in kept if r.outcome in _WRITTEN]
    fresh: dict[ObjectId, dict[str, Any]] = {}
    out = Recorded(applied={r.change.id for r in written})
    try:
        if written:
            fresh = live.snapshot(
                cluster,
                discovery,
                {r.change.id for r in written},
                label_selector,
                scope=scope,
                versions={r.change.id: r.change.manifest.version for r in written if r.change.manifest},
            )
    except AcmError as e:  # the API server went away after applying: health is read next time
        out.problems.append(
            Problem(
                errors.RESOURCE_STATUS_NOT_RECORDED,
                f"the health of sync {sync!r}'s objects could not be read: {e.message}",
            )
        )
        return out
    for r in kept:
        obj = fresh.get(r.change.id) if r.outcome in _WRITTEN else r.change.live
        out.entries.append(entry(r.change.id, obj))
    out.entries.sort(key=lambda e: e.id)
    out.failed = failures(out.entries)
    try:
        stored = resourcestore.read(records, sync)
    except AcmError as e:
        out.problems.append(
            Problem(
                errors.RESOURCE_STATUS_NOT_RECORDED,
                f"the health record of sync {sync!r} could not be read: {e.message}",
            )
        )
        return out
    drifts = {e.id: e.drift for e in resourcestore.entries(stored) if e.drift is not None}
    if drifts:  # who last changed an object is kept while it stays managed
        out.entries = [dataclasses.replace(e, drift=drifts.get(e.id, e.drift)) for e in out.entries]
    out.stored, warning = resourcestore.write(records, sync, out.entries, stored)
    if warning is not None:
        out.problems.append(warning)
    return out


def failures(entries: Iterable[Entry], timed_out: Iterable[Entry] = (), timeout: float = 0) -> list[Problem]:
    """``KNV2009`` for each object that Failed, and each one not Current within the reconcile
    timeout: its identity, status, reason and message. Past ``MAX_REPORTED``, one more problem
    counts the rest."""
    failed = [(e, "") for e in entries if e.status == health.Status.FAILED]
    late = [(e, f"not Current within the reconcile timeout ({timeout:g}s)") for e in timed_out]
    out = [_problem(e, why) for e, why in (failed + late)[:MAX_REPORTED]]
    rest = len(failed) + len(late) - MAX_REPORTED
    if rest > 0:
        out.append(
            Problem(
                errors.APPLY_ERROR,
                f"and {rest} more objects did not reconcile (acm-lite status --resources lists them)",
            )
        )
    return out


def _problem(e: Entry, why: str) -> Problem:
    detail = f"{e.reason}: {e.message}" if e.reason and e.message else e.reason or e.message
    lead = why or f"is {e.status}"
    return Problem(
        errors.APPLY_ERROR,
        f"{e.id} {lead}: status {e.status}" + (f", {detail}" if detail else ""),
        obj=e.id.describe(),
        hint="see acm-lite status --resources; the rest of the commit is applied",
    )


@dataclass(frozen=True)
class Table:
    """A sync's health table as a pass starts from it: each managed object's entry, the parts as
    stored, and the parts whose entries changed since they were stored (``dirty``)."""

    entries: Mapping[ObjectId, Entry]
    stored: resourcestore.Stored
    dirty: frozenset[int] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[Entry], stored: resourcestore.Stored) -> Table:
        return cls({e.id: e for e in entries}, stored)


def record_some(
    cluster: Cluster,
    discovery: Discovery,
    sync: str,
    results: Iterable[Result],
    *,
    before: Table,
    removed: Iterable[ObjectId],
    records: Cluster | None = None,
) -> Recorded:
    """``record`` for a pass that applied only some of the sync's objects (an incremental one):
    the objects it wrote read again (one GET each), their entries replaced in the table
    ``before`` (the last pass's, or the health tracker's since), those it released or that left
    the source dropped, and only the parts holding them (and those ``before`` had not stored
    yet) written: the cost follows the objects the pass changed, not the sync's size."""
    records = records or cluster
    results = list(results)
    written = [r for r in results if r.outcome in _WRITTEN]
    out = Recorded(applied={r.change.id for r in written})
    table = dict(before.entries)
    touched = set(removed)
    for oid in touched:
        table.pop(oid, None)
    for r in results:
        touched.add(r.change.id)
        if r.outcome not in _KEPT:
            table.pop(r.change.id, None)
    try:
        fresh = live.objects(
            cluster,
            discovery,
            out.applied,
            versions={r.change.id: r.change.manifest.version for r in written if r.change.manifest},
        )
    except AcmError as e:
        out.problems.append(
            Problem(
                errors.RESOURCE_STATUS_NOT_RECORDED,
                f"the health of sync {sync!r}'s objects could not be read: {e.message}",
            )
        )
        return out
    for r in results:
        if r.outcome in _KEPT:
            old = table.get(r.change.id)
            found = entry(r.change.id, fresh.get(r.change.id) if r.outcome in _WRITTEN else r.change.live)
            table[r.change.id] = dataclasses.replace(found, drift=old.drift) if old and old.drift else found
    out.entries = list(table.values())
    out.failed = failures(sorted((e for e in out.entries if e.status == health.Status.FAILED), key=_id))
    out.stored, warning = resourcestore.write(
        records, sync, out.entries, before.stored, only=_parts(table, before, touched)
    )
    if warning is not None:
        out.problems.append(warning)
    out.table = Table(table, out.stored)
    return out


def _id(e: Entry) -> ObjectId:
    return e.id


def _parts(
    table: Mapping[ObjectId, Entry], before: Table, touched: set[ObjectId]
) -> dict[str, list[Entry]] | None:
    """The parts to write when only ``touched`` objects (and the ``dirty`` parts) changed: each
    rebuilt from the objects its stored self holds and the touched ones that fall in it. None
    (write every part that differs) when the part count changes or a part was never stored.
    Which objects a part holds only changes with a pass (the health tracker changes entries)."""
    count = resources.part_count(len(table))
    if len(before.stored) != count or any(str(i) not in before.stored for i in range(count)):
        return None
    members: dict[int, set[ObjectId]] = {i: set() for i in before.dirty if i < count}
    for oid in touched:
        members.setdefault(resources.part_of(oid, count), set()).add(oid)
    parts = {}
    for index, extra in members.items():
        held = {e.id for e in before.stored[str(index)]} | extra  # a dirty part's too: passes alone add
        parts[str(index)] = sorted((table[o] for o in held if o in table), key=_id)
    return parts
