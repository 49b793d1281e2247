"""How the health of one sync's objects is laid out across ResourceStatus objects. Pure: no I/O.

Like Config Sync's ResourceGroup ``status.resourceStatuses``, each managed object has an entry:
its identity, kstatus status, reason, a short message and the commit that last applied it. The
record is its own kind beside the inventory rather than a field of the inventory's parts: the
inventory is the record pruning relies on and is written as a new generation of parts (create,
then delete what it supersedes), while health changes all the time and is only informative; a
health write must never touch what pruning reads.

etcd refuses a request over 1.5 MiB, so the entries are split into parts. An object's part is
fixed by a hash of its identity (``part_of``) and the number of parts (a power of two, one per
``PER_PART`` objects on average), so one object changing rewrites one part, and a part keeps its
name (``<sync>.status.<index>``) from write to write. Strings copied from objects are cut short
(``MAX_REASON``, ``MAX_MESSAGE``), which bounds a part at a few hundred KiB.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acm_lite import api, health
from acm_lite.metadata import MANAGED_BY, MANAGED_BY_LABEL, RESOURCE_STATUS_SYNC_LABEL
from acm_lite.objects import ObjectId

KIND = "ResourceStatus"
PLURAL = "resourcestatuses"
PER_PART = 256  # objects per part on average
MAX_PARTS = 4096  # a million objects; more parts than this are not made
MAX_REASON = 64
MAX_MESSAGE = 256
MAX_COMMIT = 64
MAX_DRIFT_FIELDS = 8  # changed field paths kept per drift
MAX_DRIFT_MANAGERS = 4  # field managers blamed per drift
MAX_NAME = 128  # a field manager, user or field path


@dataclass(frozen=True)
class Blame:
    """A field manager that changed declared fields: from its ``metadata.managedFields`` entry."""

    manager: str
    operation: str = ""  # Update or Apply
    time: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"manager": self.manager}
        if self.operation:
            out["operation"] = self.operation
        if self.time:
            out["time"] = self.time
        return out

    @classmethod
    def from_dict(cls, item: object) -> Blame | None:
        if not isinstance(item, dict) or not isinstance(item.get("manager"), str):
            return None
        operation, time = (item.get(k, "") for k in ("operation", "time"))
        return cls(
            _cut(item["manager"], MAX_NAME),
            _cut(operation, 16) if isinstance(operation, str) else "",
            _cut(time, 32) if isinstance(time, str) else "",
        )


@dataclass(frozen=True)
class Drift:
    """Who last changed an object away from its declared state, as seen when it was repaired:
    ``time`` of the repair, the field managers that own the changed fields (most recent first),
    the user where one is known, and the changed field paths (``deleted``: the object was)."""

    time: str
    managers: tuple[Blame, ...] = ()
    user: str = ""
    fields: tuple[str, ...] = ()
    deleted: bool = False

    @property
    def manager(self) -> str:
        return self.managers[0].manager if self.managers else ""

    @property
    def operation(self) -> str:
        return "Delete" if self.deleted else (self.managers[0].operation if self.managers else "")

    def bounded(self) -> Drift:
        return Drift(
            _cut(self.time, 32),
            tuple(
                Blame(_cut(b.manager, MAX_NAME), _cut(b.operation, 16), _cut(b.time, 32))
                for b in self.managers
            )[:MAX_DRIFT_MANAGERS],
            _cut(self.user, MAX_NAME),
            tuple(_cut(f, MAX_NAME) for f in self.fields[:MAX_DRIFT_FIELDS]),
            self.deleted,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "manager": self.manager or "unknown"}
        if self.operation:
            out["operation"] = self.operation
        if self.user:
            out["user"] = self.user
        if self.fields:
            out["fields"] = list(self.fields)
        if len(self.managers) > 1:
            out["managers"] = [b.to_dict() for b in self.managers]
        elif self.managers and self.managers[0].time:
            out["managerTime"] = self.managers[0].time
        return out

    @classmethod
    def from_dict(cls, item: object) -> Drift | None:
        """A drift as read back (anyone may have written it): None unless it has a time."""
        if not isinstance(item, dict) or not isinstance(item.get("time"), str):
            return None
        listed = item.get("managers")
        managers: list[Blame | None] = (
            [Blame.from_dict(m) for m in listed[:MAX_DRIFT_MANAGERS]] if isinstance(listed, list) else []
        )
        if not managers and isinstance(item.get("manager"), str) and item["manager"] != "unknown":
            managers = [Blame.from_dict({**item, "time": item.get("managerTime", "")})]
        operation = item.get("operation")
        fields = item.get("fields")
        user = item.get("user", "")
        return cls(
            item["time"],
            tuple(m for m in managers if m is not None),
            user if isinstance(user, str) else "",
            tuple(f for f in fields[:MAX_DRIFT_FIELDS] if isinstance(f, str))
            if isinstance(fields, list)
            else (),
            operation == "Delete",
        ).bounded()


@dataclass(frozen=True, slots=True)
class Entry:
    """One object's health as recorded. One is kept per managed object between passes: slotted,
    its strings interned (most objects share their status, reason, message and commit)."""

    id: ObjectId
    status: str
    reason: str = ""
    message: str = ""
    commit: str = ""
    drift: Drift | None = field(default=None)

    @classmethod
    def of(cls, oid: ObjectId, found: health.Health, commit: str | None) -> Entry:
        return cls(
            oid,
            sys.intern(str(found.status)),
            sys.intern(_cut(found.reason, MAX_REASON)),
            sys.intern(_cut(found.message, MAX_MESSAGE)),
            sys.intern(_cut(commit or "", MAX_COMMIT)),
        )

    @property
    def healthy(self) -> bool:
        return self.status == health.Status.CURRENT

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.id.group,
            "kind": self.id.kind,
            "namespace": self.id.namespace,
            "name": self.id.name,
            "status": self.status,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        if self.commit:
            out["sourceCommit"] = self.commit
        if self.drift is not None:
            out["lastDrift"] = self.drift.to_dict()
        return out

    @classmethod
    def from_dict(cls, item: object) -> Entry | None:
        """An entry as read back; None for one that is not an object's entry (anyone may have
        written the part), every string cut to its bound."""
        if not isinstance(item, dict):
            return None
        fields = {k: item.get(k, "") for k in ("group", "kind", "namespace", "name", "status")}
        if not all(isinstance(v, str) for v in fields.values()) or not (fields["kind"] and fields["name"]):
            return None
        reason, message, commit = (item.get(k, "") for k in ("reason", "message", "sourceCommit"))
        oid = ObjectId(*(_cut(fields[k], 253) for k in ("group", "kind", "namespace", "name")))
        return cls(
            oid,
            _cut(fields["status"], 16),
            _cut(reason, MAX_REASON) if isinstance(reason, str) else "",
            _cut(message, MAX_MESSAGE) if isinstance(message, str) else "",
            _cut(commit, MAX_COMMIT) if isinstance(commit, str) else "",
            Drift.from_dict(item.get("lastDrift")),
        )


def _cut(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else " " for c in text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def part_count(objects: int) -> int:
    """How many parts ``objects`` entries take: a power of two, so growing the record moves an
    object only when the count doubles."""
    count = 1
    while count * PER_PART < objects and count < MAX_PARTS:
        count *= 2
    return count


def part_of(oid: ObjectId, count: int) -> int:
    """The part an object's entry lives in (stable across runs and processes)."""
    key = f"{oid.group}/{oid.kind}/{oid.namespace}/{oid.name}".encode()
    return zlib.crc32(key) % count


