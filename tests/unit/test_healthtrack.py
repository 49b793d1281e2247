"""The health tracker between passes, on an in-memory stand-in for the API server: events are
debounced into one write per changed part per flush, only the part an object hashes to is
rewritten, transitions reach the RootSync's errors and conditions, and the reconcile timeout
counts from the apply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from acm_lite import api, health
from acm_lite.cluster.client import ApiError, Call
from acm_lite.errors import AcmError
from acm_lite.objects import ObjectId
from acm_lite.reconcile import healthstage
from acm_lite.reconcile.healthtrack import HealthTracker, _dirty_parts
from acm_lite.reconcile.metrics import Metrics
from acm_lite.status import resources, resourcestore
from acm_lite.status.model import State, SyncStatus, conditions
from acm_lite.status.resources import Entry

SYNC = "root-sync"
PARTS = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/resourcestatuses"
ROOTSYNC = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/rootsyncs/{SYNC}"


class Server:
    """Just enough of an API server: ResourceStatus parts and one RootSync, every write counted."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {
            ROOTSYNC: {"metadata": {"name": SYNC, "generation": 3}, "status": {"state": "SYNCED"}}
        }
        self.writes: list[tuple[str, str]] = []
        self.fail_writes = False

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        decode: bool = True,
    ) -> Any:
        if method == "GET" and path == PARTS:
            return {"items": [v for k, v in self.objects.items() if k.startswith(PARTS + "/")]}
        if method == "GET":
            if path not in self.objects:
                raise ApiError(404, "NotFound", path)
            return self.objects[path]
        if self.fail_writes:
            raise ApiError(503, "ServiceUnavailable", "down")
        self.writes.append((method, path))
        if method == "DELETE":
            self.objects.pop(path, None)
        elif path.endswith("/status"):
            target = self.objects[path.removesuffix("/status")]
            target["status"] = {**target.get("status", {}), **body["status"]}
        else:
            self.objects[path] = body
        return {}

    def request_many(
        self,
        calls: Sequence[Call],
        width: int,
        on_answer: Callable[[int, ApiError | AcmError | None], None] = lambda _i, _e: None,
    ) -> list[ApiError | AcmError | None]:
        out: list[ApiError | AcmError | None] = []
        for call in calls:
            try:
                self.request(call.method, call.path, body=call.body, content_type=call.content_type)
                out.append(None)
            except ApiError as e:
                out.append(e)
        return out

    def part_writes(self) -> list[str]:
        return [p for m, p in self.writes if p.startswith(PARTS)]


def oid(i: int) -> ObjectId:
    return ObjectId("apps", "Deployment", "team", f"web-{i}")


