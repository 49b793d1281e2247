"""Drift forensics: who changed a managed object away from its declared state. Pure: no I/O.

The API server records, per field manager, which fields it last set and how (``metadata.managedFields``:
``manager``, ``operation`` Update or Apply, ``time``, and the owned fields as ``fieldsV1``). The
declared fields whose live value differs are compared with each entry's fields; the entries other
than acm-lite's own that own one of them are blamed, the most recent first (``kubectl edit`` shows
as ``kubectl-edit`` Update, ``kubectl patch`` as ``kubectl-patch``, ``kubectl apply --server-side``
as its ``--field-manager`` with Apply). An entry that owns only fields acm-lite does not declare
is not blamed.

managedFields carries no user: that comes from elsewhere (``Users``, e.g. the API server's audit
log or an admission review's ``userInfo``) and is added when one is known.

Bounded: a hostile object may carry any number of entries and fields, so at most ``MAX_ENTRIES``
entries are read, at most ``MAX_PATHS`` field paths per entry and ``MAX_CHANGED`` changed fields,
nothing deeper than ``MAX_DEPTH``; anything malformed is skipped, never raised on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from acm_lite import api
from acm_lite.objects import ObjectId
from acm_lite.plan import compare
from acm_lite.status.resources import MAX_DRIFT_FIELDS, MAX_DRIFT_MANAGERS, Blame, Drift

MAX_ENTRIES = 64
MAX_PATHS = 4096
MAX_CHANGED = 64
MAX_DEPTH = 32
Path = tuple[str, ...]
# the user who made a change, where known: (resource plural, object, the field manager blamed or
# "", deleted) → user; e.g. ``auditlog.AuditLog.user``, or an admission webhook's record of the
# ``userInfo`` of the requests it reviewed
Users = Callable[[str, ObjectId, str, bool], str | None]


def changed_fields(declared: Any, live: Any, limit: int = MAX_CHANGED) -> list[Path]:
    """The declared fields whose live value differs, as key paths; a list that differs is one
    field (its path ends at the list, as managedFields keys list items by their own keys)."""
    out: list[Path] = []
    _changed(declared, live, (), out, limit)
    return out


def _changed(declared: Any, live: Any, path: Path, out: list[Path], limit: int) -> None:
    if len(out) >= limit or compare.first_difference(declared, live) is None:
        return
    if not isinstance(declared, dict) or not isinstance(live, dict) or len(path) >= MAX_DEPTH:
        out.append(path)
        return
    for key, value in declared.items():
        if len(out) >= limit:
            return
        if compare.first_difference({key: value}, {key: live[key]} if key in live else {}) is not None:
            _changed(value, live.get(key), (*path, str(key)), out, limit)


def owned_fields(fields_v1: Any, limit: int = MAX_PATHS) -> list[Path]:
    """The leaf field paths of a ``fieldsV1`` set: ``f:name`` steps as ``name``, list items
    (``k:{...}``, ``v:...``, ``i:N``) kept as written, a map's own ``.`` marker left out."""
    out: list[Path] = []
    stack: list[tuple[Any, Path]] = [(fields_v1, ())]
    visited = 0
    while stack and len(out) < limit and visited < limit * 4:
        node, path = stack.pop()
        visited += 1
        if not isinstance(node, dict) or not node or len(path) >= MAX_DEPTH:
            if path:
                out.append(path)
            continue
        children = [(k, v) for k, v in node.items() if isinstance(k, str) and k != "."]
        if not children and path:
            out.append(path)  # only the marker: the field itself
        for key, value in children:
            stack.append((value, (*path, key[2:] if key.startswith("f:") else key)))
    return out


def _touches(owned: Path, changed: Path) -> bool:
    """One is within the other: a changed list covers the items owned in it, an owned atomic
    field covers what changed inside it."""
    if len(owned) >= len(changed):
        return owned[: len(changed)] == changed
    return changed[: len(owned)] == owned


def blame(obj: Mapping[str, Any], changed: list[Path]) -> list[Blame]:
    """The field managers other than acm-lite that own a changed field, most recent first."""
    meta = obj.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, dict) else None
    found: list[Blame] = []
    for entry in entries[:MAX_ENTRIES] if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("manager"), str):
            continue
        if entry["manager"] == api.FIELD_MANAGER or entry.get("subresource"):
            continue
        owned = owned_fields(entry.get("fieldsV1"))
        if any(_touches(o, c) for o in owned for c in changed):
            operation, time = entry.get("operation"), entry.get("time")
            found.append(
                Blame(
                    entry["manager"],
                    operation if isinstance(operation, str) else "",
                    time if isinstance(time, str) else "",
                )
            )
    found.sort(key=lambda b: b.time, reverse=True)  # RFC 3339 UTC times sort as text
    return found[:MAX_DRIFT_MANAGERS]


def attribute(
    declared: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    user: str | None = None,
    now: dt.datetime | None = None,
    deleted: bool | None = None,
) -> Drift:
    """The drift of ``live`` from ``declared``: when, who, what (``deleted``: the object was,
    by default when there is no ``live``)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    deleted = live is None if deleted is None else deleted
    if deleted or live is None or declared is None:
        return Drift(stamp, user=user or "", deleted=deleted).bounded()
    changed = changed_fields(dict(declared), dict(live))
    return Drift(
        stamp,
        tuple(blame(live, changed)),
        user or "",
        tuple(".".join(p) or "(root)" for p in changed[:MAX_DRIFT_FIELDS]),
    ).bounded()


def describe(drift: Drift) -> str:
    """``by kubectl-edit (Update) as alice``: for an Event, a log line or a table."""
    if drift.deleted:
        return f"by {drift.user}" if drift.user else "by an unknown user"
    names = ", ".join(f"{b.manager} ({b.operation})" if b.operation else b.manager for b in drift.managers)
    text = f"by {names}" if names else "by an unknown field manager"
    return f"{text} as {drift.user}" if drift.user else text
