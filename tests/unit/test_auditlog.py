"""The user behind a change, read from an audit log file in the API server's JSON-lines format:
the newest completed write naming the blamed field manager wins, acm-lite's own writes, failed
requests, reads and other objects are passed over, impersonation is named, and a huge or hostile
file is read bounded without raising."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acm_lite.objects import ObjectId
from acm_lite.reconcile import auditlog
from acm_lite.reconcile.auditlog import AuditLog

CM = ObjectId("", "ConfigMap", "shop", "a")


def event(
    verb: str,
    user: str,
    *,
    manager: str = "",
    name: str = "a",
    agent: str = "kubectl/v1.37.2 (linux/amd64)",
    code: int = 200,
    stage: str = "ResponseComplete",
    as_user: str = "",
    at: str = "2026-01-02T03:04:05.000000Z",
) -> str:
    uri = f"/api/v1/namespaces/shop/configmaps/{name}" + (f"?fieldManager={manager}" if manager else "")
    body: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "x",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["127.0.0.1"],
        "userAgent": agent,
        "objectRef": {"resource": "configmaps", "namespace": "shop", "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code},
        "stageTimestamp": at,
    }
    if as_user:
        body["impersonatedUser"] = {"username": as_user}
    return json.dumps(body)


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_the_newest_write_by_the_blamed_manager_names_the_user(tmp_path: Path) -> None:
    log = write(
        tmp_path / "audit.log",
        event("patch", "bob", manager="oncall"),
        event("patch", "carol", manager="oncall"),
        event("update", "dave", manager="kubectl-edit"),
        event("patch", "acm", manager="acm-lite", agent="acm-lite"),
        event("get", "erin"),
        event("patch", "mallory", manager="oncall", code=403),
        event("patch", "oscar", manager="oncall", stage="ResponseStarted"),
        event("patch", "zed", manager="oncall", name="other"),
    )
    found = AuditLog(log, wait=0)
    assert found.user("configmaps", CM, "oncall", False) == "carol"
    assert found.user("configmaps", CM, "kubectl-edit", False) == "dave"
    assert found.user("configmaps", CM, "nobody-named", False) == "dave"  # no match: the newest write
    assert found.user("secrets", CM, "oncall", False) is None


def test_an_impersonated_user_is_named_with_who_impersonated(tmp_path: Path) -> None:
    log = write(tmp_path / "audit.log", event("patch", "admin", manager="m", as_user="alice"))
    assert AuditLog(log, wait=0).user("configmaps", CM, "m", False) == "alice (impersonated by admin)"


def test_a_deletion_is_the_newest_delete(tmp_path: Path) -> None:
    log = write(tmp_path / "audit.log", event("delete", "bob"), event("patch", "carol", manager="m"))
    assert AuditLog(log, wait=0).user("configmaps", CM, "", True) == "bob"


def test_a_missing_file_or_no_match_gives_no_user_within_the_wait(tmp_path: Path) -> None:
    assert AuditLog(tmp_path / "absent.log", wait=0).user("configmaps", CM, "m", False) is None
    log = write(tmp_path / "audit.log", event("patch", "bob", name="b"))
    assert AuditLog(log, wait=0.2).user("configmaps", CM, "m", False) is None


def test_a_huge_hostile_file_is_read_bounded(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with path.open("w") as f:
        f.write(event("patch", "old", manager="m") + "\n")  # beyond the bytes read: not seen
        f.write("x" * (auditlog.MAX_LINE + 10) + "\n")
        f.write("{not json\n[1,2]\n" + "[" * 60_000 + "\n")
        f.write(json.dumps({"kind": "Event", "objectRef": "nonsense", "user": 5}) + "\n")
        f.write(("y" * 1000 + "\n") * 2000)
        f.write(event("patch", "newest", manager="m") + "\n")
    found = AuditLog(path, max_bytes=1_000_000, wait=0)
    assert found.user("configmaps", CM, "m", False) == "newest"
    small = AuditLog(path, max_bytes=4096, wait=0)
    assert small.user("configmaps", CM, "m", False) == "newest"
    assert auditlog.writes(b"\xff\xfe garbage\n", "configmaps", CM) == []
