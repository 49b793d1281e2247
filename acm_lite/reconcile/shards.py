"""A fleet shared by several replicas of the daemon, coordinated through coordination.k8s.io/v1
Leases in the management cluster (the only store).

Every fleet cluster belongs to one of ``shards`` shards (a stable hash of its name). Each shard has
a Lease ``<set>-shard-<i>``; each replica renews a presence Lease ``<set>-replica-<identity>``, so
every replica sees how many replicas are alive and the fair share of each: the replicas, sorted by
identity, hold ``shards // n`` shards each and the first ``shards % n`` one more (so together never
more than ``shards``, and a new replica always gets its part).

The rules that keep two replicas from writing one cluster at once, as client-go's leader election:

- a replica syncs a shard only after its PUT of the shard's Lease (optimistic concurrency on the
  resourceVersion) succeeded, and only until ``renew_deadline`` after the start of its last
  successful renewal. ``renew_deadline`` is shorter than the Lease's duration, so a replica that
  cannot renew (partitioned, paused) has stopped writing before any other could see the Lease
  expire;
- another replica judges a Lease expired by its own clock: ``leaseDurationSeconds`` after it first
  saw the Lease's current renewTime (never by comparing clocks across machines);
- a replica giving a shard up (it holds more than its share) first stops the shard's syncs — the
  write gate closes at once and a pass under way is waited for — and only then clears the holder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError

log = logging.getLogger("acm_lite.shards")

SET_LABEL = "acm-lite.io/lease-set"
ROLE_LABEL = "acm-lite.io/lease-role"
SHARD_LABEL = "acm-lite.io/shard"


def shard_of(cluster_name: str, shards: int) -> int:
    """The shard of a fleet cluster: the same on every replica and every run."""
    digest = hashlib.sha256(cluster_name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def fair_share(shards: int, replicas: list[str], identity: str) -> int:
    """How many shards ``identity`` may hold among ``replicas`` (live, itself included): at most
    ceil(shards / n), the first ``shards % n`` replicas by identity that many and the others one
    fewer, so the shares add up to exactly ``shards``."""
    members = sorted(set(replicas) | {identity})
    n = len(members)
    base, extra = divmod(shards, n)
    share = base + (1 if members.index(identity) < extra else 0)
    assert share <= math.ceil(shards / n)
    return share


def preference(identity: str, shard: int) -> bytes:
    """Rendezvous order: each replica prefers its own shards, so shares stay put between rounds
    and a rebalance moves as few shards as it can."""
    return hashlib.sha256(f"{identity}/{shard}".encode()).digest()


def lease_name_part(identity: str) -> str:
    """``identity`` as part of a Lease name (a DNS-1123 subdomain): lowercased, other characters as
    '-', a long one cut and suffixed with a hash so two identities never share a name."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-") or "replica"
    if cleaned != identity or len(cleaned) > 60:
        cleaned = f"{cleaned[:50].strip('-')}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
    return cleaned


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Seen:
    """A Lease's record as this replica first saw it, on this replica's clock."""

    holder: str
    renew_time: str
    duration: float
    since: float  # monotonic time at which this (holder, renewTime) was first seen


@dataclass(frozen=True)
class Timing:
    """Lease duration, renew deadline and retry period, in seconds (client-go's 15/10/2 by
    default). The deadline must be shorter than the duration, and the retry period shorter than
    the deadline, or a replica could write after others see its Lease expire."""

    duration: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0

    def check(self) -> str | None:
        if not 0 < self.retry < self.renew_deadline < self.duration:
            return (
                f"need 0 < --lease-retry ({self.retry:g}) < --renew-deadline ({self.renew_deadline:g}) "
                f"< --lease-duration ({self.duration:g})"
            )
        if self.duration != int(self.duration):
            return f"--lease-duration must be whole seconds, not {self.duration:g}"
        return None


