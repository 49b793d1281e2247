"""apply.waiting against a recording fake: rounds and their backoff (on a fake clock), lists for
groups and GETs for the rest, Failed ending a wait, pruned objects waited for until gone, what an
API server answers that cannot be read, and the coded problems a wait hands back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from acm_lite import errors
from acm_lite.apply import waiting
from acm_lite.apply.waiting import Target
from acm_lite.cluster.client import ApiError, Call
from acm_lite.cluster.discovery import Resource
from acm_lite.errors import AcmError
from acm_lite.health import Status
from acm_lite.objects import GroupKind, Manifest
from acm_lite.plan.changeset import Action, Change

CONFIGMAPS = Resource(GroupKind("", "ConfigMap"), "v1", "configmaps", True)
SELECTOR = "acm-lite.io/sync=root"


class Reads:
    """A ``Client`` that answers GETs from ``bodies`` (path → successive answers; the last one
    repeats; an exception is raised) and records each request."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.sent: list[tuple[str, dict[str, Any] | None]] = []

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None, **_: Any) -> Any:
        assert method == "GET"
        self.sent.append((path, query))
        answers = self.bodies.get(path)
        if answers is None:
            raise ApiError(404, "NotFound", "not found")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def request_many(
        self, calls: Sequence[Call], width: int, on_answer: Callable[..., None] = lambda *_: None
    ) -> list[Any]:
        raise AssertionError("waiting sends no batch")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def cm(name: str, *, pending: bool = False, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "a"}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if pending:  # a ConfigMap some controller says is not ready yet: the generic rules apply first
        body["status"] = {"conditions": [{"type": "Reconciling", "status": "True", "reason": "Filling"}]}
    return body


def path(name: str) -> str:
    return f"/api/v1/namespaces/a/configmaps/{name}"


def target(name: str, *, gone: bool = False) -> Target:
    body = cm(name)
    manifest = Manifest(body, f"{name}.yaml")
    action = Action.PRUNE if gone else Action.CREATE
    change = Change(action, manifest.id, "", manifest=None if gone else manifest, live=body if gone else None)
    return Target(change, CONFIGMAPS, gone)


def run(
    reads: Reads, targets: list[Target], timeout: float = 10.0, **options: Any
) -> tuple[waiting.Waited, Clock]:
    clock = Clock()
    waited = waiting.wait(reads, targets, timeout, clock=clock, sleep=clock.sleep, **options)
    return waited, clock


def test_objects_current_at_once_cost_one_round_and_no_sleep() -> None:
    reads = Reads()
    reads.bodies[path("x")] = [cm("x")]
    waited, clock = run(reads, [target("x")])
    assert waited.health[target("x").id].status is Status.CURRENT
    assert reads.sent == [(path("x"), None)] and clock.slept == []
    assert waited.problems() == [] and not waited.timed_out


def test_rounds_back_off_until_current() -> None:
    reads = Reads()
    reads.bodies[path("x")] = [cm("x", pending=True)] * 5 + [cm("x")]
    waited, clock = run(reads, [target("x")])
    assert clock.slept == [0.2, 0.4, 0.8, 1.6, 2.0]
    assert waited.health[target("x").id].status is Status.CURRENT


def test_a_timeout_names_each_object_not_current_with_its_health() -> None:
    reads = Reads()
    reads.bodies[path("x")] = [cm("x", pending=True)]
    reads.bodies[path("y")] = [cm("y")]
    waited, clock = run(reads, [target("x"), target("y")], timeout=3)
    assert waited.timed_out and clock.now == pytest.approx(3)
    assert [(p.code, p.message, p.source) for p in waited.problems()] == [
        (
            errors.APPLY_ERROR,
            "failed to wait for ConfigMap a/x: reconcile timeout after 3s: InProgress (Filling)",
            "x.yaml",
        )
    ]
    assert waited.counts() == {
        "Current": 1,
        "InProgress": 1,
        "Failed": 0,
        "Terminating": 0,
        "NotFound": 0,
        "Unknown": 0,
    }


