"""The drift watches' place (``Remediator.epoch`` and ``synced``) against scripted watch streams:
a stream that ends or breaks resumes from its last resourceVersion in the same epoch; a 410 Gone
(as an answer or an ERROR event), or any other lost place, starts over from the whole current
state in a new epoch and repairs what changed meanwhile; a server refusing WatchList is listed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acm_lite import metadata
from acm_lite.cluster.client import ApiError, Call
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.errors import API_SERVER_ERROR, AcmError
from acm_lite.objects import GroupKind, Manifest
from acm_lite.plan import ownership, planner
from acm_lite.plan.changeset import ChangeSet
from acm_lite.reconcile import remediator as remediator_mod
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.remediator import INITIAL_EVENTS_END, Remediator
from tests.unit.apply.test_applier import NOT_FOUND, FakeCluster

OPTS = planner.PlanOptions("root", "c0ffee")
COLLECTION = "/api/v1/namespaces/a/configmaps"
GONE = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version: 5 (9)"}

Step = list[Any] | BaseException  # one watch request: its events (callables run in between), or its error


def configmap(name: str, value: str) -> Manifest:
    return Manifest(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "a"},
            "data": {"k": value},
        },
        f"{name}.yaml",
    )


def live(name: str, value: str, version: str) -> dict[str, Any]:
    body = ownership.stamp(configmap(name, "v"), "root", "c0ffee")
    return {**body, "metadata": {**body["metadata"], "resourceVersion": version}, "data": {"k": value}}


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def bookmark(version: str, *, end: bool = False) -> dict[str, Any]:
    annotations = {INITIAL_EVENTS_END: "true"} if end else {}
    return event(
        "BOOKMARK",
        {"kind": "ConfigMap", "metadata": {"resourceVersion": version, "annotations": annotations}},
    )


class StreamCluster(FakeCluster):
    """Answers each watch request with the next step of ``script`` (then stops the watcher),
    GETs from ``objects`` (else 404), labelled LISTs from ``pages``; records every watch query
    with the epoch and ``synced`` at the moment it was sent."""

    def __init__(self, script: list[Step]) -> None:
        super().__init__()
        self.script = script
        self.queries: list[dict[str, Any]] = []
        self.states: list[tuple[int, bool]] = []
        self.pages: list[dict[str, Any]] = []
        self.remediator: Remediator | None = None

    def watch(
        self,
        path: str,
        query: dict[str, Any],
        stop: threading.Event,
        opened: Callable[[], None] | None = None,
    ) -> Iterator[Any]:
        assert path == COLLECTION and self.remediator is not None
        self.queries.append(dict(query))
        self.states.append((self.remediator.epoch, self.remediator.synced))
        if not self.script:
            stop.set()
            return
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if opened is not None:
            opened()
        for item in step:
            if callable(item):
                item()
            else:
                yield item

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "PATCH" or (method == "POST" and path.endswith("/events")):
            self.sent.append(Call(method, path, kwargs.get("query"), kwargs.get("body")))
            return None
        if method == "GET" and path == COLLECTION:
            self.sent.append(Call(method, path, kwargs.get("query")))
            return self.pages.pop(0)
        if method == "GET" and path.startswith(COLLECTION + "/"):
            self.sent.append(Call(method, path))
            if path not in self.objects:
                raise NOT_FOUND
            return self.objects[path][0]
        return super().request(method, path, **kwargs)

    def repaired(self) -> list[tuple[str, Any]]:
        return [(c.path.rpartition("/")[2], c.body["data"]) for c in self.sent if c.method == "PATCH"]


def desired(*names: str) -> ChangeSet:
    declared = [configmap(n, "v") for n in names]
    current = {m.id: live(m.id.name, "v", "1") for m in declared}
    return planner.plan(declared, current, set(current), OPTS)


def run(cluster: StreamCluster, changes: ChangeSet, monkeypatch: pytest.MonkeyPatch) -> Remediator:
    """The watch of ConfigMaps, run until the script is spent."""
    as_cluster: Any = cluster
    remediator = Remediator(
        as_cluster, Discovery(as_cluster), "root", metrics=Metrics(), allowed=lambda: True
    )
    remediator.backoff = (0.001, 0.002, 120.0)
    cluster.remediator = remediator
    assert not remediator.synced and remediator.epoch == 0
    resource = Resource(GroupKind("", "ConfigMap"), "v1", "configmaps", True)
    monkeypatch.setattr(remediator, "_resources", lambda _addresses: [resource])
    remediator.scope = "a"
    remediator.update(changes)
    remediator._watched[resource].join(10)
    assert not remediator._watched[resource].is_alive()
    return remediator


def relists(remediator: Remediator) -> float:
    value = remediator.metrics.registry.get_sample_value(
        "acm_lite_watch_relists_total", {"sync": "root", "resource": "configmaps.v1"}
    )
    return value or 0.0


def test_a_watch_ended_or_cut_resumes_from_its_last_version_in_the_same_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, bool]] = []
    cluster = StreamCluster([])

    def probe() -> None:
        assert cluster.remediator is not None
        seen.append((cluster.remediator.epoch, cluster.remediator.synced))

    cluster.script = [
        [event("ADDED", live("a", "v", "7")), probe, bookmark("10", end=True), probe, bookmark("12")],
        [event("MODIFIED", live("a", "v", "14"))],  # the server ended the first: resumed at 12
        AcmError(API_SERVER_ERROR, "watch broke: connection reset"),  # cut: resumed at 14
        AcmError(API_SERVER_ERROR, "cannot watch: connection refused"),
        [probe, event("MODIFIED", live("a", "edited", "15"))],
    ]
    remediator = run(cluster, desired("a"), monkeypatch)

    assert "resourceVersion" not in cluster.queries[0]
    assert cluster.queries[0]["sendInitialEvents"] == "true"
    assert cluster.queries[0]["resourceVersionMatch"] == "NotOlderThan"
    assert [q.get("resourceVersion") for q in cluster.queries[1:]] == ["12", "14", "14", "14", "15"]
    assert not any("sendInitialEvents" in q for q in cluster.queries[1:])
    # synced once the initial state ended; not while cut; again once the resumed watch opened
    assert seen == [(1, False), (1, True), (1, True)]
    assert cluster.states == [(1, False), (1, True), (1, True), (1, False), (1, False), (1, True)]
    assert remediator.epoch == 1 and relists(remediator) == 0
    assert cluster.repaired() == [("a", {"k": "v"})]  # the edit made while cut, put back


@pytest.mark.parametrize(
    "gone",
    [
        [event("ERROR", GONE)],  # what kube-apiserver sends on a watch from a compacted revision
        ApiError(410, "Gone", "too old resource version"),  # as the answer itself
        [event("ERROR", {"code": 504, "reason": "Timeout", "message": "Too large resource version: 99"})],
        [event("ERROR", {"code": 403, "reason": "Forbidden", "message": "no"})],  # any other error
    ],
)
def test_a_lost_place_starts_over_in_a_new_epoch_and_repairs_what_changed_meanwhile(
    gone: Step, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = StreamCluster(
        [
            [
                event("ADDED", live("a", "v", "7")),
                event("ADDED", live("b", "v", "8")),
                bookmark("10", end=True),
            ],
            AcmError(API_SERVER_ERROR, "watch broke"),
            gone,
            AcmError(API_SERVER_ERROR, "cannot watch: connection refused"),  # the start over is retried
            # a edited and b deleted while nobody watched; c never reached the watch either
            [
                event("ADDED", live("a", "edited", "20")),
                bookmark("21", end=True),
                event("MODIFIED", live("a", "v", "22")),
            ],
        ]
    )
    cluster.objects[f"{COLLECTION}/c"] = [live("c", "v", "5")]
    remediator = run(cluster, desired("a", "b", "c"), monkeypatch)

    assert [q.get("resourceVersion") for q in cluster.queries] == [None, "10", "10", None, None, "22"]
    assert [bool(q.get("sendInitialEvents")) for q in cluster.queries] == [
        True,
        False,
        False,
        True,
        True,
        False,
    ]
    assert cluster.states == [(1, False), (1, True), (1, False), (2, False), (2, False), (2, True)]
    assert remediator.epoch == 2 and relists(remediator) == 1
    assert sorted(cluster.repaired()) == [("a", {"k": "v"}), ("b", {"k": "v"})]
    assert [c.path for c in cluster.sent if c.method == "GET" and c.path.startswith(COLLECTION + "/")] == [
        f"{COLLECTION}/b",
        f"{COLLECTION}/c",
    ]


@pytest.mark.parametrize(
    "transient",
    [ApiError(500, "InternalError", "etcd leader changed"), ApiError(429, "TooManyRequests", "slow down")],
)
def test_a_transient_refusal_resumes_from_the_same_place(
    transient: ApiError, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = StreamCluster(
        [
            [bookmark("10", end=True)],
            transient,
            [event("ERROR", {"code": transient.status, "reason": transient.reason, "message": "again"})],
            [event("MODIFIED", live("a", "v", "11"))],
        ]
    )
    remediator = run(cluster, desired("a"), monkeypatch)
    assert [q.get("resourceVersion") for q in cluster.queries] == [None, "10", "10", "10", "11"]
    assert remediator.epoch == 1 and relists(remediator) == 0


def test_a_server_refusing_watchlist_is_listed_page_by_page_then_watched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = StreamCluster(
        [
            ApiError(
                422,
                "Invalid",
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
            ),
            [event("MODIFIED", live("a", "v", "31"))],
            [event("ERROR", GONE)],
        ]
    )
    cluster.pages = [
        {"items": [live("a", "v", "7")], "metadata": {"continue": "next", "resourceVersion": "30"}},
        {"items": [], "metadata": {"resourceVersion": "30"}},
        {"items": [live("a", "edited", "40")], "metadata": {"resourceVersion": "41"}},
    ]
    remediator = run(cluster, desired("a", "b"), monkeypatch)

    lists = [c.query for c in cluster.sent if c.method == "GET" and c.path == COLLECTION]
    assert [(q or {}).get("continue") for q in lists] == [None, "next", None]
    assert all((q or {}).get("labelSelector") == f"{metadata.SYNC_LABEL}=root" for q in lists)
    assert [q.get("resourceVersion") for q in cluster.queries] == [None, "30", "31", "41"]
    assert [bool(q.get("sendInitialEvents")) for q in cluster.queries] == [True, False, False, False]
    assert remediator.epoch == 2 and relists(remediator) == 1
    # b was missing from the first list too, but only a start over after a lost place repairs it
    assert sorted(cluster.repaired()) == [("a", {"k": "v"}), ("b", {"k": "v"})]


def test_a_server_ignoring_watchlist_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that ends without the initial-events-end bookmark: the server ignored
    sendInitialEvents (an older one sends the state without the bookmark)."""
    cluster = StreamCluster([[event("ADDED", live("a", "v", "7"))]])
    cluster.pages = [{"items": [live("a", "v", "7")], "metadata": {"resourceVersion": "30"}}]
    remediator = run(cluster, desired("a"), monkeypatch)
    assert [q.get("resourceVersion") for q in cluster.queries] == [None, "30"]
    assert remediator.epoch == 1