def deployment(ready: int, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team", "generation": 1},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                {"type": "Available", "status": "True" if ready else "False"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }


def stalled(message: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "generation": 1},
        "status": {
            "conditions": [{"type": "Stalled", "status": "True", "reason": "Broken", "message": message}]
        },
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(
    server: Server, count: int, *, ready: int = 0, timeout: float = 60.0
) -> tuple[HealthTracker, Clock]:
    clock = Clock()
    table = [healthstage.entry(oid(i), deployment(ready)) for i in range(count)]
    stored, problem = resourcestore.write(server, SYNC, table, {})
    assert problem is None
    server.writes.clear()
    found = HealthTracker(server, SYNC, timeout=timeout, metrics=Metrics(), clock=clock)
    found.reset(table, stored=stored, written={e.id for e in table})
    return found, clock


def test_a_burst_of_events_on_one_object_is_one_write_of_its_part() -> None:
    server = Server()
    track, _ = tracker(server, 2000)  # 8 parts
    assert resources.part_count(2000) == 8
    for i in range(100):
        track.observe(oid(7), deployment(ready=i % 2))
    track.observe(oid(7), deployment(ready=1))
    assert track.flush() >= 1
    name = resources.part_name(SYNC, resources.part_of(oid(7), 8))
    assert server.part_writes() == [f"{PARTS}/{name}"]  # only the part it hashes to, once
    server.writes.clear()
    assert track.flush() == 0  # nothing changed since
    assert server.writes == []
    assert track.counts()["Current"] == 1 and track.counts()["InProgress"] == 1999


def test_an_event_that_changes_nothing_writes_nothing_and_unknown_objects_are_ignored() -> None:
    server = Server()
    track, _ = tracker(server, 10)
    track.observe(oid(1), deployment(ready=0))  # as it was
    track.observe(ObjectId("", "ConfigMap", "other", "x"), {"kind": "ConfigMap"})  # not managed
    track.flush()
    assert server.part_writes() == []
    assert len(track.entries()) == 10


def test_failed_is_reported_at_once_and_cleared_when_it_recovers() -> None:
    server = Server()
    track, _ = tracker(server, 3, ready=1)
    track.observe(oid(0), stalled("disk full"))
    track.flush()
    errors = server.objects[ROOTSYNC]["status"]["errors"]
    assert [e["code"] for e in errors] == ["KNV2009"]
    assert "Broken" in errors[0]["message"] and "disk full" in errors[0]["message"]
    assert errors[0]["object"]["name"] == "web-0"
    status = SyncStatus.from_status(server.objects[ROOTSYNC]["status"])
    assert {c["type"]: c["status"] for c in status.conditions} == {
        "Ready": "False",
        "Reconciling": "False",
        "Stalled": "True",
    }
    assert status.health is not None and status.health["Failed"] == 1

    track.observe(oid(0), deployment(ready=1))
    track.flush()
    status = SyncStatus.from_status(server.objects[ROOTSYNC]["status"])
    assert status.errors == []
    assert {c["type"]: c["status"] for c in status.conditions}["Ready"] == "True"


def test_the_reconcile_timeout_counts_from_the_apply() -> None:
    server = Server()
    track, clock = tracker(server, 2, timeout=30.0)
    track.flush()
    assert not server.objects[ROOTSYNC]["status"].get("errors")
    clock.now += 29
    track.flush()
    assert not server.objects[ROOTSYNC]["status"].get("errors")
    track.observe(oid(1), deployment(ready=1))  # one makes it in time
    clock.now += 2
    track.flush()
    errors = server.objects[ROOTSYNC]["status"]["errors"]
    assert len(errors) == 1
    assert errors[0]["object"]["name"] == "web-0"
    assert "reconcile timeout (30s)" in errors[0]["message"] and "LessAvailable" in errors[0]["message"]
    writes = len(server.writes)
    clock.now += 10
    track.flush()  # still late, nothing new to say
    assert len(server.writes) == writes


def test_unchanged_objects_keep_their_deadline_across_a_pass() -> None:
    server = Server()
    track, clock = tracker(server, 1, timeout=30.0)
    clock.now += 20
    table = track.entries()
    track.reset(table, stored=resourcestore.read(server, SYNC), written=set())  # a pass: unchanged
    clock.now += 11
    assert [p.obj["name"] for p in track.problems() if p.obj] == ["web-0"]


def test_no_status_write_while_a_pass_runs_and_failed_writes_are_retried() -> None:
    server = Server()
    clock = Clock()
    table = [healthstage.entry(oid(i), deployment(0)) for i in range(3)]
    allowed = [False]
    track = HealthTracker(server, SYNC, timeout=60, clock=clock, may_write_status=lambda: allowed[0])
    track.reset(table, stored={}, written=set())
    server.fail_writes = True
    track.flush()
    assert server.writes == []
    server.fail_writes = False
    track.flush()  # the part that could not be written is written now; the RootSync still not
    assert len(server.part_writes()) == 1
    assert "errors" not in server.objects[ROOTSYNC]["status"]
    allowed[0] = True
    track.flush()
    assert server.objects[ROOTSYNC]["status"]["objectHealth"]["InProgress"] == 3


def test_parts_are_bounded_and_stable() -> None:
    assert [resources.part_count(n) for n in (0, 1, 256, 257, 10_000)] == [1, 1, 1, 2, 64]
    entries = [healthstage.entry(oid(i), stalled("x" * 100_000)) for i in range(600)]
    assert all(len(e.message) <= resources.MAX_MESSAGE for e in entries)
    parts = resources.split(entries)
    assert len(parts) == 4
    assert sum(len(p) for p in parts.values()) == 600
    biggest = max(len(str(resources.body(SYNC, "ns", k, v))) for k, v in parts.items())
    assert biggest < 512 * 1024
    # adding an object leaves every other part as it was
    more = resources.split([*entries, healthstage.entry(oid(9999), None)])
    assert sum(1 for k in parts if parts[k] != more[k]) == 1


def test_stored_entries_that_are_not_entries_are_dropped() -> None:
    item = {
        "metadata": {"name": f"{SYNC}.status.0"},
        "status": {
            "resourceStatuses": [
                {"kind": "ConfigMap", "name": "ok", "status": "Current", "message": "m" * 5000},
                {"kind": 3, "name": "bad", "status": "Current"},
                "not an object",
                {"kind": "ConfigMap", "status": "Current"},
            ]
        },
    }
    name, entries = resources.parse(item)
    assert name == f"{SYNC}.status.0"
    assert [e.id.name for e in entries] == ["ok"]
    assert len(entries[0].message) <= resources.MAX_MESSAGE
    assert resources.index_of(SYNC, f"{SYNC}.status.12") == "12"
    assert resources.index_of(SYNC, f"{SYNC}.status.x") is None
    assert resources.index_of(SYNC, "other.status.1") is None


def test_conditions_keep_their_time_while_unchanged() -> None:
    status = SyncStatus(
        State.SYNCED, commit="abc", health={"Current": 2, "InProgress": 1}, observed_generation=4
    )
    first = conditions(status, now_text="t1")
    assert {c["type"]: (c["status"], c["reason"]) for c in first} == {
        "Ready": ("False", "ObjectsInProgress"),
        "Reconciling": ("True", "ObjectsInProgress"),
        "Stalled": ("False", "ObjectsInProgress"),
    }
    assert all(c["observedGeneration"] == 4 for c in first)
    status.health = {"Current": 3}
    second = conditions(status, first, now_text="t2")
    times = {c["type"]: c["lastTransitionTime"] for c in second}
    assert times == {"Ready": "t2", "Reconciling": "t2", "Stalled": "t1"}
    # a warning does not hold Ready back; a blocking error does
    status.errors = [{"code": "KNV1021", "blocking": False, "message": "unknown kind"}]
    assert next(c for c in conditions(status) if c["type"] == "Ready")["status"] == "True"
    status.state, status.errors = State.ERROR, [{"code": "KNV2010", "blocking": True, "message": "bad"}]
    ready = next(c for c in conditions(status) if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SyncFailed")
    status.state = State.PENDING
    assert next(c for c in conditions(status) if c["type"] == "Reconciling")["status"] == "True"


def test_a_flush_rebuilds_only_the_dirty_parts_from_what_they_hold() -> None:
    def entry(name: str, status: health.Status = health.Status.CURRENT) -> Entry:
        return Entry.of(ObjectId("", "ConfigMap", "n", name), health.Health(status, "", ""), "c")

    entries = [entry(f"o{i}") for i in range(3 * resources.PER_PART)]
    count = resources.part_count(len(entries))
    stored = resources.split(entries, count)
    failed = entry("o5", health.Status.FAILED)
    table = {e.id: e for e in entries} | {failed.id: failed}
    index = resources.part_of(failed.id, count)
    parts = _dirty_parts(table, stored, {index}, count)
    assert parts == {str(index): resources.split(table.values(), count)[str(index)]}
    assert failed in parts[str(index)]
    # a part the pass could not store, or an object no part holds: every part is split again
    assert _dirty_parts(table, {k: v for k, v in stored.items() if k != "0"}, {index}, count) is None
    extra = entry("new")
    assert _dirty_parts(table | {extra.id: extra}, stored, {index}, count) is None
