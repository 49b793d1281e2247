"""The daemon: a reconcile loop per sync (poll the source every period, run the pipeline when the
commit changed, after drift, or hourly; back off exponentially on errors), drift repair between
passes, leader election so only one replica writes, graceful shutdown.

A worker survives whatever a poll raises: the error goes into the sync's status with a code (an
unexpected one as ACM2012 InternalError, its traceback only to the log), the worker backs off and
keeps polling. Readiness (/readyz) fails while a sync makes no progress: its worker thread died,
or its passes have been failing for longer than ``unready_after`` seconds on something other than
the commit itself (a commit with blocking errors is the repository's to fix, not the pod's)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError, Problem
from acm_lite.metadata import PROVIDER_LABEL
from acm_lite.parse.namespace_selection import LiveNamespaces
from acm_lite.reconcile import auditlog, events, incremental, pipeline, reposyncs
from acm_lite.reconcile import shards as shards_mod
from acm_lite.reconcile.dashboard import SyncView
from acm_lite.reconcile.healthtrack import HealthTracker
from acm_lite.reconcile.leader import LeaderElector
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.namespace_watch import NamespaceWatch
from acm_lite.reconcile.remediator import Remediator
from acm_lite.reconcile.shards import ShardCoordinator
from acm_lite.source import local
from acm_lite.source.auth import strip_userinfo
from acm_lite.status import resources, store
from acm_lite.status.resources import Entry
from acm_lite.validate import schema

log = logging.getLogger("acm_lite.daemon")


@dataclass(frozen=True)
class DaemonOptions:
    period: float = 15.0
    resync: float = 3600.0
    backoff_max: float = 300.0
    fight_threshold: int = 5
    drift_repair: bool = True
    unready_after: float = 0.0  # seconds of failing passes before /readyz fails (0: see below)
    # follow each object's health between passes (through the drift watches, so only with them)
    health_tracking: bool = True
    # the API server's audit log (JSON lines): the user behind a repaired change is read from it
    audit_log: Path | None = None
    # a new commit is planned from what changed since the last clean pass where it can
    # (``reconcile.incremental``); the periodic resync is always a full pass
    incremental: bool = True

    @property
    def unready_threshold(self) -> float:
        """Failing for this long is not a blip: four poll periods, at least a minute."""
        return self.unready_after or max(60.0, 4 * self.period)


class Worker:
    """One sync's loop."""

    def __init__(
        self,
        spec: pipeline.SyncSpec,
        connect: Callable[[], Cluster],
        *,
        sync_options: pipeline.SyncOptions,
        options: DaemonOptions,
        metrics: Metrics,
        leader: Callable[[], bool],
        stop: threading.Event,
    ):
        self.spec, self.connect, self.sync_options = spec, connect, sync_options
        self.options, self.metrics, self.leader, self.stop = options, metrics, leader, stop
        self.synced_commit: str | None = None
        self.last_full = 0.0
        self.failures = 0
        self.failing_since: float | None = None  # monotonic time of the first failure in a row
        self.stage = "source"  # what the poll under way is doing, for an error's report
        self.passes = 0
        self.busy = threading.Event()
        self.trigger = threading.Event()  # a webhook, a saved file, or a new sync object
        self.halt = threading.Event()  # this worker alone (its sync object was deleted)
        self.dirty = True  # a local directory changed since the last pass
        self.shard: int | None = None  # its fleet shard, when replicas share the fleet
        self.replica = ""  # this replica's identity in logs, when replicas share the fleet
        self.remediator: Remediator | None = None
        self.baseline: incremental.Baseline | None = None  # what the next pass may start from
        self.tracker: HealthTracker | None = None  # each managed object's health between passes
        self.namespace_watch: NamespaceWatch | None = None
        self.namespaces_changed = False  # live Namespaces a dynamic selector reads have changed
        self._observer: Any = None
        self._cluster: Cluster | None = None
        self._target: Cluster | None = None
        # what the last poll found, for the dashboard: replaced whole, never changed in place
        self.outcome: dict[str, Any] = {"state": "PENDING", "reachable": None, "errors": []}
        self.outcome_entries: list[Entry] = []
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"sync-{spec.name}")

    @property
    def cluster(self) -> Cluster:
        """acm-lite's own client: the sync object's status, the inventory, the health record."""
        if self._cluster is None:
            self._cluster = self.connect()
        return self._cluster

    @property
    def target(self) -> Cluster:
        """The client for the sync's own objects: a RepoSync's, as its ServiceAccount."""
        if self._target is None:
            self._target = pipeline.target_of(self.spec, self.cluster)
        return self._target

    def delay(self) -> float:
        """The period (the sync's own, else the daemon's), doubled per failure in a row up to
        ``backoff_max`` (the exponent is capped too: days of failures must not overflow a float
        and end the loop)."""
        period = self.spec.period or self.options.period  # the sync's own spec.git.period wins
        if self.failures:
            doubled = period * 2.0 ** min(self.failures - 1, 40)
            return float(min(self.options.backoff_max, doubled))
        return period

    def progressing(self) -> bool:
        """False while this sync makes no progress: its thread died, or its passes have been
        failing for longer than the threshold."""
        if self.thread.ident is not None and not self.thread.is_alive():
            return self.halt.is_set() or self.stop.is_set()
        since = self.failing_since
        return since is None or time.monotonic() - since <= self.options.unready_threshold

    def _loop(self) -> None:
        try:
            self._watch_local_directory()
        except Exception:  # no file events (e.g. out of inotify watches): polling still works
            log.warning(
                "cannot watch the local directory", exc_info=True, extra={"fields": {"sync": self.spec.name}}
            )
        while not (self.stop.is_set() or self.halt.is_set()):
            if self.leader():
                self._attempt()
            else:
                self.failing_since = None  # a standby has nothing to make progress on
            self.trigger.wait(self.delay())
            self.trigger.clear()
        if self._observer is not None:
            self._observer.stop()
        if self.remediator is not None:
            self.remediator.stop()
        if self.tracker is not None:
            self.tracker.stop()
        if self.namespace_watch is not None:
            self.namespace_watch.stop()

    def _attempt(self) -> None:
        """One poll; whatever it raises is reported and backed off from, never the end of the
        loop."""
        try:
            self.tick()
        except AcmError as e:  # the source or the cluster went away
            self._failed(e.to_problem(), None)
        except Exception as e:
            log.error(
                "poll raised", exc_info=True, extra={"fields": {"sync": self.spec.name, "stage": self.stage}}
            )
            self._failed(pipeline.internal_problem(e, self.stage), e)

    def _failed(self, problem: Problem, exception: BaseException | None) -> None:
        """A poll that failed outside a pass: back off, count it, put it in the status."""
        self.busy.clear()
        self._note(ok=False)
        self.outcome = {
            **self.outcome,
            "state": "ERROR",
            "reachable": False if problem.code in _UNREACHABLE else self.outcome.get("reachable"),
            "errors": [problem.to_dict()],
            "updated": time.time(),
        }
        self.metrics.errors.labels(self.spec.name, problem.code.id).inc()
        log.warning(
            "pass failed",
            extra={"fields": {"sync": self.spec.name, "stage": self.stage, "error": problem.render()}},
        )
        try:
            result = pipeline.failed_pass(
                self.spec,
                self.cluster,
                self.sync_options,
                self.stage,
                problems=[problem],
                exception=exception,
            )
        except Exception:  # not even a cluster to report to: the log has it
            log.warning("status not recorded", exc_info=True, extra={"fields": {"sync": self.spec.name}})
            return
        if result.status_error is not None:
            log.warning(
                "status not recorded",
                extra={"fields": {"sync": self.spec.name, "error": result.status_error.render()}},
            )

    def _note(self, *, ok: bool, input_fault: bool = False) -> None:
        """Keep the backoff and the failing streak up to date after a poll. A commit that is
        wrong (only permanent problems, the status recorded) is backed off from, but the loop is
        working: readiness stays, so the push that fixes it still reaches the webhook."""
        if ok:
            self.failures, self.failing_since = 0, None
            return
        self.failures += 1
        if input_fault:
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = time.monotonic()

    def wake(self) -> None:
        """Poll now (a push event, a changed file) instead of at the end of the period."""
        self.trigger.set()

    def _watch_local_directory(self) -> None:
        """A plain local directory (development): a saved file triggers a pass at once."""
        path = Path(self.spec.repo)
        if not path.is_dir() or local.is_git_repository(path):
            return
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        worker = self

        class Changed(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return  # a file read (a pass reading the directory), not a change
                if not event.is_directory or event.event_type in ("deleted", "moved"):
                    worker.dirty = True
                    worker.wake()

        self._observer = Observer()
        self._observer.schedule(Changed(), str(path), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def tick(self) -> None:
        """One poll: a full pass only when there is something to do."""
        started = time.monotonic()
        if self.spec.repo_sync and (self.passes == 0 or self.failures):
            self.stage = "setup"  # the ServiceAccount and RoleBindings before anything runs as them
            name, namespace = self.spec.object_key
            owner = store.read(self.cluster, name, namespace, kind=self.spec.kind)
            reposyncs.ensure(self.cluster, self.spec, owner)
        self.stage = "source"
        snapshot = pipeline.fetch_source(self.spec, self.sync_options, lambda _m: None, cluster=self.target)
        self.metrics.git_fetch.labels(self.spec.name).observe(time.monotonic() - started)
        changed = self.dirty if snapshot.commit is None else snapshot.commit != self.synced_commit
        due = (
            changed
            or self.failures
            or self.passes == 0
            or self.namespaces_changed
            or time.monotonic() - self.last_full > self.options.resync
        )
        if not due:
            self.metrics.skipped.labels(self.spec.name).inc()
            return
        base = self._baseline(changed)
        remediator = self.remediator
        relists = remediator.relists if remediator is not None else 0  # as this pass starts
        self.busy.set()  # no drift repair against an old declared state while a pass runs
        self.dirty = self.namespaces_changed = False
        self.stage = "setup"
        try:
            result = pipeline.run(
                self.spec,
                self.cluster,
                self.sync_options,
                snapshot=snapshot,
                target=self.target,
                baseline=base,
            )
        finally:
            self.busy.clear()
        self.baseline = result.baseline
        self.passes += 1
        self.stage = "record"
        if result.exception is not None:
            log.error(
                "pass raised",
                exc_info=result.exception,
                extra={"fields": {"sync": self.spec.name, "stage": result.status.stage}},
            )
        self.record(result, time.monotonic() - started)
        if result.ok or result.live_namespaces is not None:  # a pass that failed first says nothing
            self._follow_namespaces(result.live_namespaces)
        # a status that could not be written counts as a failure: the next poll runs a pass
        blocking = [p for p in result.problems if p.blocking]
        self._note(
            ok=result.ok and result.status_error is None,
            input_fault=bool(blocking)
            and result.status_error is None
            and all(p.code.category is errors.Category.PERMANENT for p in blocking),
        )
        if result.health is not None and self.options.health_tracking and self.options.drift_repair:
            self._health().reset(
                result.health,
                stored=result.health_stored,
                written=result.written,
                timeout=self.spec.reconcile_timeout or self.sync_options.reconcile_timeout,
            )
            if self.baseline is not None:
                self.baseline.health = None  # the tracker keeps the table: one copy, not two
        if result.ok:
            self._synced(result, relists)
        full = not result.incremental
        del result  # what the pass read and planned is not kept: only what the watches defend is
        if full:  # an incremental pass allocates little: collecting after it would cost more
            release_memory()

    def _synced(self, result: pipeline.SyncResult, relists: int) -> None:
        """After a pass that synced its commit: the drift watches defend what it declared, and
        its baseline keeps how many times they had lost their place as the pass started (one
        that loses it while the pass runs then still counts). A watch of a kind the pass adds
        reads the state as it is when it starts: it misses nothing."""
        self.synced_commit = result.status.commit
        if not result.incremental:
            self.last_full = time.monotonic()
        if self.options.drift_repair and result.changeset is not None:
            self.stage = "repair"
            remediator = self._remediator()
            if result.incremental:
                remediator.update_some(result.changeset)
            else:
                remediator.update(result.changeset)
            if self.baseline is not None:
                self.baseline.relists = relists

    def _baseline(self, changed: bool) -> incremental.Baseline | None:
        """What this pass may start from: the last clean pass's baseline when only the commit
        changed since, no drift watch has lost its place since it (so none can have missed a
        change), and the periodic resync is not due; the health table of the tracker, kept
        current since. None: a full pass."""
        base = self.baseline
        remediator = self.remediator
        if (
            base is None
            or not self.options.incremental
            or not changed
            or self.failures
            or self.namespaces_changed
            or remediator is None
            or time.monotonic() - self.last_full > self.options.resync
        ):
            return None
        if base.relists is None or remediator.relists != base.relists:
            log.info(
                "full pass: a drift watch lost its place since the last pass (it may have missed changes)",
                extra={"fields": {"sync": self.spec.name, "relists": remediator.relists}},
            )
            return None
        if self.tracker is not None:
            base.health = self.tracker.table()
        return base

    def _follow_namespaces(self, used: LiveNamespaces | None) -> None:
        """Watch live Namespaces while dynamic NamespaceSelectors choose from them: a Namespace
        created, deleted or relabelled then starts a pass."""
        if used is not None and self.namespace_watch is None:
            self.namespace_watch = NamespaceWatch(self.cluster, self._namespaces_changed)
        if self.namespace_watch is not None:
            self.namespace_watch.follow(used)

    def _namespaces_changed(self) -> None:
        self.namespaces_changed = True
        self.wake()

    def _health(self) -> HealthTracker:
        if self.tracker is None:
            self.tracker = HealthTracker(
                self.cluster,
                self.spec.name,
                timeout=self.spec.reconcile_timeout or self.sync_options.reconcile_timeout,
                metrics=self.metrics,
                may_write_status=lambda: self.leader() and not self.busy.is_set(),
                sync_object=(self.spec.kind, self.spec.object_key[1], self.spec.object_key[0]),
            )
            self.tracker.start()
        return self.tracker

    def _remediator(self) -> Remediator:
        if self.remediator is None:
            self.remediator = Remediator(
                self.target,
                Discovery(self.target),
                self.spec.name,
                metrics=self.metrics,
                allowed=lambda: (
                    self.leader() and not self.busy.is_set() and self.thread.is_alive()
                ),  # no repairs for a dead loop
                fight_threshold=self.options.fight_threshold,
                on_fight=self._fight,
                on_event=self._health().observe if self.options.health_tracking else lambda _o, _b: None,
                scope=self.spec.namespace,
                on_drift=self._health().drifted if self.options.health_tracking else lambda _o, _d: None,
                users=auditlog.AuditLog(self.options.audit_log).user if self.options.audit_log else None,
            )
        return self.remediator

    def _fight(self, change: Any) -> None:
        """A fight goes into the sync's status until the next pass rewrites it."""
        problem = Problem(
            errors.FIGHT,
            f"{change.subject} keeps being changed back by another "
            "controller; repair paused until the next pass",
            obj=change.id.describe(),
            hint="find the other controller writing it",
        )
        try:
            name, namespace = self.spec.object_key
            store.add_error(self.cluster, name, problem.to_dict(), namespace, kind=self.spec.kind)
        except AcmError as e:
            log.warning("fight not recorded in status", extra={"fields": {"error": str(e)}})

    def view(self, objects: bool = True) -> SyncView:
        """This sync as the dashboard shows it; each object's entry only when ``objects``."""
        labels = self.spec.cluster_labels or {}
        tracker = self.tracker
        counts = None
        if not objects:
            counts = tracker.counts() if tracker is not None else resources.counts(self.outcome_entries)
        return SyncView(
            cluster=self.spec.cluster_name or "local",
            sync=self.spec.name,
            describe=self.spec.describe,
            provider=labels.get(PROVIDER_LABEL, ""),
            source=strip_userinfo(self.spec.repo),
            outcome=self.outcome,
            entries=self.entries() if objects else (),
            counts=counts,
            spec=self.spec,
            connect=self.connect,
        )

    def entries(self) -> list[Entry]:
        """Each managed object's health: as followed between passes, else as the last pass saw it."""
        tracker = self.tracker
        return tracker.entries() if tracker is not None else sorted(self.outcome_entries, key=lambda e: e.id)

    def record(self, result: pipeline.SyncResult, seconds: float) -> None:
        name = self.spec.name
        problems = [*result.problems, *result.health_problems]
        self.outcome = {
            "state": result.status.state.value,
            "commit": result.status.commit,
            "syncedCommit": result.status.synced_commit,
            "reachable": not any(p.code in _UNREACHABLE for p in problems),
            "errors": [p.to_dict() for p in problems[:_MAX_SHOWN_ERRORS]],
            "errorCount": len(problems),
            "updated": time.time(),
        }
        if result.health is not None:
            self.outcome_entries = list(result.health)
        self.metrics.sync_duration.labels(name).observe(seconds)
        self.metrics.passes.labels(name, "incremental" if result.incremental else "full").inc()
        for outcome, count in result.counts.items():
            if count:
                self.metrics.objects.labels(name, outcome).inc(count)
        for problem in result.problems:
            self.metrics.errors.labels(name, problem.code.id).inc()
        if result.ok:
            self.metrics.last_success.labels(name).set(time.time())
        changed = {k: v for k, v in result.counts.items() if v and k != "unchanged"}
        if changed or result.problems:
            events.record(
                self.cluster,
                name,
                "Synced" if result.ok else "SyncFailed",
                _event_message(result),
                warning=not result.ok,
            )
        log.info(
            "pass",
            extra={
                "fields": {
                    "sync": name,
                    **({"cluster": self.spec.cluster_name, "replica": self.replica} if self.replica else {}),
                    "commit": result.status.commit,
                    "state": result.status.state.value,
                    "counts": {k: v for k, v in result.counts.items() if v},
                    "errors": [p.code.id for p in result.problems],
                    "statusRecorded": result.status_error is None,
                    "seconds": round(seconds, 3),
                    "incremental": result.incremental,
                    **({"fullBecause": result.full_because} if result.full_because else {}),
                }
            },
        )


def release_memory() -> None:
    """After a pass: drop the built-in schemas it loaded, collect what it left in cycles, and
    hand the heap's free pages back to the system (glibc keeps them otherwise, so the daemon
    would stay as large as its largest pass)."""
    schema.release()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator decides
        _libc().malloc_trim(0)


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


_UNREACHABLE = frozenset({errors.API_SERVER_UNREACHABLE, errors.API_SERVER_ERROR})
_MAX_SHOWN_ERRORS = 100


def _event_message(result: pipeline.SyncResult) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items() if v)
    codes = ", ".join(sorted({p.code.id for p in result.problems}))
    commit = (result.status.commit or "working tree")[:12]
    return f"{commit}: {counts or 'no objects'}" + (f"; errors {codes}" if codes else "")


class Daemon:
    """Every worker, the lease, and the lifecycle around them."""

    def __init__(
        self,
        workers: list[tuple[pipeline.SyncSpec, Callable[[], Cluster]]],
        sync_options: pipeline.SyncOptions,
        options: DaemonOptions,
        elector: LeaderElector | None = None,
        metrics: Metrics | None = None,
        *,
        shards: Callable[[Daemon], ShardCoordinator] | None = None,
    ):
        self.metrics = metrics or Metrics()
        self.elector = elector
        # replicas sharing a fleet: each worker writes only while its shard's Lease is held here
        self.shards = shards(self) if shards is not None else None
        self.sync_options, self.options = sync_options, options
        self.stop_event = threading.Event()
        self.started = False
        self.workers: list[Worker] = []
        for spec, connect in workers:
            self.add(spec, connect)

    def is_leader(self) -> bool:
        leading = self.elector.is_leader() if self.elector else True
        self.metrics.leader.set(1 if leading else 0)
        return leading and not self.stop_event.is_set()

    def ready(self) -> bool:
        """Taking work, and every sync making progress (see Worker.progressing)."""
        return not self.stop_event.is_set() and all(w.progressing() for w in list(self.workers))

    def shard_acquired(self, shard: int) -> None:
        """A shard's Lease was just claimed: its clusters get a full pass now, whatever this
        replica applied before (another replica may have synced them since)."""
        for worker in list(self.workers):
            if worker.shard == shard:
                worker.synced_commit = None
                worker.wake()

    def shard_released(self, shard: int, wait: float = 5.0) -> None:
        """Before a shard's Lease is given up: its writes are refused already (the coordinator
        stopped holding it); let a pass under way end, for at most ``wait`` seconds."""
        deadline = time.monotonic() + wait
        for worker in list(self.workers):
            if worker.shard == shard:
                while worker.busy.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)

    def start(self) -> None:
        if self.elector:
            self.elector.start()
        if self.shards:
            self.shards.start()
        self.started = True
        for worker in self.workers:
            worker.thread.start()

    def add(self, spec: pipeline.SyncSpec, connect: Callable[[], Cluster]) -> Worker:
        worker = Worker(
            spec,
            connect,
            sync_options=self.sync_options,
            options=self.options,
            metrics=self.metrics,
            leader=self.is_leader,
            stop=self.stop_event,
        )
        coordinator = self.shards
        if coordinator is not None and spec.cluster_name:
            shard = worker.shard = shards_mod.shard_of(spec.cluster_name, coordinator.shards)
            worker.replica = coordinator.identity
            worker.leader = lambda: self.is_leader() and coordinator.holds(shard)
            gate = coordinator.gate(shard, spec.cluster_name)

            def gated() -> Cluster:
                cluster = connect()
                cluster.write_gate = gate
                return cluster

            worker.connect = gated
        self.workers.append(worker)
        if self.started:
            worker.thread.start()
        return worker

    def remove(self, name: str) -> list[Worker]:
        """Stop syncing ``name`` (its objects stay as they are; nothing is pruned); the workers
        told to stop, whose threads end once a pass under way finishes."""
        removed = [w for w in self.workers if w.spec.name == name]
        for worker in removed:
            worker.halt.set()
            worker.wake()
            self.workers.remove(worker)
        return removed

    def views(self, objects: bool = True) -> list[SyncView]:
        """Every sync as the dashboard shows it (see ``Worker.view``)."""
        return [w.view(objects) for w in list(self.workers)]

    def wake_all(self) -> None:
        for worker in self.workers:
            worker.wake()

    def stop(self, timeout: float = 120.0) -> None:
        """Stop taking work, let a pass under way finish, stop repairs, release the lease."""
        self.stop_event.set()
        self.wake_all()
        deadline = time.monotonic() + timeout
        for worker in list(self.workers):
            if worker.thread.is_alive():
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        if self.elector:
            self.elector.stop(release=True)
        if self.shards:
            self.shards.stop()
