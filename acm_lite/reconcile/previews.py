"""The dashboard's preview of a sync's newest commit while it is not applied (its pass was blocked
by vet errors or policy violations): what it would create, change, prune and leave on the sync's
cluster, and the problems it introduces or fixes against the last applied commit — ``acm-lite
preview``'s report for one cluster, summarised.

The report itself comes from a callable the daemon's command line hands in (it is built on
``fleet.preview``, a layer above this one). It runs on a thread of its own, never on a request's:
one preview at a time, once per (sync, applied commit, newest commit), the last few kept. A
preview not done after ``timeout`` seconds shows as failed (``ACM4003``). Everything kept is
capped (objects and problems listed, diff lines and bytes, text lengths), because the repository
the report describes may be hostile; the pages escape every value.
"""

from __future__ import annotations

import html
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from acm_lite import errors

if TYPE_CHECKING:
    from acm_lite.reconcile.dashboard import SyncView

log = logging.getLogger("acm_lite.dashboard")

MAX_LISTED = 50  # objects, or problems, listed per section of one preview
MAX_DIFF_LINES = 40  # lines of one change's diff
MAX_LINE = 200  # characters of one diff line
MAX_DIFF_BYTES = 32 * 1024  # characters of every diff of one preview together
MAX_TEXT = 1000  # characters of one listed object, problem or note
MAX_NOTES = 10

COMPUTING, READY, FAILED, OFF = "computing", "ready", "failed", "off"

# the sections in the order a page shows them: (name, title)
SECTIONS = (
    ("introduced", "Problems it introduces"),
    ("fixed", "Problems it fixes"),
    ("create", "Would create"),
    ("change", "Would change"),
    ("prune", "Would prune"),
)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: object, limit: int = MAX_TEXT) -> str:
    return _cut("" if value is None else str(value), limit)


def problem_text(problem: object) -> str:
    """A problem of the report (``Problem.to_dict``'s shape) as one line."""
    if not isinstance(problem, Mapping):
        return _text(problem)
    code, name, message = (str(problem.get(k, "") or "") for k in ("code", "name", "message"))
    where = problem.get("object")
    if isinstance(where, Mapping):
        ident = "/".join(str(where.get(k, "")) for k in ("kind", "namespace", "name") if where.get(k))
        message = f"{message} ({ident})" if ident else message
    return _text(" ".join(p for p in (code, f"{name}:" if name else "", message) if p))


def short_diff(diff: object, budget: int) -> str:
    """At most ``MAX_DIFF_LINES`` lines of ``MAX_LINE`` characters, and ``budget`` characters."""
    lines = str(diff or "").splitlines()
    kept = [_cut(line, MAX_LINE) for line in lines[:MAX_DIFF_LINES]]
    if len(lines) > MAX_DIFF_LINES:
        kept.append(f"... {len(lines) - MAX_DIFF_LINES} more line(s)")
    text = "\n".join(kept)
    return text if len(text) <= budget else text[:budget] + "\n... (cut: the preview's diffs are too long)"


@dataclass(frozen=True)
class Item:
    text: str
    diff: str | None = None  # a change's short diff (None: not known or not shown)


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    count: int  # in the report
    items: tuple[Item, ...]  # the first ``MAX_LISTED``

    @property
    def more(self) -> int:
        return self.count - len(self.items)


