"""The health record of one sync in the cluster: its ResourceStatus parts in acm-lite's namespace
(the layout is ``status.resources``). Cluster I/O: one labelled LIST to read, one server-side
apply per part that changed, one DELETE per part no longer used."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from acm_lite import api, errors
from acm_lite.apply import writes
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError, Problem
from acm_lite.status import resources
from acm_lite.status.resources import Entry

STARTING_WAIT = 10.0  # seconds a LIST waits out a just-installed CRD's storage starting
Stored = dict[str, list[Entry]]  # part index → entries, as last written or read


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{resources.PLURAL}"
    return f"{base}/{name}" if name else base


def read(cluster: Client, sync: str, namespace: str | None = None) -> Stored:
    """The parts stored for ``sync`` (none when the CRD is not installed or nothing was written).
    Parts under names this layout does not make are left out."""
    namespace = namespace or api.system_namespace()
    deadline = time.monotonic() + STARTING_WAIT
    while True:
        try:
            listed = cluster.request(
                "GET", _path(namespace), query={"labelSelector": resources.selector(sync)}
            )
            break
        except ApiError as e:
            # a just-installed CRD's storage answers 429 for a moment while it starts
            if e.status != 429 or time.monotonic() > deadline:
                return _failed_read(e, sync, namespace)
        time.sleep(0.2)
    items = listed.get("items") if isinstance(listed, dict) else None
    out: Stored = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            name, entries = resources.parse(item)
            index = resources.index_of(sync, name)
            if index is not None:
                out[index] = entries
    return out


def _failed_read(e: ApiError, sync: str, namespace: str) -> Stored:
    if e.status == 404:  # the CRD is not installed: nothing was recorded
        return {}
    raise e.to_acm(f"ResourceStatuses of sync {sync!r} in {namespace}") from e


def entries(stored: Stored) -> list[Entry]:
    """Every entry of the stored parts, one per object, sorted."""
    unique = {e.id: e for part in stored.values() for e in part}
    return [unique[k] for k in sorted(unique)]


def write(
    cluster: Client,
    sync: str,
    table: Iterable[Entry],
    stored: Stored,
    namespace: str | None = None,
    *,
    only: Mapping[str, list[Entry]] | None = None,
) -> tuple[Stored, Problem | None]:
    """Store ``table``: a write per part whose entries differ from ``stored``, a DELETE per
    stored part beyond the new count. Returns what is stored afterwards (the parts that could not
    be written keep their old entries, so the next write tries them again) and a warning when
    something could not be written. ``only``: the parts that may have changed, already split
    (the part count unchanged): the others are left as stored, and ``table`` is not read."""
    namespace = namespace or api.system_namespace()
    wanted = resources.split(table) if only is None else dict(only)
    changed = {index: part for index, part in wanted.items() if stored.get(index) != part}
    # a part stored as wanted keeps the table's own entries, not the equal ones read back
    now: Stored = {**stored, **{i: p for i, p in wanted.items() if i in stored and i not in changed}}
    failures: list[str] = []
    calls, order = [], []
    for index, part in changed.items():
        body = resources.body(sync, namespace, index, part)
        calls.append(writes.server_side_apply(_path(namespace, body["metadata"]["name"]), body))
        order.append(index)
    try:
        answers = cluster.request_many(calls, width=4) if calls else []
    except AcmError as e:  # the API server went away (or the pass ran out of time) part-way
        answers = [e] * len(calls)
    for index, outcome in zip(order, answers, strict=True):
        if outcome is None:
            now[index] = wanted[index]
        else:
            failures.append(f"{resources.part_name(sync, int(index))}: {_reason(outcome)}")
    for index in [i for i in stored if i not in wanted] if only is None else []:
        try:
            writes.send(cluster, writes.delete(_path(namespace, resources.part_name(sync, int(index)))))
            del now[index]
        except ApiError as e:
            if e.status == 404:
                del now[index]
            else:
                failures.append(f"{resources.part_name(sync, int(index))}: {_reason(e)}")
        except AcmError as e:
            failures.append(f"{resources.part_name(sync, int(index))}: {_reason(e)}")
    if not failures:
        return now, None
    shown = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
    return now, Problem(
        errors.RESOURCE_STATUS_NOT_RECORDED,
        f"the health of sync {sync!r}'s objects was not recorded in {namespace}: {shown}",
        hint="allow acm-lite to write resourcestatuses (the Helm chart's Role does); "
        "the next change writes it again",
    )


def _reason(error: Any) -> str:
    cause = error.to_acm() if isinstance(error, ApiError) else error
    if isinstance(cause, AcmError):
        return f"{cause.code.id}: {cause.message[:200]}"
    return f"{type(cause).__name__}: {str(cause)[:200]}"