def test_failed_ends_the_wait_or_only_that_object() -> None:
    stalled = cm("x")
    stalled["status"] = {
        "conditions": [{"type": "Stalled", "status": "True", "reason": "Bad", "message": "no"}]
    }
    reads = Reads()
    reads.bodies[path("x")] = [stalled]
    reads.bodies[path("y")] = [cm("y", pending=True)]
    waited, clock = run(reads, [target("x"), target("y")])
    assert clock.slept == [] and not waited.timed_out
    assert [p.message for p in waited.problems()] == [
        "failed to wait for ConfigMap a/x: reconcile failed: Failed (Bad): no",
        "failed to wait for ConfigMap a/y: not settled when the wait stopped: InProgress (Filling)",
    ]
    # without fail_fast the others are still waited for; the Failed one is not read again
    reads = Reads()
    reads.bodies[path("x")] = [stalled]
    reads.bodies[path("y")] = [cm("y", pending=True), cm("y")]
    waited, _ = run(reads, [target("x"), target("y")], fail_fast=False)
    assert [p for p, _ in reads.sent] == [path("x"), path("y"), path("y")]
    assert waited.health[target("y").id].status is Status.CURRENT


def test_a_pruned_object_is_waited_for_until_not_found() -> None:
    reads = Reads()
    reads.bodies[path("old")] = [
        cm("old", terminating=True),
        cm("old", terminating=True),
        ApiError(404, "", ""),
    ]
    waited, clock = run(reads, [target("old", gone=True)])
    assert waited.health[target("old").id].status is Status.NOT_FOUND
    assert len(clock.slept) == 2 and waited.problems() == []
    reads = Reads()
    reads.bodies[path("old")] = [cm("old", terminating=True)]
    waited, _ = run(reads, [target("old", gone=True)], timeout=1)
    assert [(p.message, p.obj) for p in waited.problems()] == [
        (
            "failed to wait for ConfigMap a/old to be deleted: reconcile timeout after 1s: "
            "Terminating: Resource scheduled for deletion",
            {"group": "", "kind": "ConfigMap", "namespace": "a", "name": "old"},
        )
    ]


def test_a_group_is_read_by_one_list_and_what_it_misses_by_gets() -> None:
    reads = Reads()
    collection = "/api/v1/namespaces/a/configmaps"
    # list items carry no kind: the waiter supplies it, so kstatus's ConfigMap rule applies
    items = [{"metadata": {"name": n, "namespace": "a"}} for n in ("x", "y", "stranger")]
    reads.bodies[collection] = [{"items": [*items, "junk", {"metadata": None}], "metadata": {}}]
    reads.bodies[path("z")] = [cm("z")]
    waited, _ = run(reads, [target("x"), target("y"), target("z")], selector=SELECTOR)
    assert reads.sent == [
        (collection, {"limit": waiting.PAGE, "continue": None, "labelSelector": SELECTOR}),
        (path("z"), None),
    ]
    assert {str(k): h.message for k, h in waited.health.items()} == {
        "ConfigMap a/x": "Resource is always ready",
        "ConfigMap a/y": "Resource is always ready",
        "ConfigMap a/z": "Resource is always ready",
    }


def test_lists_follow_continue_tokens_and_a_failed_list_falls_back_to_gets() -> None:
    collection = "/api/v1/namespaces/a/configmaps"
    reads = Reads()
    reads.bodies[collection] = [
        {"items": [{"metadata": {"name": "x"}}], "metadata": {"continue": "t1"}},
        {"items": [{"metadata": {"name": "y"}}], "metadata": {}},
    ]
    run(reads, [target("x"), target("y")], selector=SELECTOR)
    assert [q["continue"] for _, q in reads.sent if q] == [None, "t1"]
    reads = Reads()
    reads.bodies[collection] = [ApiError(403, "Forbidden", "may not list")]
    reads.bodies[path("x")] = [cm("x")]
    reads.bodies[path("y")] = [cm("y")]
    waited, _ = run(reads, [target("x"), target("y")], selector=SELECTOR)
    assert [p for p, _ in reads.sent] == [collection, path("x"), path("y")]
    assert {h.status for h in waited.health.values()} == {Status.CURRENT}


def test_answers_that_cannot_be_read_are_unknown_and_an_unreachable_server_raises() -> None:
    reads = Reads()
    reads.bodies[path("x")] = [ApiError(403, "Forbidden", "no " * 5000)]
    reads.bodies[path("y")] = [["not", "an", "object"]]
    waited, _ = run(reads, [target("x"), target("y")], timeout=0.5)
    x, y = waited.health[target("x").id], waited.health[target("y").id]
    assert (x.status, x.reason, len(x.message) <= 1024) == (Status.UNKNOWN, "Forbidden", True)
    assert (y.status, y.reason) == (Status.UNKNOWN, "Unreadable")
    assert waited.timed_out and len(waited.problems()) == 2
    reads = Reads()
    reads.bodies[path("x")] = [AcmError(errors.API_SERVER_UNREACHABLE, "down")]
    with pytest.raises(AcmError) as raised:
        run(reads, [target("x")])
    assert raised.value.code is errors.API_SERVER_UNREACHABLE