def part_name(sync: str, index: int) -> str:
    return f"{sync}.status.{index}"


def split(entries: Iterable[Entry], count: int | None = None) -> dict[str, list[Entry]]:
    """The entries by part name, each part sorted by identity; every part of the count is
    present, so an emptied part is rewritten empty rather than left as it was."""
    listed = list(entries)
    count = count or part_count(len(listed))
    parts: list[list[Entry]] = [[] for _ in range(count)]
    for entry in listed:
        parts[part_of(entry.id, count)].append(entry)
    return {str(i): sorted(p, key=lambda e: e.id) for i, p in enumerate(parts)}


def body(sync: str, namespace: str, index: str, entries: list[Entry]) -> dict[str, Any]:
    """The ResourceStatus holding one part."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": part_name(sync, int(index)),
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, RESOURCE_STATUS_SYNC_LABEL: sync},
        },
        "status": {
            "count": len(entries),
            "unhealthy": sum(1 for e in entries if not e.healthy),
            "resourceStatuses": [e.to_dict() for e in entries],
        },
    }


def selector(sync: str) -> str:
    return f"{RESOURCE_STATUS_SYNC_LABEL}={sync}"


def parse(item: Mapping[str, Any]) -> tuple[str, list[Entry]]:
    """A listed part: its name and the entries that read as entries (the rest are dropped)."""
    meta = item.get("metadata")
    name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
    status = item.get("status")
    listed = status.get("resourceStatuses") if isinstance(status, dict) else None
    found = [Entry.from_dict(i) for i in listed] if isinstance(listed, list) else []
    return name, [e for e in found if e is not None]


def index_of(sync: str, name: str) -> str | None:
    """The part index a stored name stands for, or None for a name this layout never makes."""
    prefix = f"{sync}.status."
    rest = name[len(prefix) :] if name.startswith(prefix) else ""
    return rest if rest.isascii() and rest.isdigit() and len(rest) <= 6 else None


def counts(entries: Iterable[Entry]) -> dict[str, int]:
    """Objects per health status (every status present, zero when none)."""
    out = {str(s): 0 for s in health.Status}
    for entry in entries:
        out[entry.status] = out.get(entry.status, 0) + 1
    return out
