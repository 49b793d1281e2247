"""The status of one sync, shaped for RootSync's ``.status``. No I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from acm_lite import errors as codes


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
    # the RootSync's metadata.generation this status answers (0: not known)
    observed_generation: int = 0
    # managed objects per health status (kstatus); None when the pass did not read them
    health: dict[str, int] | None = None
    # Reconciling, Stalled and Ready, as kstatus reads them (see ``conditions``)
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def to_status(self) -> dict[str, Any]:
        split = _split_errors(self.errors, self.stage)
        status: dict[str, Any] = {
            "state": self.state.value,
            "commit": self.commit,
            "lastSyncedCommit": self.synced_commit,
            "source": {**self.source, **_part(self.commit, split["source"])},
            # the commit the sync stage worked on: the source's, unless the pass stopped before it
            "sync": _part(
                self.synced_commit if split["source"] or split["rendering"] else self.commit, split["sync"]
            ),
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
            status["rendering"] = {
                **self.rendering,
                **_part(self.rendering.get("commit"), split["rendering"]),
            }
        if self.observed_generation:
            status["observedGeneration"] = self.observed_generation
        if self.health is not None:
            status["objectHealth"] = self.health
        if self.conditions:
            status["conditions"] = self.conditions
        return status

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> SyncStatus:
        status = status or {}
        return cls(
            state=State(status.get("state", "PENDING")),
            commit=status.get("commit"),
            synced_commit=status.get("lastSyncedCommit"),
            source={k: v for k, v in (status.get("source") or {}).items() if k not in _PART_KEYS},
            errors=list(status.get("errors") or []),
            counts=dict(status.get("counts") or {}),
            durations=dict(status.get("durationSeconds") or {}),
            managed=int(status.get("managedObjects") or 0),
            stage=status.get("stage", ""),
            message=str(status.get("message") or ""),
            last_update=status.get("lastUpdate", ""),
            rendering={k: v for k, v in (status.get("rendering") or {}).items() if k not in _PART_KEYS[1:]},
            observed_generation=_integer(status.get("observedGeneration")),
            health=_counts(status.get("objectHealth")),
            conditions=[c for c in status.get("conditions") or [] if isinstance(c, dict)],
        )

    def same_outcome(self, other: SyncStatus) -> bool:
        """Same state, commit, errors and managed set: rewriting it would tell nobody anything new.

        Counts and timings describe the last pass recorded, so a no-op pass (all unchanged) keeps
        the figures of the pass that last changed something, and writes nothing.
        """
        mine, theirs = self.to_status(), other.to_status()
        # a condition's time says when it last flipped; one recomputed at the same status
        # keeps the time it had (``conditions``), so a change of time alone is not news
        for volatile in ("lastUpdate", "durationSeconds", "counts"):
            mine.pop(volatile)
            theirs.pop(volatile)
        return mine == theirs


# Config Sync's shape of status.source, status.rendering and status.sync: the commit, the errors
# ({code, errorMessage}, at most MAX_PART_ERRORS) and an errorSummary. Derived from ``errors`` and
# ``stage`` when written, and dropped when read back.
MAX_PART_ERRORS = 100
_PART_KEYS = ("commit", "errors", "errorSummary")  # rendering has a commit of its own
_SOURCE_STAGES = ("setup", "source", "parse")  # Config Sync reports reading and validating as source


def _split_errors(found: list[dict[str, Any]], stage: str) -> dict[str, list[dict[str, Any]]]:
    """The errors of a pass by the part Config Sync reports them in: those of a pass that stopped
    at fetching, reading or validating under ``source``, at rendering under ``rendering``, the
    rest (policy, apply, health, warnings of a pass that went through) under ``sync``."""
    part = "source" if stage in _SOURCE_STAGES else "rendering" if stage == "render" else "sync"
    out: dict[str, list[dict[str, Any]]] = {"source": [], "rendering": [], "sync": []}
    out[part] = list(found)
    return out


def _part(commit: object, found: list[dict[str, Any]]) -> dict[str, Any]:
    shown = found[:MAX_PART_ERRORS]
    return {
        "commit": commit if isinstance(commit, str) else None,
        "errors": [_config_sync_error(e) for e in shown],
        # every key always written: a merge patch leaves a key it does not name
        "errorSummary": {
            "totalCount": len(found),
            "truncated": len(found) > len(shown),
            "errorCountAfterTruncation": len(shown),
        },
    }


def _config_sync_error(error: dict[str, Any]) -> dict[str, str]:
    """One error as Config Sync writes it: ``code`` is the number of a KNV code ("2009"), an
    acm-lite code as it is; ``errorMessage`` leads with the code, as Config Sync's does."""
    code = str(error.get("code") or "")
    message = f"{code}: {error.get('message', '')}"
    where = error.get("source")
    if where:
        message += f" (source: {where})"
    return {"code": code.removeprefix("KNV"), "errorMessage": message}