class ShardCoordinator:
    """Claims, renews and gives up shard Leases for one replica; ``holds(shard)`` says whether this
    replica may write the clusters of a shard right now."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        lease_set: str,
        identity: str,
        shards: int,
        *,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_acquire: Callable[[int], None] = lambda _s: None,
        on_release: Callable[[int], None] = lambda _s: None,
    ):
        self.cluster, self.namespace, self.lease_set = cluster, namespace, lease_set
        self.identity, self.shards, self.timing = identity, shards, timing
        self.clock, self.wall = clock, wall
        self.on_acquire, self.on_release = on_acquire, on_release
        self.presence = f"{lease_set}-replica-{lease_name_part(identity)}"
        self._held_until: dict[int, float] = {}
        self._releasing: set[int] = set()
        self._seen: dict[str, _Seen] = {}
        self._next_expiry = math.inf  # when the next Lease of another replica would expire
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="shards")
        self.replicas: list[str] = [identity]

    # -- what the workers ask -------------------------------------------------------------

    def holds(self, shard: int) -> bool:
        """True only while this replica's last renewal of the shard's Lease is younger than the
        renew deadline, and it is not giving the shard up."""
        with self._lock:
            return shard not in self._releasing and self.clock() < self._held_until.get(shard, 0.0)

    def held(self) -> list[int]:
        return [s for s in range(self.shards) if self.holds(s)]

    def gate(self, shard: int, cluster_name: str) -> Callable[[], None]:
        """The write gate of a cluster's clients: raises ACM2017 once the shard is not held."""

        def check() -> None:
            if not self.holds(shard):
                raise AcmError(
                    errors.SHARD_NOT_HELD,
                    f"{self.identity} does not hold the Lease of shard {shard}; no write to cluster "
                    f"{cluster_name} was sent",
                    hint="the replica that holds the shard's Lease syncs this cluster",
                )

        return check

    # -- the Leases -------------------------------------------------------------------------

    @property
    def _base(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def shard_lease(self, shard: int) -> str:
        return f"{self.lease_set}-shard-{shard}"

    def _expired(self, name: str, lease: dict[str, Any], now: float) -> bool:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if not holder:
            return True
        # the whole record as seen: a renewal changes the resourceVersion even when the holder's
        # clock stands still, so a live Lease is never taken for an expired one
        renew = f"{spec.get('renewTime') or ''}/{(lease.get('metadata') or {}).get('resourceVersion')}"
        duration = float(spec.get("leaseDurationSeconds") or self.timing.duration)
        seen = self._seen.get(name)
        if seen is None or (seen.holder, seen.renew_time) != (holder, renew):
            seen = self._seen[name] = _Seen(holder, renew, duration, now)
        expires = seen.since + seen.duration
        if expires >= now and holder != self.identity:
            self._next_expiry = min(self._next_expiry, expires)
        return now > expires

    def _body(self, name: str, role: str, lease: dict[str, Any] | None, holder: str) -> dict[str, Any]:
        now = _micro(self.wall())
        old = (lease or {}).get("spec") or {}
        same = old.get("holderIdentity") == holder and bool(holder)
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": int(self.timing.duration) if holder else 1,
            "renewTime": now,
            "acquireTime": old.get("acquireTime", now) if same else now,
            "leaseTransitions": int(old.get("leaseTransitions") or 0) + (0 if same or not holder else 1),
        }
        labels = {SET_LABEL: self.lease_set, ROLE_LABEL: role}
        if role == "shard":
            labels[SHARD_LABEL] = name.rsplit("-", 1)[1]
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": labels}
        if lease is not None:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def _write(self, name: str, role: str, lease: dict[str, Any] | None, holder: str) -> bool:
        """Create or update a Lease; False when another replica changed it first (409)."""
        body = self._body(name, role, lease, holder)
        try:
            if lease is None:
                self.cluster.request("POST", self._base, body=body)
            else:
                self.cluster.request("PUT", f"{self._base}/{name}", body=body)
        except ApiError as e:
            if e.status == 409:
                return False
            raise e.to_acm(f"Lease {self.namespace}/{name}") from e
        return True

    def _list(self) -> dict[str, dict[str, Any]]:
        try:
            answer = self.cluster.request(
                "GET", self._base, query={"labelSelector": f"{SET_LABEL}={self.lease_set}"}
            )
        except ApiError as e:
            raise e.to_acm(f"Leases {self.namespace}/{self.lease_set}-*") from e
        items = (answer or {}).get("items") or []
        return {str(i["metadata"]["name"]): i for i in items if isinstance(i, dict) and "metadata" in i}

    # -- one round ------------------------------------------------------------------------

    def round(self) -> None:
        """Renew the presence Lease and the shards held, give up those above the fair share, and
        claim free or expired ones up to it. Writes that fail leave the shard to expire here."""
        started = self.clock()
        self._next_expiry = math.inf
        self.cluster.breaker.reset()  # the loop is its own backoff: every round goes out
        leases = self._list()
        self._write(self.presence, "replica", leases.get(self.presence), self.identity)
        replicas = {self.identity}
        for name, lease in leases.items():
            labels = (lease.get("metadata") or {}).get("labels") or {}
            if labels.get(ROLE_LABEL) == "replica" and not self._expired(name, lease, started):
                replicas.add(str(lease["spec"]["holderIdentity"]))
        self.replicas = sorted(replicas)
        share = fair_share(self.shards, self.replicas, self.identity)
        mine, free = [], []
        for shard in range(self.shards):
            name = self.shard_lease(shard)
            current = leases.get(name)
            holder = ((current or {}).get("spec") or {}).get("holderIdentity") or ""
            if current is not None and holder == self.identity:
                mine.append(shard)
            elif current is None or self._expired(name, current, started):
                free.append(shard)
            else:
                with self._lock:  # someone else's, live: never ours, whatever we thought
                    self._held_until.pop(shard, None)
        mine.sort(key=lambda s: preference(self.identity, s))
        for shard in mine[:share]:  # renewals first: giving up waits on passes under way
            self._claim(shard, leases.get(self.shard_lease(shard)), started)
        extras = mine[share:]
        with self._lock:  # every extra stops writing at once; their passes end side by side
            self._releasing.update(extras)
        for shard in extras:
            self._give_up(shard, leases.get(self.shard_lease(shard)))
        presence = (leases.get(self.presence) or {}).get("spec") or {}
        if presence.get("holderIdentity") != self.identity:
            return  # announced just now: claim next round, once replicas starting with it are seen
        free.sort(key=lambda s: preference(self.identity, s))
        for shard in free[: max(0, share - len(mine))]:
            self._claim(shard, leases.get(self.shard_lease(shard)), started)

    def _claim(self, shard: int, lease: dict[str, Any] | None, started: float) -> None:
        had = self.holds(shard)
        if not self._write(self.shard_lease(shard), "shard", lease, self.identity):
            with self._lock:
                self._held_until.pop(shard, None)
            return
        with self._lock:
            self._held_until[shard] = started + self.timing.renew_deadline
        if not had:
            log.info("shard acquired", extra={"fields": {"shard": shard, "replica": self.identity}})
            self.on_acquire(shard)

    def _give_up(self, shard: int, lease: dict[str, Any] | None) -> None:
        """Stop the shard's syncs, then clear the Lease's holder so another replica claims it."""
        with self._lock:
            self._releasing.add(shard)
        try:
            self.on_release(shard)
            if lease is not None:
                self._write(self.shard_lease(shard), "shard", lease, "")
            log.info("shard released", extra={"fields": {"shard": shard, "replica": self.identity}})
        finally:
            with self._lock:
                self._held_until.pop(shard, None)
                self._releasing.discard(shard)

    # -- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.round()
            except (ApiError, AcmError) as e:
                log.warning(
                    "shard leases not renewed",
                    extra={"fields": {"replica": self.identity, "error": str(e), "code": "ACM2018"}},
                )
            except Exception:  # never the end of the loop: the shards expire here meanwhile
                log.error("shard round raised", exc_info=True)
            self._stop.wait(self.wait())

    def wait(self) -> float:
        """Until the next round: the retry period, or less when another replica's Lease expires
        sooner, so its shards are claimed as soon as they may be (a little after, never before)."""
        return max(0.05, min(self.timing.retry, self._next_expiry + 0.05 - self.clock()))

    def stop(self) -> None:
        """Stop renewing, stop every shard's syncs, clear the holders and the presence Lease, so
        the other replicas take the shards at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        try:
            leases = self._list()
        except AcmError as e:
            log.warning("shard leases not released", extra={"fields": {"error": str(e)}})
            return
        for shard in range(self.shards):
            lease = leases.get(self.shard_lease(shard))
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                try:
                    self._give_up(shard, lease)
                except AcmError as e:
                    log.warning("shard lease not released", extra={"fields": {"error": str(e)}})
        try:
            self.cluster.request("DELETE", f"{self._base}/{self.presence}")
        except (ApiError, AcmError) as e:
            log.warning("presence lease not deleted", extra={"fields": {"error": str(e)}})