@dataclass(frozen=True)
class PreviewSummary:
    """One cluster's preview report, capped."""

    base: str
    head: str
    mode: str = "live"  # or "offline"
    reachable: bool = True
    leave: int = 0
    changes_known: bool = True
    blocking: bool = False  # the head introduces a blocking problem
    sections: tuple[Section, ...] = ()
    notes: tuple[str, ...] = ()
    error: str = ""  # the coded problem that stopped the preview, as one line

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> PreviewSummary:
        """From ``ClusterPreview.to_dict()``'s shape; anything of the wrong type counts as empty."""

        def listed(name: str) -> list[Any]:
            value = report.get(name)
            return value if isinstance(value, list) else []

        budget = MAX_DIFF_BYTES
        sections = []
        for name, title in SECTIONS:
            found = listed(name)
            items: list[Item] = []
            for entry in found[:MAX_LISTED]:
                if name in ("introduced", "fixed"):
                    items.append(Item(problem_text(entry)))
                elif name == "change" and isinstance(entry, Mapping):
                    diff = short_diff(entry.get("diff"), budget) if entry.get("diff") and budget > 0 else None
                    budget -= len(diff or "")
                    items.append(Item(_text(entry.get("object")), diff))
                else:
                    items.append(Item(_text(entry)))
            sections.append(Section(name, title, len(found), tuple(items)))
        error = report.get("error")
        leave = report.get("leave")
        return cls(
            base=_text(report.get("base") or "", 80),
            head=_text(report.get("head") or "", 80),
            mode=_text(report.get("mode") or "live", 20),
            reachable=report.get("reachable") is True,
            leave=leave if isinstance(leave, int) and not isinstance(leave, bool) else 0,
            changes_known=report.get("changesKnown") is not False,
            blocking=report.get("blocking") is True,
            sections=tuple(sections),
            notes=tuple(_text(n) for n in listed("notes")[:MAX_NOTES]),
            error=problem_text(error) if error else "",
        )

    def counts_text(self) -> str:
        count = {s.name: s.count for s in self.sections}
        change = f"{count.get('change', 0)}" + ("" if self.changes_known else " (changes unknown)")
        return (
            f"create {count.get('create', 0)} · change {change} · prune {count.get('prune', 0)} · "
            f"leave {self.leave} · new problems {count.get('introduced', 0)} · "
            f"fixed {count.get('fixed', 0)}"
        )


@dataclass(frozen=True)
class PreviewState:
    status: str  # COMPUTING, READY, FAILED, or OFF (the dashboard computes no previews)
    summary: PreviewSummary | None = None
    message: str = ""  # FAILED: the coded problem, as one line

    def model(self, key: str, base: str, head: str) -> dict[str, Any]:
        """What a page draws, as text only: the server's HTML and the page script's update both
        draw from it."""
        summary = self.summary
        status = {
            COMPUTING: "Preview being computed…",
            OFF: "",
            FAILED: f"Preview failed: {self.message}",
            READY: "",
        }[self.status]
        if summary is not None and summary.error:
            status = f"Preview failed: {summary.error}"
        sections: list[dict[str, Any]] = []
        notes: list[str] = []
        counts = ""
        if summary is not None and not summary.error:
            counts = summary.counts_text()
            if summary.mode != "live":
                notes.append(f"planned {summary.mode}: the API server did not answer")
            notes += summary.notes
            sections = [
                {
                    "name": s.name,
                    "title": f"{s.title} ({s.count})",
                    "items": [{"text": i.text, "diff": i.diff} for i in s.items],
                    "more": s.more,
                }
                for s in summary.sections
                if s.count
            ]
        return {
            "key": key,
            "state": FAILED if summary is not None and summary.error else self.status,
            "pending": f"Commit {head[:12]} is not applied (last applied: {base[:12]}).",
            "command": f"acm-lite preview --base {base} --head {head}",
            "status": status,
            "counts": counts,
            "sections": sections,
            "notes": notes,
        }


def pending(outcome: Mapping[str, Any]) -> tuple[str, str] | None:
    """(applied commit, newest commit) when a sync's newest commit is not the applied one."""
    commit, synced = outcome.get("commit"), outcome.get("syncedCommit")
    if isinstance(commit, str) and isinstance(synced, str) and commit and synced and commit != synced:
        return synced, commit
    return None


