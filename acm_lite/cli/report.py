"""Results and statuses as text for people."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acm_lite import errors

if TYPE_CHECKING:
    from acm_lite.errors import Problem
    from acm_lite.plan.changeset import Result
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
    """One line on the pass; a failed pass says where it stopped, how far it got and with which
    codes, never "synced". A status that could not be written says so on a line of its own."""
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n)
    commit = result.status.commit[:12] if result.status.commit else "(working tree)"
    total = result.status.durations.get("total", 0.0)
    waited = result.waited
    unhealthy = [p for p in result.problems if p.blocking and p.code is errors.APPLY_ERROR]
    if result.ok or (waited is not None and len(unhealthy) == sum(1 for p in result.problems if p.blocking)):
        verb = "would sync" if dry_run else "synced"
        head = f"{result.status.state.value}: {verb} {commit} as {result.spec.name!r}"
        health = ""
        if waited is not None and not unhealthy:
            health = f"; {len(waited.targets)} objects Current ({waited.seconds:.1f}s waited)"
        elif waited is not None:
            why = f"timed out after {waited.timeout:g}s" if waited.timed_out else "one Failed"
            shortfall = f"{len(unhealthy)} of {len(waited.targets)} objects not Current"
            health = f"; {shortfall} ({why}): {errors.APPLY_ERROR}"
        line = f"{head} — {counts or 'nothing to do'}{health} ({total:.1f}s)"
    else:
        line = _failed(result, commit, counts, total)
    if result.status_error is not None:
        line += f"\nstatus could not be recorded: {result.status_error.render()}"
    return line


def _failed(result: SyncResult, commit: str, counts: str, total: float) -> str:
    blocking = [p for p in result.problems if p.blocking]
    codes = ", ".join(sorted({p.code.id for p in blocking}))
    stage = result.status.stage or "setup"
    if result.planned:
        progress = f"{result.applied} of {result.planned} changes applied before the failure"
    else:
        progress = "nothing applied"
    detail = f" ({counts})" if counts and result.planned else ""
    return (
        f"{result.status.state.value}: sync of {commit} as {result.spec.name!r} failed at "
        f"stage {stage} — {progress}{detail}; {len(blocking)} error(s): {codes} "
        f"({total:.1f}s)"
    )
