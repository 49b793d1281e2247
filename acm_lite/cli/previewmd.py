"""A fleet preview as Markdown for a pull-request comment: a summary table, then one collapsed
``<details>`` section per cluster, within a size limit. Everything that comes from the repository
or a cluster (object names, messages, diffs) is escaped, so it can neither break the table nor
inject HTML. Pure: the JSON shape of ``acm-lite preview -o json`` in, text out."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

GITHUB_COMMENT_LIMIT = 65536  # characters GitHub accepts in one comment body
MARKER = "<!-- acm-lite preview -->"  # lets a CI step find and update its own comment
_URL_SAFE = ":/?=&%#.-_~+,;@!$*"  # kept in a link to the full report; the rest is percent-encoded
_ITEMS_SHOWN = 50  # objects listed per action before "and N more"
# Markdown emphasis, code, links, images, tables, HTML, entities, strikethrough, mentions and issue
# references (#12, @team), and the colon of autolinked URLs
_SPECIAL = re.compile(r"[\\`*_\[\]#!|<>&\"'~@$]|:(?=//)|(?<=www)\.")


def text(value: object) -> str:
    """``value`` as inert Markdown text on one line: every character Markdown or HTML gives a
    meaning to as a numeric character reference (safe inside table cells too)."""
    flat = " ".join(str(value).split())
    return _SPECIAL.sub(lambda m: f"&#{ord(m.group())};", flat)


def fenced(body: str, info: str = "") -> str:
    """``body`` as a fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _short(commit: str | None) -> str:
    return text((commit or "")[:12]) or "?"


def _problem_line(problem: dict[str, Any]) -> str:
    obj = problem.get("object") or {}
    where = ""
    if obj:
        ns = obj.get("namespace")
        where = f"{obj.get('kind', '')} {ns + '/' if ns else ''}{obj.get('name', '')}"
    severity = "blocking" if problem.get("blocking") else "warning"
    at = f" {text(where)}" if where else ""
    return f"- **{text(problem.get('code', ''))}** ({severity}){at}: {text(problem.get('message', ''))}"


def _objects(title: str, names: list[str]) -> list[str]:
    if not names:
        return []
    lines = [f"**{title}** ({len(names)}):", ""]
    lines += [f"- {text(n)}" for n in names[:_ITEMS_SHOWN]]
    if len(names) > _ITEMS_SHOWN:
        lines.append(f"- … and {len(names) - _ITEMS_SHOWN} more")
    return [*lines, ""]


def _changes(c: dict[str, Any]) -> str:
    """The number of changes, or ``?`` when an offline plan cannot know them."""
    return str(len(c["change"])) if c.get("changesKnown", True) else "?"


def _status(c: dict[str, Any]) -> str:
    if c.get("error"):
        return "error"
    if c.get("mode") == "offline":
        return "offline"
    return "live"


