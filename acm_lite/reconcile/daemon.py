"""The daemon: a reconcile loop per sync (poll the source every period, run the pipeline when the
commit changed, after drift, or hourly; back off exponentially on errors), drift repair between
passes, leader election so only one replica writes, graceful shutdown."""

from __future__ import annotations

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
from acm_lite.reconcile import events, pipeline
from acm_lite.reconcile.leader import LeaderElector
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.remediator import Remediator
from acm_lite.source import local
from acm_lite.status import store

log = logging.getLogger("acm_lite.daemon")


@dataclass(frozen=True)
class DaemonOptions:
    period: float = 15.0
    resync: float = 3600.0
    backoff_max: float = 300.0
    fight_threshold: int = 5
    drift_repair: bool = True


class Worker:
    """One sync's loop."""

    def __init__(self, spec: pipeline.SyncSpec, connect: Callable[[], Cluster], *,
                 sync_options: pipeline.SyncOptions, options: DaemonOptions, metrics: Metrics,
                 leader: Callable[[], bool], stop: threading.Event):
        self.spec, self.connect, self.sync_options = spec, connect, sync_options
        self.options, self.metrics, self.leader, self.stop = options, metrics, leader, stop
        self.synced_commit: str | None = None
        self.last_full = 0.0
        self.failures = 0
        self.passes = 0
        self.busy = threading.Event()
        self.trigger = threading.Event()  # a webhook, a saved file, or a new sync object
        self.halt = threading.Event()  # this worker alone (its sync object was deleted)
        self.dirty = True  # a local directory changed since the last pass
        self.remediator: Remediator | None = None
        self._observer: Any = None
        self._cluster: Cluster | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"sync-{spec.name}")

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = self.connect()
        return self._cluster

    def delay(self) -> float:
        if self.failures:
            return float(min(self.options.backoff_max, self.options.period * 2 ** (self.failures - 1)))
        return self.options.period

    def _loop(self) -> None:
        self._watch_local_directory()
        while not (self.stop.is_set() or self.halt.is_set()):
            if self.leader():
                try:
                    self.tick()
                except AcmError as e:  # the cluster or the source went away: back off
                    self.failures += 1
                    self.metrics.errors.labels(self.spec.name, e.code.id).inc()
                    log.warning("pass failed", extra={"fields": {"sync": self.spec.name,
                                                                 "error": e.render()}})
            self.trigger.wait(self.delay())
            self.trigger.clear()
        if self._observer is not None:
            self._observer.stop()
        if self.remediator is not None:
            self.remediator.stop()

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
        snapshot = pipeline.fetch_source(self.spec, self.sync_options, lambda _m: None)
        self.metrics.git_fetch.labels(self.spec.name).observe(time.monotonic() - started)
        changed = self.dirty if snapshot.commit is None else snapshot.commit != self.synced_commit
        due = (changed or self.failures or self.passes == 0
               or time.monotonic() - self.last_full > self.options.resync)
        if not due:
            self.metrics.skipped.labels(self.spec.name).inc()
            return
        self.busy.set()  # no drift repair against an old declared state while a pass runs
        self.dirty = False
        try:
            result = pipeline.run(self.spec, self.cluster, self.sync_options, snapshot=snapshot)
        finally:
            self.busy.clear()
        self.passes += 1
        self.record(result, time.monotonic() - started)
        if result.ok:
            self.synced_commit, self.failures = result.status.commit, 0
            self.last_full = time.monotonic()
            if self.options.drift_repair and result.changeset is not None:
                self._remediator().update(result.changeset)
        else:
            self.failures += 1

    def _remediator(self) -> Remediator:
        if self.remediator is None:
            self.remediator = Remediator(
                self.cluster, Discovery(self.cluster), self.spec.name, metrics=self.metrics,
                allowed=lambda: self.leader() and not self.busy.is_set(),
                fight_threshold=self.options.fight_threshold, on_fight=self._fight)
        return self.remediator

    def _fight(self, change: Any) -> None:
        """A fight goes into the sync's status until the next pass rewrites it."""
        problem = Problem(errors.FIGHT, f"{change.subject} keeps being changed back by another "
                          "controller; repair paused until the next pass",
                          obj=change.id.describe(), hint="find the other controller writing it")
        try:
            store.add_error(self.cluster, self.spec.name, problem.to_dict())
        except AcmError as e:
            log.warning("fight not recorded in status", extra={"fields": {"error": str(e)}})

    def record(self, result: pipeline.SyncResult, seconds: float) -> None:
        name = self.spec.name
        self.metrics.sync_duration.labels(name).observe(seconds)
        for outcome, count in result.counts.items():
            if count:
                self.metrics.objects.labels(name, outcome).inc(count)
        for problem in result.problems:
            self.metrics.errors.labels(name, problem.code.id).inc()
        if result.ok:
            self.metrics.last_success.labels(name).set(time.time())
        changed = {k: v for k, v in result.counts.items() if v and k != "unchanged"}
        if changed or result.problems:
            events.record(self.cluster, name, "Synced" if result.ok else "SyncFailed",
                          _event_message(result), warning=not result.ok)
        log.info("pass", extra={"fields": {"sync": name, "commit": result.status.commit,
                                           "state": result.status.state.value,
                                           "counts": {k: v for k, v in result.counts.items() if v},
                                           "errors": [p.code.id for p in result.problems],
                                           "seconds": round(seconds, 3)}})


def _event_message(result: pipeline.SyncResult) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items() if v)
    codes = ", ".join(sorted({p.code.id for p in result.problems}))
    commit = (result.status.commit or "working tree")[:12]
    return f"{commit}: {counts or 'no objects'}" + (f"; errors {codes}" if codes else "")


class Daemon:
    """Every worker, the lease, and the lifecycle around them."""

    def __init__(self, workers: list[tuple[pipeline.SyncSpec, Callable[[], Cluster]]],
                 sync_options: pipeline.SyncOptions, options: DaemonOptions,
                 elector: LeaderElector | None = None, metrics: Metrics | None = None):
        self.metrics = metrics or Metrics()
        self.elector = elector
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
        return not self.stop_event.is_set()

    def start(self) -> None:
        if self.elector:
            self.elector.start()
        self.started = True
        for worker in self.workers:
            worker.thread.start()

    def add(self, spec: pipeline.SyncSpec, connect: Callable[[], Cluster]) -> Worker:
        worker = Worker(spec, connect, sync_options=self.sync_options, options=self.options,
                        metrics=self.metrics, leader=self.is_leader, stop=self.stop_event)
        self.workers.append(worker)
        if self.started:
            worker.thread.start()
        return worker

    def remove(self, name: str) -> None:
        """Stop syncing ``name`` (its objects stay as they are; nothing is pruned)."""
        for worker in [w for w in self.workers if w.spec.name == name]:
            worker.halt.set()
            worker.wake()
            self.workers.remove(worker)

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
