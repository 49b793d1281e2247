"""Health tracking between passes: the drift watches hand every event on a managed object to
``observe``, which recomputes that object's health (``health.compute``) and keeps the table in
memory; ``flush`` (every ``interval`` seconds, from its own thread) writes the ResourceStatus
parts that changed since the last flush, and the RootSync's status when what it says changed:
objects that Failed or were not Current within the reconcile timeout (``KNV2009``), the objects
per health status, and the Reconciling/Stalled/Ready conditions.

Bounded: the table holds one entry per object the last pass left managed (events on any other
object are ignored), an entry's strings are cut short, and however many events arrive, each
part is written at most once per interval. The RootSync is left alone while a pass runs (the
pass writes its own status and hands the tracker its table with ``reset``)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from acm_lite import api, errors, health
from acm_lite.cluster.client import Client
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId
from acm_lite.reconcile import healthstage
from acm_lite.reconcile.bookkeeping import reported
from acm_lite.reconcile.metrics import Metrics
from acm_lite.status import resources, resourcestore, store
from acm_lite.status.model import SyncStatus, conditions
from acm_lite.status.resources import Drift, Entry

log = logging.getLogger("acm_lite.health")
INTERVAL = 2.0


def _dirty_parts(
    table: dict[ObjectId, Entry], stored: resourcestore.Stored, dirty: set[int], count: int
) -> dict[str, list[Entry]] | None:
    """The dirty parts rebuilt from the objects their stored selves hold (only a pass changes
    which objects a part holds, and it stores every part): what a flush writes, in time that
    follows the dirty parts, not the table. None when the stored parts are not a whole split of
    the table (a part a pass could not write)."""
    if len(stored) != count or sum(len(p) for p in stored.values()) != len(table):
        return None
    out: dict[str, list[Entry]] = {}
    for index in sorted(dirty):
        held = stored.get(str(index))
        if held is None or any(e.id not in table for e in held):
            return None
        out[str(index)] = [table[e.id] for e in held]
    return out


class HealthTracker:
    def __init__(
        self,
        cluster: Client,
        sync: str,
        *,
        timeout: float,
        metrics: Metrics | None = None,
        interval: float = INTERVAL,
        may_write_status: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        sync_object: tuple[str, str | None, str] | None = None,
    ):
        self.cluster, self.sync, self.timeout, self.metrics = cluster, sync, timeout, metrics
        # the sync object whose status is written: kind, namespace (None: the system one), name
        self.sync_object = sync_object or (api.ROOT_SYNC, None, sync)
        self.interval, self.may_write_status, self.clock = interval, may_write_status, clock
        self._table: dict[ObjectId, Entry] = {}
        self._stored: resourcestore.Stored = {}
        self._count = 1  # parts of the table, fixed at reset
        self._dirty: set[int] = set()  # parts changed since the last flush
        self._deadlines: dict[ObjectId, float] = {}  # applied, not yet Current: reported after this
        self._reported: tuple[Problem, ...] | None = None  # what the RootSync says, as last written
        self._status_due = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0  # ResourceStatus writes made (for tests and measurements)
        self.events = 0

    # -- fed by the pass and the watches -------------------------------------------------------

    def reset(
        self,
        entries: Iterable[Entry],
        *,
        stored: resourcestore.Stored,
        written: set[ObjectId],
        timeout: float | None = None,
    ) -> None:
        """After a pass: its table and what it stored. Objects it ``written`` get the reconcile
        timeout from now; objects it left unchanged keep the deadline they had."""
        now = self.clock()
        with self._lock:
            if timeout is not None:
                self.timeout = timeout
            drifts = {k: e.drift for k, e in self._table.items() if e.drift is not None}
            self._table = {
                e.id: e
                if e.drift is not None or e.id not in drifts
                else dataclasses.replace(e, drift=drifts[e.id])
                for e in entries
            }
            self._stored = dict(stored)
            self._count = resources.part_count(len(self._table))
            self._dirty = {
                i for i in range(self._count) if str(i) not in stored
            }  # a part the pass could not write
            deadlines = {oid: d for oid, d in self._deadlines.items() if oid in self._table}
            for oid in written:
                if oid in self._table:
                    deadlines[oid] = now + self.timeout
            self._deadlines = {oid: d for oid, d in deadlines.items() if not self._table[oid].healthy}
            self._reported = None  # the pass rewrote the RootSync's status
            self._status_due = True
        self._gauge()

    def observe(self, oid: ObjectId, obj: Mapping[str, Any] | None) -> None:
        """One watch event on a managed object (``obj`` None: it was deleted)."""
        self.events += 1
        with self._lock:
            before = self._table.get(oid)
        if before is None:
            return
        after = healthstage.entry(oid, obj)
        after = dataclasses.replace(after, commit=after.commit or before.commit, drift=before.drift)
        if after == before:
            return
        with self._lock:
            if oid not in self._table:
                return
            self._table[oid] = after
            self._dirty.add(resources.part_of(oid, self._count))
            if after.healthy:
                self._deadlines.pop(oid, None)
            if after.healthy != before.healthy or after.status != before.status:
                self._status_due = True

    def drifted(self, oid: ObjectId, drift: Drift) -> None:
        """A repaired drift of a managed object: who made the change, kept in its entry."""
        with self._lock:
            before = self._table.get(oid)
            if before is None:
                return
            self._table[oid] = dataclasses.replace(before, drift=drift)
            self._dirty.add(resources.part_of(oid, self._count))

    # -- what the tracker reports --------------------------------------------------------------

    def entries(self) -> list[Entry]:
        with self._lock:
            return [self._table[k] for k in sorted(self._table)]

    def table(self) -> healthstage.Table:
        """The entries, the parts as last stored and those changed since, for a pass to record
        its objects into."""
        with self._lock:
            return healthstage.Table(dict(self._table), dict(self._stored), frozenset(self._dirty))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return resources.counts(self._table.values())

    def problems(self) -> list[Problem]:
        """Objects that Failed, and those applied but not Current past their deadline."""
        now = self.clock()
        with self._lock:
            table = dict(self._table)
            late = [table[o] for o, d in self._deadlines.items() if d <= now and o in table]
        late = [e for e in late if e.status != health.Status.FAILED and not e.healthy]
        return healthstage.failures(sorted(table.values(), key=lambda e: e.id), late, self.timeout)

    def next_deadline(self) -> float | None:
        with self._lock:
            return min(self._deadlines.values(), default=None)

    # -- writing -------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the parts changed since the last flush, and the RootSync's status when what it
        would say changed; the number of writes made. Failures are logged and tried again at the
        next flush."""
        made = 0
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            table = dict(self._table)
            stored = dict(self._stored)
        if dirty:
            wanted = _dirty_parts(table, stored, dirty, self._count)
            if wanted is None:  # the stored parts do not tell which objects each holds: all of them
                wanted = resources.split(table.values(), self._count)
                unchanged = {k: v for k, v in wanted.items() if int(k) not in dirty}
                now_stored, problem = resourcestore.write(
                    self.cluster, self.sync, table.values(), {**stored, **unchanged}
                )
            else:
                now_stored, problem = resourcestore.write(self.cluster, self.sync, (), stored, only=wanted)
            made = sum(
                1 for k in wanted if int(k) in dirty and stored.get(k) != wanted[k] == now_stored.get(k)
            )
            with self._lock:
                self._stored = now_stored
                if problem is not None:  # tried again at the next flush
                    self._dirty |= {int(k) for k in wanted if now_stored.get(k) != wanted[k]}
            if problem is not None:
                log.warning(
                    "health not recorded", extra={"fields": {"sync": self.sync, "error": problem.message}}
                )
            self.writes += made
            self._gauge()
        made += self._write_status()
        return made

    def _write_status(self) -> int:
        """The RootSync's health errors, counts and conditions, when they changed (1: written)."""
        with self._lock:
            due = self._status_due
        deadline = self.next_deadline()
        if not (due or (deadline is not None and deadline <= self.clock())):
            return 0
        problems = tuple(self.problems())
        if (not due and problems == self._reported) or not self.may_write_status():
            return 0
        try:
            kind, namespace, name = self.sync_object
            found = store.read(self.cluster, name, namespace, kind=kind)
            if found is None:
                return 0
            status = SyncStatus.from_status(found.get("status"))
            kept = [e for e in status.errors if e.get("code") != errors.APPLY_ERROR.id]
            status.errors = kept + [reported(p) for p in problems]
            status.health = self.counts()
            status.conditions = conditions(status, status.conditions)
            wrote = store.write_status(self.cluster, name, status, found, namespace, kind=kind)
        except AcmError as e:
            log.warning(
                "health not recorded in status", extra={"fields": {"sync": self.sync, "error": str(e)}}
            )
            return 0
        with self._lock:
            self._reported, self._status_due = problems, False
        return 1 if wrote else 0

    def _gauge(self) -> None:
        if self.metrics is not None:
            for status, count in self.counts().items():
                self.metrics.health.labels(self.sync, status).set(count)

    # -- the flushing thread -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name=f"health-{self.sync}")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # a bug must not end health tracking for good
                log.exception("health flush failed", extra={"fields": {"sync": self.sync}})
