"""The user behind a change, from the API server's audit log (``--audit-log-path``, JSON lines,
``audit.k8s.io/v1`` Events): a source of users for drift forensics (``forensics.Users``).

managedFields says which field manager changed an object, not who. The audit log does: the
newest completed write (``create``, ``update``, ``patch``, ``delete``) on the object, by a client
other than acm-lite, preferring one whose request named the blamed field manager
(``?fieldManager=`` in ``requestURI``: kubectl sends it). An impersonated request (``kubectl
--as``) is the impersonated user's, with who impersonated in parentheses.

Bounded and fail-safe: only the last ``MAX_BYTES`` of the file are read, lines longer than
``MAX_LINE`` are skipped, as is anything that is not an audit Event; a file that cannot be read
gives no user (the repair itself never waits on it for more than ``WAIT`` seconds: the API server
writes the event as the response completes, so it may land just after the watch saw the change).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acm_lite.objects import ObjectId

log = logging.getLogger("acm_lite.auditlog")
MAX_BYTES = 8 * 1024 * 1024
MAX_LINE = 64 * 1024
WAIT = 1.0
WRITES = frozenset({"create", "update", "patch", "delete"})
OWN_AGENT = "acm-lite"  # acm-lite's requests (its User-Agent): never blamed


@dataclass(frozen=True)
class Write:
    """One completed write on an object, as the audit log tells it."""

    user: str
    manager: str  # the fieldManager the request named, or ""
    verb: str
    time: str


def _tail(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - limit))
        data = f.read(limit)
    if size > limit:  # the first line is cut: drop it
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return data


def _events(data: bytes, needle: bytes = b"") -> Iterator[Mapping[str, Any]]:
    """The audit Events among the lines that contain ``needle`` (most lines are about other
    objects: they are not parsed)."""
    for line in data.split(b"\n"):
        if not line or len(line) > MAX_LINE or needle not in line:
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict) and event.get("kind") == "Event":
            yield event


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _user(event: Mapping[str, Any]) -> str:
    user = event.get("user")
    name = _str(user.get("username")) if isinstance(user, dict) else ""
    impersonated = event.get("impersonatedUser")
    as_name = _str(impersonated.get("username")) if isinstance(impersonated, dict) else ""
    if as_name:
        return f"{as_name} (impersonated by {name})" if name else as_name
    return name


def writes(data: bytes, resource: str, oid: ObjectId) -> list[Write]:
    """The completed writes on ``oid`` (served as ``resource``) by clients other than acm-lite,
    oldest first."""
    out: list[Write] = []
    for event in _events(data, json.dumps(oid.name).encode()):
        ref = event.get("objectRef")
        if not isinstance(ref, dict) or event.get("stage") != "ResponseComplete":
            continue
        if (
            _str(ref.get("resource")) != resource
            or _str(ref.get("apiGroup")) != oid.group
            or _str(ref.get("namespace")) != oid.namespace
            or _str(ref.get("name")) != oid.name
            or ref.get("subresource")
            or _str(event.get("verb")) not in WRITES
            or _str(event.get("userAgent")).startswith(OWN_AGENT)
        ):
            continue
        status = event.get("responseStatus")
        code = status.get("code") if isinstance(status, dict) else None
        if isinstance(code, int) and code >= 300:
            continue
        query = urllib.parse.urlsplit(_str(event.get("requestURI"))).query
        manager = urllib.parse.parse_qs(query).get("fieldManager", [""])[0]
        out.append(Write(_user(event), manager, _str(event.get("verb")), _str(event.get("stageTimestamp"))))
    return out


def pick(found: list[Write], manager: str, deleted: bool, *, fallback: bool = True) -> str | None:
    """The user of the newest write by ``manager`` (the newest delete for a deletion); with
    ``fallback``, else of the newest write."""
    if deleted:
        found = [w for w in found if w.verb == "delete"]
    named = [w for w in found if manager and w.manager == manager] if not deleted else found
    chosen = named or (found if fallback else [])
    return (chosen[-1].user or None) if chosen else None


class AuditLog:
    """Users from one audit log file."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, wait: float = WAIT):
        self.path, self.max_bytes, self.wait = path, max_bytes, wait

    def user(self, resource: str, oid: ObjectId, manager: str, deleted: bool) -> str | None:
        deadline = time.monotonic() + self.wait
        while True:
            try:
                found = writes(_tail(self.path, self.max_bytes), resource, oid)
            except OSError as e:
                log.info("audit log not read", extra={"fields": {"path": str(self.path), "error": str(e)}})
                return None
            late = time.monotonic() >= deadline
            user = pick(found, manager, deleted, fallback=late)
            if user is not None or late:
                return user
            time.sleep(0.1)