def html_of(model: Mapping[str, Any] | None, key: str) -> str:
    """A preview's block for a cluster page; an empty holder when there is none (the page script
    fills it when one appears)."""
    esc = _escape
    if model is None:
        return f'<div class="preview" data-preview="{esc(key)}"></div>'
    parts = [
        f'<p class="pending">{esc(model["pending"])} The whole fleet\'s preview: '
        f"<code>{esc(model['command'])}</code></p>"
    ]
    if model["status"]:
        parts.append(f'<p class="preview-status">{esc(model["status"])}</p>')
    if model["counts"]:
        parts.append(f'<p class="preview-counts">{esc(model["counts"])}</p>')
    for section in model["sections"]:
        items = []
        for item in section["items"]:
            if item["diff"]:
                items.append(
                    f"<li><details><summary>{esc(item['text'])}</summary>"
                    f"<pre>{esc(item['diff'])}</pre></details></li>"
                )
            else:
                items.append(f"<li>{esc(item['text'])}</li>")
        if section["more"]:
            items.append(f'<li class="more">and {esc(section["more"])} more</li>')
        parts.append(
            f'<h3>{esc(section["title"])}</h3><ul data-section="{esc(section["name"])}">{"".join(items)}</ul>'
        )
    if model["notes"]:
        parts.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in model["notes"]) + "</ul>")
    return (
        f'<div class="preview" data-preview="{esc(key)}" data-preview-state="{esc(model["state"])}">'
        f"{''.join(parts)}</div>"
    )


def _escape(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# -- computing them --------------------------------------------------------------------------------


@dataclass
class _Entry:
    status: str
    started: float
    summary: PreviewSummary | None = None
    message: str = ""


Compute = Callable[["SyncView", str, str], "PreviewSummary | None"]


class Previews:
    """Previews computed in the background, one at a time, the last ``max_entries`` kept."""

    def __init__(
        self,
        compute: Compute,
        *,
        max_entries: int = 16,
        timeout: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``compute(view, base, head)``: the summary of ``head``'s preview against ``base``
        (None: the sync has none to give)."""
        self.compute, self.max_entries, self.timeout, self.clock = compute, max_entries, timeout, clock
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._queue: queue.Queue[tuple[tuple[str, str, str], SyncView]] = queue.Queue(max_entries)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def state(self, view: SyncView) -> tuple[str, str, PreviewState] | None:
        """(base, head, state) of ``view``'s newest commit when it is not applied; starts its
        preview the first time it is asked for."""
        found = pending(view.outcome)
        if found is None:
            return None
        base, head = found
        key = (view.key, base, head)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                try:
                    self._queue.put_nowait((key, replace(view, entries=())))  # its objects are not needed
                except queue.Full:  # many at once: asked again at the next poll
                    return base, head, PreviewState(COMPUTING)
                entry = self._entries[key] = _Entry(COMPUTING, now)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
                self._start()
            self._entries.move_to_end(key)
            if entry.status == COMPUTING and now - entry.started > self.timeout:
                entry.status = FAILED
                entry.message = (
                    f"{errors.PREVIEW_FAILED.id} {errors.PREVIEW_FAILED.name}: not done after "
                    f"{self.timeout:g} seconds"
                )
            return base, head, PreviewState(entry.status, entry.summary, entry.message)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, daemon=True, name="dashboard-preview")
            self._thread.start()

    def _run(self) -> None:
        while True:
            key, view = self._queue.get()
            status, summary, message = READY, None, ""
            try:
                summary = self.compute(view, key[1], key[2])
            except Exception as exc:  # a bug: its message may quote anything, so the log alone has it
                log.warning(
                    "dashboard preview failed",
                    exc_info=True,
                    extra={"fields": {"sync": key[0], "commit": key[2]}},
                )
                status = FAILED
                message = (
                    f"{errors.PREVIEW_FAILED.id} {errors.PREVIEW_FAILED.name}: unexpected "
                    f"{type(exc).__name__} (the daemon's log has it)"
                )
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.status, entry.summary, entry.message = status, summary, message


def models(views: Sequence[SyncView], previews: Previews | None) -> dict[str, dict[str, Any] | None]:
    """Each view's preview model (None: its newest commit is applied)."""
    found: dict[str, dict[str, Any] | None] = {}
    for view in views:
        if previews is None:
            target = pending(view.outcome)
            found[view.key] = PreviewState(OFF).model(view.key, *target) if target else None
            continue
        state = previews.state(view)
        found[view.key] = state[2].model(view.key, state[0], state[1]) if state else None
    return found
