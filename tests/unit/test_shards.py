"""Shard assignment, fair shares and the renew deadline, on a fake clock and an in-memory Lease
store that keeps the API server's optimistic concurrency (resourceVersion, 409)."""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections import Counter
from typing import Any

import pytest

from acm_lite import errors
from acm_lite.cluster.client import ApiError
from acm_lite.errors import AcmError
from acm_lite.reconcile import shards
from acm_lite.reconcile.shards import ShardCoordinator, Timing

BASE = "/apis/coordination.k8s.io/v1/namespaces/sys/leases"


class Breaker:
    def reset(self) -> None:
        pass


class Leases:
    """coordination.k8s.io Leases of one namespace: create, replace on a matching
    resourceVersion, list by label, delete."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.down = False
        self.breaker = Breaker()
        self.writes: Counter[str] = Counter()

    def request(self, method: str, path: str, *, query: Any = None, body: Any = None) -> Any:
        if self.down:
            raise AcmError(errors.API_SERVER_ERROR, "cannot reach the API server")
        if method == "GET" and path == BASE:
            key, value = query["labelSelector"].split("=")
            return {
                "items": [
                    copy.deepcopy(i) for i in self.items.values() if i["metadata"]["labels"].get(key) == value
                ]
            }
        name = path.rsplit("/", 1)[1] if path != BASE else body["metadata"]["name"]
        if method == "DELETE":
            self.items.pop(name, None)
            return None
        self.version += 1
        stored = copy.deepcopy(body)
        if method == "POST":
            if name in self.items:
                raise ApiError(409, "AlreadyExists", "exists")
        elif self.items[name]["metadata"]["resourceVersion"] != body["metadata"].get("resourceVersion"):
            raise ApiError(409, "Conflict", "the object has been modified")
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.items[name] = stored
        self.writes[name] += 1
        return stored

    def holder(self, shard: int) -> str:
        lease = self.items.get(f"acm-lite-shard-{shard}")
        return str(lease["spec"]["holderIdentity"]) if lease else ""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> dt.datetime:
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.now)


TIMING = Timing(duration=15, renew_deadline=10, retry=2)


def replica(store: Leases, clock: Clock, identity: str, count: int = 6, **kw: Any) -> ShardCoordinator:
    return ShardCoordinator(
        store,  # type: ignore[arg-type]
        "sys",
        "acm-lite",
        identity,
        count,
        timing=TIMING,
        clock=clock,
        wall=clock.wall,
        **kw,
    )


def test_shard_of_is_stable_and_spreads_names() -> None:
    names = [f"cluster-{i}" for i in range(600)]
    counts = Counter(shards.shard_of(n, 6) for n in names)
    assert set(counts) == set(range(6))
    assert all(60 <= c <= 140 for c in counts.values()), counts
    assert shards.shard_of("eks-prod", 4) == shards.shard_of("eks-prod", 4)
    # sha256 of the name, first 8 bytes big-endian, modulo: the same in every process and run
    assert (
        shards.shard_of("eks-prod", 1_000_003)
        == int.from_bytes(__import__("hashlib").sha256(b"eks-prod").digest()[:8], "big") % 1_000_003
    )


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 7, 12])
@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
def test_fair_shares_add_up_and_never_exceed_the_ceiling(count: int, replicas: int) -> None:
    ids = [f"r{i}" for i in range(replicas)]
    shares = [shards.fair_share(count, ids, i) for i in ids]
    assert sum(shares) == count
    assert max(shares) == math.ceil(count / replicas)
    assert min(shares) == count // replicas


def test_lease_name_part_is_a_dns_name_and_distinct() -> None:
    a = shards.lease_name_part("Host_1:4242")
    b = shards.lease_name_part("host-1-4242")
    assert a != b and b == "host-1-4242"
    assert all(c.isalnum() or c == "-" for c in a) and a == a.lower()
    assert len(shards.lease_name_part("x" * 300)) <= 60


def test_timing_refuses_a_deadline_not_under_the_duration() -> None:
    assert Timing(15, 10, 2).check() is None
    assert "renew-deadline" in (Timing(10, 10, 2).check() or "")
    assert Timing(10, 12, 2).check() is not None
    assert Timing(10, 5, 6).check() is not None
    assert "whole seconds" in (Timing(10.5, 5, 1).check() or "")


def test_one_replica_takes_every_shard_then_a_second_gets_half() -> None:
    store, clock = Leases(), Clock()
    a = replica(store, clock, "a")
    a.round()  # the first round only announces a: replicas starting together see each other first
    assert a.held() == [] and a.presence in store.items
    a.round()
    assert a.held() == list(range(6))
    b = replica(store, clock, "b")
    b.round()  # b announces itself; every shard is a's and live
    assert b.held() == []
    released: list[int] = []
    a.on_release = lambda s: released.append(s) or None  # type: ignore[func-returns-value]
    a.round()  # a sees two replicas: keeps 3, gives 3 up after stopping their syncs
    assert len(a.held()) == 3 and len(released) == 3
    assert {store.holder(s) for s in released} == {""}
    b.round()
    assert sorted(a.held() + b.held()) == list(range(6))
    assert {store.holder(s) for s in b.held()} == {"b"}


def test_no_two_replicas_hold_a_shard_through_rebalances() -> None:
    store, clock = Leases(), Clock()
    replicas = [replica(store, clock, "a")]
    for step in range(40):
        if step == 5:
            replicas.append(replica(store, clock, "b"))
        if step == 15:
            replicas.append(replica(store, clock, "c"))
        for r in replicas:
            r.round()
            held = Counter(s for other in replicas for s in other.held())
            assert all(n == 1 for n in held.values()), (step, held)
        clock.now += 2
    assert sorted(len(r.held()) for r in replicas) == [2, 2, 2]


def test_a_replica_that_cannot_renew_stops_before_its_lease_expires_for_others() -> None:
    store, clock = Leases(), Clock()
    a, b = replica(store, clock, "a", count=2), replica(store, clock, "b", count=2)
    a.round()
    b.round()
    a.round()
    b.round()
    assert len(a.held()) == 1 and len(b.held()) == 1
    mine = a.held()[0]
    renewed_at = clock.now
    gate = a.gate(mine, "eks-prod")
    store_for_a_down = True
    # a is cut off from the management cluster: its rounds fail, b's go on
    for _ in range(20):
        clock.now += 1
        store.down = store_for_a_down
        with pytest.raises(AcmError):
            a.round()
        store.down = False
        b.round()
        expired_for_b = mine in b.held()
        if clock.now - renewed_at >= TIMING.renew_deadline:
            assert not a.holds(mine)
            with pytest.raises(AcmError) as refused:
                gate()
            assert refused.value.code is errors.SHARD_NOT_HELD and "eks-prod" in str(refused.value)
        else:
            assert a.holds(mine)
            gate()  # still allowed
        # never both: b takes it only after a stopped
        assert not (expired_for_b and a.holds(mine))
    assert mine in b.held()  # taken over within the lease duration (plus one retry)
    assert store.holder(mine) == "b"


def test_the_holder_is_judged_by_the_observers_clock_not_the_renew_time() -> None:
    """A renewTime far in the past (a skewed clock) does not make a live Lease expired: only
    not seeing it change for leaseDurationSeconds does."""
    store, clock = Leases(), Clock()
    a = replica(store, clock, "a", count=1)
    a.wall = lambda: dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    a.round()
    b = replica(store, clock, "b", count=1)
    for _ in range(10):
        clock.now += 2
        a.round()
        b.round()
        assert a.held() == [0] and b.held() == []


def test_a_lease_taken_by_another_stops_writes_at_once() -> None:
    store, clock = Leases(), Clock()
    a = replica(store, clock, "a", count=1)
    a.round()
    a.round()
    assert a.held() == [0]
    lease = store.items["acm-lite-shard-0"]
    lease["spec"]["holderIdentity"] = "intruder"
    a.round()
    assert a.held() == []


def test_stop_releases_shards_and_presence_for_the_others() -> None:
    store, clock = Leases(), Clock()
    a, b = replica(store, clock, "a", count=3), replica(store, clock, "b", count=3)
    a.round()
    b.round()
    a.stop()
    assert {store.holder(s) for s in range(3)} == {""}
    assert a.presence not in store.items
    b.round()  # a's presence is gone: b's share is every shard, at once
    assert b.held() == [0, 1, 2]


def test_the_next_round_comes_when_a_lease_of_another_replica_expires() -> None:
    store, clock = Leases(), Clock()
    a, b = replica(store, clock, "a", count=1), replica(store, clock, "b", count=1)
    a.round()
    a.round()
    assert a.held() == [0]
    b.round()  # first sight of a's Leases: they expire for b in 15 s
    assert b.wait() == TIMING.retry
    clock.now += 14.5
    b.round()
    assert b.wait() == pytest.approx(0.55)
    clock.now += b.wait()
    b.round()  # a never renewed: b takes the shard at that round, not a retry period later
    assert b.held() == [0]
    assert a.wait() == TIMING.retry  # its own Leases never shorten a replica's wait


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", ".", "--shards", "3"], "give --fleet"),
        (["--fleet", "fleet.yaml", "--shards", "3", "--leader-elect"], "exclude each other"),
        (["--fleet", "fleet.yaml", "--shards", "3", "--renew-deadline", "15"], "--renew-deadline"),
        (["--fleet", "fleet.yaml", "--shards", "0"], "positive"),
    ],
)
def test_serve_refuses_shards_it_cannot_keep(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from acm_lite.cli.main import main

    assert main(["serve", "--metrics-address", "off", *args]) == 2
    assert message in capsys.readouterr().err
