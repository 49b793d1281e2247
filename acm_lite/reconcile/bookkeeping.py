"""The bookkeeping of one pass: the stage it is in, the time each stage took, the result so far,
and the status recorded for it on the cluster. I/O: the status writes (``status.store``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.errors import AcmError, Problem
from acm_lite.plan.changeset import Result
from acm_lite.reconcile import recording
from acm_lite.reconcile.model import Progress, SyncOptions, SyncResult, SyncSpec
from acm_lite.source.auth import strip_userinfo
from acm_lite.status import store
from acm_lite.status.model import State, SyncStatus, conditions

P = ParamSpec("P")
T = TypeVar("T")


class StageError(Exception):
    """Raised by a stage that ends the pass where it is (a source that cannot be fetched, a commit
    that would prune everything): the pass finishes with these problems, the stage untimed."""

    def __init__(self, problems: list[Problem], state: State | None = None):
        super().__init__(problems)
        self.problems, self.state = problems, state


class Pass:
    """One pass as it goes, stage by stage."""

    def __init__(
        self,
        spec: SyncSpec,
        cluster: Cluster,
        options: SyncOptions,
        progress: Progress,
        target: Cluster | None = None,
    ):
        self.spec, self.cluster, self.options, self.progress = spec, cluster, options, progress
        # the client for the sync's own objects (a RepoSync's: as its ServiceAccount); ``cluster``
        # keeps acm-lite's records (status, inventory, health) with the daemon's own rights
        self.target = target or cluster
        self.durations: dict[str, float] = {}
        self.started = time.monotonic()
        self.result = SyncResult(spec, SyncStatus(State.PENDING))
        self.existing: dict[str, Any] | None = None
        self.stage = "setup"
        self.writes = not (options.dry_run or options.plan_only)
        self.inventory: recording.Record | None = None  # from the plan stage on
        # apply's results as they arrive, then as the applier hands them back: a pass that stops
        # part-way keeps what it did
        self.applied: list[Result] = []
        self.rendering: dict[str, Any] = {}  # what the render stage did, for the status
        self.health: dict[str, int] | None = None  # objects per health status, once read
        self.generation = 0  # the RootSync's metadata.generation the status answers
        # objects that did not reconcile (KNV2009): on the status, never the pass's outcome
        self.health_problems: list[Problem] = []

    @property
    def managed(self) -> int | None:
        """Size of the inventory as last read or written."""
        return self.inventory.managed if self.inventory else None

    def step(self, name: str, stage: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one stage under its name (a failure is reported against it); a stage that completes
        has its time in ``durations``, one that raises (fails, or stops the pass) has none."""
        self.stage = name
        started = time.monotonic()
        out = stage(*args, **kwargs)
        self.durations[name] = round(time.monotonic() - started, 3)
        return out

    def blocked(self, problems: list[Problem]) -> bool:
        """Keep a stage's problems; whether any of them stops the pass."""
        self.result.problems += problems
        return any(p.blocking for p in problems)

    def finish(self, stage: str, problems: list[Problem], state: State | None = None) -> SyncResult:
        result = self.result
        result.problems += problems
        if not result.results and self.applied:  # apply stopped part-way: what it did counts
            result.results = list(self.applied)
        blocking = any(p.blocking for p in result.problems)
        commit = result.snapshot.commit if result.snapshot else None
        repo = result.snapshot.repo if result.snapshot else strip_userinfo(self.spec.repo)
        previous = SyncStatus.from_status((self.existing or {}).get("status"))
        self.durations["total"] = round(time.monotonic() - self.started, 3)
        result.status = SyncStatus(
            state=state or (State.ERROR if blocking else State.SYNCED),
            commit=commit,
            synced_commit=previous.synced_commit if blocking else commit,
            source={"repo": repo, "revision": self.spec.revision, "dir": self.spec.dir},
            errors=[p.to_dict() for p in result.problems] + [reported(p) for p in self.health_problems],
            counts=result.counts,
            durations=self.durations,
            stage=stage if blocking else "",
            managed=previous.managed if self.managed is None else self.managed,
            message=_stopped(stage, result) if blocking else "",
            rendering=self.rendering,
            observed_generation=self.generation or previous.observed_generation,
            health=self.health if self.health is not None else previous.health,
        )
        result.status.conditions = conditions(result.status, previous.conditions)
        result.health_problems = list(self.health_problems)
        self.cluster.deadline = self.target.deadline = None  # the outcome is recorded after the deadline
        if self.writes:
            self.record(result.status)
        return result

    def mark_applying(self) -> None:
        """Before the first write to the cluster, the status says a pass is applying this commit:
        if the pass dies half-way, the RootSync does not go on claiming the old commit is synced."""
        if not (self.writes and self.result.planned):
            return
        assert self.result.snapshot is not None
        previous = SyncStatus.from_status((self.existing or {}).get("status"))
        status = SyncStatus(
            State.PENDING,
            commit=self.result.snapshot.commit,
            synced_commit=previous.synced_commit,
            source={
                "repo": self.result.snapshot.repo,
                "revision": self.spec.revision,
                "dir": self.spec.dir,
            },
            managed=self.managed or 0,
            stage="apply",
            message=f"applying {self.result.planned} changes",
            rendering=self.rendering,
            observed_generation=self.generation or previous.observed_generation,
            health=previous.health,
        )
        status.conditions = conditions(status, previous.conditions)
        self.record(status)

    def record(self, status: SyncStatus) -> None:
        """Write the status; a failure (the API server went away) is kept on the result, and
        the next pass writes its own status as always."""
        try:
            name, namespace = self.spec.object_key
            store.write_status(self.cluster, name, status, self.existing, namespace, kind=self.spec.kind)
        except AcmError as e:
            self.result.status_error = AcmError(
                errors.STATUS_NOT_RECORDED,
                f"status of {self.spec.name!r} not recorded: {e.message}",
                hint="the next pass records its status",
            )
            return
        self.result.status_error = None
        self.existing = {**(self.existing or {}), "status": status.to_status()}


def reported(problem: Problem) -> dict[str, object]:
    """An object's health problem as the status lists it: it holds nothing back (``blocking``
    False), whatever its code means to ``sync --wait``."""
    return {**problem.to_dict(), "blocking": False}


def _stopped(stage: str, result: SyncResult) -> str:
    """One line on where a failed pass stopped and how far it got, for the RootSync's status."""
    if result.planned:
        return f"stopped at {stage}: {result.applied} of {result.planned} changes applied before the failure"
    return f"stopped at {stage}: nothing applied"