@pytest.mark.parametrize(
    "hostile",
    [
        ["not an event"],
        [event("ADDED", {"metadata": "not a mapping"}), bookmark("10", end=True)],
        [{"type": "BOOKMARK", "object": {"metadata": {"annotations": {INITIAL_EVENTS_END: "true"}}}}],
        [event("ERROR", {"code": "not a number"})],
        [bookmark("9" * 200, end=True)],  # no resourceVersion a watch could be sent from
    ],
)
def test_hostile_events_neither_crash_nor_count_twice(
    hostile: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = StreamCluster([hostile, [bookmark("50", end=True)], []])
    remediator = run(cluster, desired("a"), monkeypatch)
    assert cluster.queries[-1].get("resourceVersion") == "50"
    assert remediator.epoch == 1 and relists(remediator) == 0  # one start over, however many tries
    assert cluster.states[-1] == (1, True)


def test_a_bug_in_the_loop_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = StreamCluster([[bookmark("10", end=True)], RuntimeError("a bug"), [bookmark("20", end=True)]])
    remediator = run(cluster, desired("a"), monkeypatch)
    assert [q.get("resourceVersion") for q in cluster.queries] == [None, "10", None, "20"]
    assert remediator.epoch == 2 and relists(remediator) == 1


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets_after_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    backoff = remediator_mod._Backoff(0.8, 30.0, 120.0, clock=lambda: now[0])
    delays = [backoff.delay() for _ in range(8)]
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    assert all(base <= d < 2 * base for d, base in zip(delays, bases, strict=True)), delays
    now[0] += 121
    assert 0.8 <= backoff.delay() < 1.6


def test_unwatched_is_not_synced() -> None:
    as_cluster: Any = StreamCluster([])
    remediator = Remediator(
        as_cluster, Discovery(as_cluster), "root", metrics=Metrics(), allowed=lambda: True
    )
    assert remediator.synced is False and remediator.epoch == 0
