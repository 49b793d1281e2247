"""Results and statuses as text for people."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acm_lite.errors import Problem
from acm_lite.plan.changeset import Result

if TYPE_CHECKING:
    from acm_lite.reconcile.pipeline import SyncResult


def result_line(result: Result, dry_run: bool = False) -> str:
    oid = result.change.id
    kind = f"{oid.kind.lower()}.{oid.group}" if oid.group else oid.kind.lower()
    where = f" -n {oid.namespace}" if oid.namespace else ""
    suffix = " (dry run)" if dry_run else ""
    line = f"{kind}/{oid.name}{where} {result.outcome.value}{suffix}"
    if result.message:
        line += f": {result.message}"
    return line


def problems(found: list[Problem], notes: list[str] | None = None) -> str:
    """The numbered listing ``nomos vet`` users know; ``notes`` adds a line under a problem."""
    if not found:
        return ""
    blocking = sum(1 for p in found if p.blocking)
    lines = [f"Found issues: {blocking} error(s), {len(found) - blocking} warning(s)", ""]
    for i, problem in enumerate(found, 1):
        marker = "" if problem.blocking else " (warning)"
        lines.append(f"[{i}]{marker} {problem.render()}")
        if notes and notes[i - 1]:
            lines.append(notes[i - 1])
        lines.append("")
    return "\n".join(lines).rstrip()


def summary(result: SyncResult, dry_run: bool = False) -> str:
    """One line for the pass; one stopped before applying says so (its counts, if any, are only
    what was planned)."""
    if not result.ok and not result.results:
        return _stopped(result)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n)
    commit = result.status.commit[:12] if result.status.commit else "(working tree)"
    total = result.status.durations.get("total", 0.0)
    verb = "would sync" if dry_run else "synced"
    head = f"{result.status.state.value}: {verb} {commit} as {result.spec.name!r}"
    return f"{head} — {counts or 'nothing to do'} ({total:.1f}s)"


def _stopped(result: SyncResult) -> str:
    commit = result.status.commit[:12] if result.status.commit else "(working tree)"
    total = result.status.durations.get("total", 0.0)
    return (f"{result.status.state.value}: did not sync {commit} as {result.spec.name!r} — "
            f"stopped at {result.status.stage or 'setup'}, nothing applied ({total:.1f}s)")
