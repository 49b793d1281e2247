"""The inventory protocol of one pass: the record of what the sync manages is read before
planning; a commit that would prune all of it is refused; whatever the pass may apply is recorded
before anything is applied (a pass killed half-way never forgets what it created), written in the
background while the plan is made; the set left after pruning is recorded after applying. I/O:
the inventory's requests (``apply.inventory``), nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager

from acm_lite import errors
from acm_lite.apply import inventory
from acm_lite.cluster.client import Cluster
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId
from acm_lite.plan.changeset import Action, ChangeSet, Outcome, Result
from acm_lite.reconcile.background import Background


class Record:
    """The inventory of one sync through one pass. A pass that writes nothing (dry run, plan only)
    reads the record but never writes it."""

    def __init__(self, cluster: Cluster, sync: str, *, writes: bool):
        self.cluster, self.sync, self.writes = cluster, sync, writes
        self.recorded: set[ObjectId] = set()  # as the pass found it
        self.written: set[ObjectId] = set()  # as it stands before applying
        self.managed: int | None = None  # size of the record as last read or written
        self.notes: list[Problem] = []  # warnings of the writes (what they supersede stayed)
        self.kept: set[ObjectId] | None = None  # the record after applying, once written

    def start_from(self, recorded: AbstractSet[ObjectId]) -> None:
        """The record as the last pass of this process left it, taken instead of read (an
        incremental pass: the record is this sync's own, written by nobody else)."""
        self.recorded = self.written = set(recorded)
        self.managed = len(self.recorded) if self.writes else None

    def read(self, installed: bool) -> set[ObjectId]:
        """The recorded objects (none when acm-lite is not ``installed`` on the cluster)."""
        self.recorded = inventory.read(self.cluster, self.sync) if installed else set()
        self.written = self.recorded
        self.managed = len(self.recorded) if self.writes else None
        return self.recorded

    @contextmanager
    def writing(self, may_apply: set[ObjectId]) -> Iterator[None]:
        """Record ``may_apply`` with the recorded objects, in the background while the block runs
        (the plan is made meanwhile); the block's end waits for the write, and raises what the
        write raised."""
        early = self.recorded | may_apply
        thread = None
        if self.writes and early != self.recorded:
            thread = Background(lambda: self._before(early))
        try:
            yield
        finally:
            if thread:
                thread.wait()
                self.written = early
                self.managed = len(early)

    def before_applying(self, managed: set[ObjectId]) -> None:
        """Record what the plan manages if the write made while planning did not hold it all
        (never expected: the plan manages more than ``planner.manageable`` said)."""
        if self.writes and not managed <= self.written:
            self.written = self.written | managed
            self._before(self.written)
            self.managed = len(self.written)

    def after_applying(self, managed: set[ObjectId], results: list[Result]) -> Problem | None:
        """Record the set left after pruning (``final``); a problem when it could not be."""
        kept = final(self.recorded, managed, results)
        unrecorded = self._after(kept) if self.writes and kept != self.written else None
        self.managed = len(kept if unrecorded is None else self.written)
        self.kept = kept if unrecorded is None else None
        return unrecorded

    def _before(self, objects: set[ObjectId]) -> None:
        """Record what the pass may apply; a failure stops the pass before anything is applied,
        and says so."""
        try:
            self.notes += filter(None, [inventory.write(self.cluster, self.sync, objects)])
        except AcmError as e:
            raise AcmError(
                e.code, f"{e.message}; nothing was applied", path=e.path, subject=e.subject, hint=e.hint
            ) from e

    def _after(self, objects: set[ObjectId]) -> Problem | None:
        """Record the set left after pruning. Everything applied was recorded before applying, so
        a failure here only keeps pruned objects on the record until the next pass: reported, and
        the results of the applies are kept."""
        try:
            self.notes += filter(None, [inventory.write(self.cluster, self.sync, objects)])
        except AcmError as e:
            return e.to_problem(
                message=f"{e.message}; the objects were applied and recorded "
                "before applying, and the next pass records what was pruned"
            )
        return None


def refuse_prune_all(declared: set[ObjectId], recorded: set[ObjectId], allowed: bool) -> Problem | None:
    """A commit that keeps none of the recorded objects is refused unless pruning all is
    ``allowed`` (an empty source, or a wrong directory, would delete everything)."""
    if allowed or not recorded:
        return None
    if not recorded & declared:
        return Problem(
            errors.EMPTY_SOURCE,
            f"this commit would prune all {len(recorded)} objects the sync manages and keep none; refusing",
            hint="check --repo and --dir; pass --allow-prune-all if removing everything is intended",
        )
    return None


def managed(changes: ChangeSet) -> set[ObjectId]:
    """Declared objects this sync manages after the pass (not the disabled or conflicting ones)."""
    return {
        c.id
        for c in changes.changes
        if c.manifest is not None and c.action in (Action.CREATE, Action.UPDATE, Action.UNCHANGED)
    }


def final(recorded: set[ObjectId], managed: set[ObjectId], results: list[Result]) -> set[ObjectId]:
    """The record after applying: what the sync manages now, and of what it recorded before, all
    but what it released (pruned, unmanaged) and what left the source and is no longer its own."""
    released = {
        r.change.id
        for r in results
        if r.change.id not in managed and r.outcome in (Outcome.PRUNED, Outcome.UNMANAGED)
    }
    dropped = {
        r.change.id for r in results if r.change.action is Action.SKIP and r.change.manifest is None
    }  # left the source and no longer ours
    return managed | (recorded - released - dropped)
