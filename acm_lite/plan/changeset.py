"""The typed result vocabulary: what will happen (Action) and what did happen (Outcome)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    UNMANAGE = "unmanage"  # strip acm-lite's marks, leave the object (managed: disabled, detach)
    SKIP = "skip"


class Outcome(Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    UNMANAGED = "unmanaged"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Change:
    """One object's planned action and why; ``level`` orders applies (prunes run in reverse)."""

    action: Action
    id: ObjectId
    reason: str
    level: int = 0
    desired: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    live: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    manifest: Manifest | None = field(default=None, compare=False, repr=False)
    depends_on: tuple[ObjectId, ...] = ()
    # the sync's ignore rules for this object (reference tokens): never applied, never drift
    ignored: tuple[tuple[str, ...], ...] = field(default=(), compare=False, repr=False)

    @property
    def subject(self) -> str:
        return str(self.id)


@dataclass
class ChangeSet:
    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counted = Counter(c.action.value for c in self.changes)
        return {a.value: counted.get(a.value, 0) for a in Action}

    def of(self, *actions: Action) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @property
    def has_changes(self) -> bool:
        return any(c.action not in (Action.UNCHANGED, Action.SKIP) for c in self.changes)


@dataclass(frozen=True)
class Result:
    """What applying one change did."""

    change: Change
    outcome: Outcome
    message: str = ""
    problem: Problem | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "object": self.change.subject,
            "action": self.change.action.value,
            "outcome": self.outcome.value,
            "reason": self.change.reason,
        }
        if self.message:
            out["message"] = self.message
        if self.problem:
            out["error"] = self.problem.to_dict()
        return out
