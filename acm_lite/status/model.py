"""The status of one sync, shaped for RootSync's ``.status``. No I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class State(Enum):
    SYNCED = "SYNCED"  # the last commit is applied, no errors
    PENDING = "PENDING"  # a sync is under way, or none finished yet
    ERROR = "ERROR"  # the last attempt had errors; the cluster keeps what it had
    STALLED = "STALLED"  # cannot make progress without a change (e.g. the source is unreadable)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SyncStatus:
    state: State
    commit: str | None = None  # the commit this status is about
    synced_commit: str | None = None  # the last commit applied without errors
    source: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    managed: int = 0
    stage: str = ""  # where the errors came from (or, while PENDING, the stage under way)
    message: str = ""  # where a failed pass stopped and how far it got
    last_update: str = field(default_factory=now)
    # the render of a sync directory holding a kustomization (commit, message, kustomization,
    # tools); empty, and left out of the status, for one read as it is
    rendering: dict[str, Any] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "state": self.state.value,
            "commit": self.commit,
            "lastSyncedCommit": self.synced_commit,
            "source": self.source,
            "errors": self.errors,
            "errorCount": len(self.errors),
            "stage": self.stage,
            "counts": self.counts,
            "durationSeconds": self.durations,
            "managedObjects": self.managed,
            "message": self.message,
            "lastUpdate": self.last_update,
        }
        if self.rendering:
            status["rendering"] = self.rendering
        return status

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> SyncStatus:
        status = status or {}
        return cls(
            state=State(status.get("state", "PENDING")),
            commit=status.get("commit"),
            synced_commit=status.get("lastSyncedCommit"),
            source=dict(status.get("source") or {}),
            errors=list(status.get("errors") or []),
            counts=dict(status.get("counts") or {}),
            durations=dict(status.get("durationSeconds") or {}),
            managed=int(status.get("managedObjects") or 0),
            stage=status.get("stage", ""),
            message=str(status.get("message") or ""),
            last_update=status.get("lastUpdate", ""),
            rendering=dict(status.get("rendering") or {}),
        )

    def same_outcome(self, other: SyncStatus) -> bool:
        """Same state, commit, errors and managed set: rewriting it would tell nobody anything new.

        Counts and timings describe the last pass recorded, so a no-op pass (all unchanged) keeps
        the figures of the pass that last changed something, and writes nothing.
        """
        mine, theirs = self.to_status(), other.to_status()
        for volatile in ("lastUpdate", "durationSeconds", "counts"):
            mine.pop(volatile)
            theirs.pop(volatile)
        return mine == theirs