def _integer(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _counts(value: object) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): _integer(v) for k, v in value.items()}


# Condition types and reasons on a RootSync (kstatus reads Reconciling and Stalled, `kubectl wait`
# and Flux-style tools read Ready).
RECONCILING, STALLED, READY = "Reconciling", "Stalled", "Ready"
MAX_CONDITION_MESSAGE = 512
NOT_RECONCILED = codes.APPLY_ERROR.id


def conditions(
    status: SyncStatus, previous: list[dict[str, Any]] | None = None, *, now_text: str | None = None
) -> list[dict[str, Any]]:
    """The RootSync's conditions for ``status``: Ready is True only when the last commit is
    applied without errors and every managed object is Current; Reconciling is True while a
    pass runs or objects are still progressing; Stalled is True while errors stand (a failed
    pass, an object that Failed or timed out). A condition whose status is unchanged keeps the
    ``lastTransitionTime`` it had in ``previous``."""
    # what stands in the way: blocking errors, and objects that did not reconcile (KNV2009);
    # warnings (blocking False) do not hold Ready back
    errors_ = [e for e in status.errors if e.get("blocking", True) or e.get("code") == NOT_RECONCILED]
    health = status.health or {}
    waiting = sum(v for k, v in health.items() if k != "Current")
    commit = (status.commit or "working tree")[:12]
    if status.state is State.PENDING:
        reconciling = ("True", "Syncing", status.message or f"syncing {commit}")
        stalled = ("False", "Syncing", "")
        ready = ("False", "Syncing", status.message or f"syncing {commit}")
    elif errors_:
        first = errors_[0]
        text = f"{len(errors_)} error(s); first: {first.get('code', '')} {first.get('message', '')}"
        reason = "SyncFailed" if status.state is not State.SYNCED else "ObjectsNotReconciled"
        reconciling = ("False", reason, "")
        stalled = ("True", reason, text)
        ready = ("False", reason, text)
    elif waiting:
        text = f"{waiting} of {sum(health.values())} objects of {commit} are not Current yet"
        reconciling = ("True", "ObjectsInProgress", text)
        stalled = ("False", "ObjectsInProgress", "")
        ready = ("False", "ObjectsInProgress", text)
    else:
        text = f"{commit} applied; every object is Current"
        reconciling = ("False", "Synced", "")
        stalled = ("False", "Synced", "")
        ready = ("True", "Synced", text)
    before = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    stamp = now_text or now()
    out = []
    for kind, (value, reason, message) in ((READY, ready), (RECONCILING, reconciling), (STALLED, stalled)):
        old = before.get(kind) or {}
        condition: dict[str, Any] = {
            "type": kind,
            "status": value,
            "reason": reason,
            "message": message[:MAX_CONDITION_MESSAGE],
            "lastTransitionTime": (
                old["lastTransitionTime"]
                if old.get("status") == value and isinstance(old.get("lastTransitionTime"), str)
                else stamp
            ),
        }
        if status.observed_generation:
            condition["observedGeneration"] = status.observed_generation
        out.append(condition)
    return out