def section(c: dict[str, Any]) -> str:
    """One cluster's collapsed section."""
    icon = "⛔" if c.get("blocking") or c.get("error") else "✅"
    counts = f"{len(c['create'])} to create, {_changes(c)} to change, {len(c['prune'])} to prune"
    summary = f"{icon} {text(c['name'])}: {counts}"
    if c.get("changesKnown", True):
        summary += f", {c['leave']} left as they are"
    lines = ["<details>", f"<summary>{summary}</summary>", ""]
    lines.append(f"Base {_short(c.get('base'))} → head {_short(c.get('head'))}; plan: {_status(c)}.")
    lines.append("")
    if c.get("error"):
        lines += [f"**Not previewed:** {_problem_line(c['error'])[2:]}", ""]
    notes = [f"> {text(note)}" for note in c.get("notes", [])]
    if c.get("mode") == "offline":
        against = (
            "the inventory acm-lite recorded on the cluster"
            if c.get("against") == "inventory"
            else "the base revision's objects, taken as what is applied"
        )
        notes.append(f"> Offline: planned against {against}; changes to existing objects are unknown.")
    if notes:
        lines += [*"\n>\n".join(notes).splitlines(), ""]
    lines += _objects("Create", c["create"])
    if c["change"] and not c.get("changesKnown", True):
        lines += [f"**Kept, changes unknown** ({len(c['change'])}):", ""]
        lines += [f"- {text(change['object'])}" for change in c["change"][:_ITEMS_SHOWN]]
        if len(c["change"]) > _ITEMS_SHOWN:
            lines.append(f"- … and {len(c['change']) - _ITEMS_SHOWN} more")
        lines.append("")
    elif c["change"]:
        lines += [f"**Change** ({len(c['change'])}):", ""]
        for change in c["change"][:_ITEMS_SHOWN]:
            lines.append(f"- {text(change['object'])}")
            if change["diff"]:
                lines += ["", *("  " + line for line in fenced(change["diff"], "diff").splitlines()), ""]
        if len(c["change"]) > _ITEMS_SHOWN:
            lines.append(f"- … and {len(c['change']) - _ITEMS_SHOWN} more")
        lines.append("")
    lines += _objects("Prune", c["prune"])
    if c["introduced"]:
        lines += [f"**Problems introduced** ({len(c['introduced'])}):", ""]
        lines += [_problem_line(p) for p in c["introduced"]] + [""]
    if c["fixed"]:
        lines += [f"**Problems fixed** ({len(c['fixed'])}):", ""]
        lines += [_problem_line(p) for p in c["fixed"]] + [""]
    lines += ["</details>", ""]
    return "\n".join(lines)


def render(data: dict[str, Any], *, max_bytes: int = GITHUB_COMMENT_LIMIT, full_report: str = "") -> str:
    """The comment: title, summary table, sections (clusters with blocking problems or errors
    first, so they are the last to go). What would take the comment over ``max_bytes`` (UTF-8,
    so never over as many characters) is left out — sections first, then table rows — with a line
    pointing to ``full_report``."""
    clusters = data["clusters"]
    blocking = sum(1 for c in clusters if c.get("blocking"))
    head = [
        MARKER,
        f"### acm-lite preview: {text(data.get('base', ''))} → {text(data.get('head', ''))}",
        "",
        f"**{blocking} cluster(s) with blocking problems introduced.**"
        if blocking
        else "No blocking problems introduced.",
        "",
        "| Cluster | Reachable | Plan | Create | Change | Prune | New problems | Fixed problems |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    pointer = (
        f"[the full report](<{quote(full_report, safe=_URL_SAFE)}>)"
        if full_report.startswith(("https://", "http://"))
        else (f"the full report ({text(full_report)})" if full_report else "the full report (-o json)")
    )
    budget = max_bytes - 2 * (160 + len(pointer.encode()))  # room for the lines saying what was cut
    out = "\n".join(head) + "\n"
    size = len(out.encode())
    rows_cut = 0
    for c in clusters:
        row = (
            f"| {text(c['name'])} | {'yes' if c['reachable'] else 'no'} | {_status(c)} | {len(c['create'])} "
            f"| {_changes(c)} | {len(c['prune'])} | {len(c['introduced'])} | {len(c['fixed'])} |\n"
        )
        if rows_cut or size + len(row.encode()) > budget:
            rows_cut += 1
            continue
        out, size = out + row, size + len(row.encode())
    if rows_cut:
        out += f"\n_{rows_cut} more cluster(s) left out of the table: see {pointer}._\n"
    out += "\n"
    size = len(out.encode())
    cut = 0
    first = sorted(clusters, key=lambda c: not (c.get("blocking") or c.get("error")))
    for c in first:
        part = section(c) + "\n"
        if cut or size + len(part.encode()) > budget:
            cut += 1
            continue
        out, size = out + part, size + len(part.encode())
    if cut:
        out += f"_{cut} cluster section(s) left out to stay within {max_bytes} bytes: see {pointer}._\n"
    return out
