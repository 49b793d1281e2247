"""Leader election with a coordination.k8s.io Lease, so two replicas never both write."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError

log = logging.getLogger("acm_lite.leader")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


class LeaderElector:
    """Acquire and renew a Lease; ``is_leader`` is true only while the lease is fresh."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float = 15.0,
        renew_every: float = 3.0,
    ):
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.identity, self.duration, self.renew_every = identity, duration, renew_every
        self._held_until = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="leader")

    @property
    def path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def is_leader(self) -> bool:
        return time.monotonic() < self._held_until

    def start(self) -> None:
        self._thread.start()

    def _body(self, lease: dict[str, Any] | None, transitions: int) -> dict[str, Any]:
        now = _micro(_now())
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
        else:
            spec["acquireTime"] = lease["spec"].get("acquireTime", now)
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            meta["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def try_acquire(self) -> bool:
        """One attempt to take or renew the lease (optimistic concurrency on resourceVersion)."""
        started = time.monotonic()
        try:
            lease = self.cluster.request("GET", self.path)
        except ApiError as e:
            if e.status != 404:
                raise
            lease = None
        if lease is None:
            body = self._body(None, 0)
            self.cluster.request("POST", self.path.rsplit("/", 1)[0], body=body)
        else:
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            renewed = _parse(spec.get("renewTime"))
            expired = renewed is None or (_now() - renewed).total_seconds() > float(
                spec.get("leaseDurationSeconds") or 15
            )
            if holder not in ("", self.identity) and not expired:
                self._held_until = 0.0
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
            self.cluster.request("PUT", self.path, body=self._body(lease, transitions))
        self._held_until = started + self.duration * 2 / 3  # stop writing well before expiry
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.cluster.breaker.reset()  # the loop is its own backoff: every attempt goes out
            try:
                leading = self.try_acquire()
            except (ApiError, AcmError) as e:  # a conflict means someone else renewed first
                log.info("lease attempt failed", extra={"fields": {"error": str(e)}})
                leading = False
                self._held_until = 0.0 if not self.is_leader() else self._held_until
            self._stop.wait(self.renew_every if leading else self.renew_every / 2)

    def stop(self, release: bool = True) -> None:
        """Stop renewing; give the lease up so a standby takes over at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if release and self.is_leader():
            self._held_until = 0.0
            try:
                lease = self.cluster.request("GET", self.path)
                if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    lease["spec"]["holderIdentity"] = ""
                    lease["spec"]["renewTime"] = _micro(_now() - dt.timedelta(hours=1))
                    self.cluster.request("PUT", self.path, body=lease)
            except (ApiError, AcmError) as e:
                log.warning("could not release the lease", extra={"fields": {"error": str(e)}})
