"""Watch-driven drift repair: label-filtered watches on the kinds a sync manages, at each version
its objects are declared at; an object someone edits (at any version) or deletes gets its declared
state back within about a second. An object another controller keeps reverting is a fight:
reported (metric, log, status) instead of looped on.

Each repair says who made the change (``forensics``): the field managers owning the changed
fields, and the user where ``users`` knows one; in the log line, an Event on the sync and the
object's health entry (``on_drift``)."""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from acm_lite import metadata
from acm_lite.apply import writes
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.errors import AcmError
from acm_lite.objects import GroupKind, Manifest, ObjectId
from acm_lite.plan import compare, ignorefields, ownership
from acm_lite.plan.changeset import Action, Change, ChangeSet
from acm_lite.reconcile import events, forensics
from acm_lite.reconcile.metrics import Metrics
from acm_lite.status.resources import Drift

log = logging.getLogger("acm_lite.remediator")
FIGHT_WINDOW = 60.0


def _version(change: Change | Defended) -> str | None:
    """The version an object is declared at: where it is watched, compared and repaired."""
    return change.manifest.version if change.manifest is not None else None


class Defended:
    """What drift repair keeps of one declared object between passes: its identity, the declared
    manifest (the declared set's own, shared, never copied) and the sync's ignore rules for it.
    The stamped body is made again when an event needs it, rather than kept for every object;
    no live body is kept. Two are equal when they defend the same declaration the same way."""

    __slots__ = ("commit", "id", "ignored", "manifest", "sync")

    def __init__(
        self,
        oid: ObjectId,
        manifest: Manifest,
        sync: str,
        commit: str | None = None,
        ignored: tuple[tuple[str, ...], ...] = (),
    ):
        self.id, self.manifest, self.sync, self.commit, self.ignored = oid, manifest, sync, commit, ignored

    @classmethod
    def of(cls, change: Change, sync: str) -> Defended | None:
        """The record of a planned change whose declared state is defended (created, updated or
        left unchanged); None for any other. The commit is the one the pass stamped it with."""
        if change.desired is None or change.manifest is None or change.action not in _DEFENDED:
            return None
        return cls(
            change.id,
            change.manifest,
            sync,
            metadata.live_annotation(change.desired, metadata.COMMIT),
            change.ignored,
        )

    @property
    def subject(self) -> str:
        return str(self.id)

    @property
    def desired(self) -> dict[str, Any]:
        """The body the pass applied: the declared object with its marks, the commit among them."""
        return ignorefields.strip(ownership.stamp(self.manifest, self.sync, self.commit), self.ignored)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Defended):
            return NotImplemented
        return (
            self.id == other.id
            and self.sync == other.sync
            and self.commit == other.commit
            and self.ignored == other.ignored
            and (self.manifest is other.manifest or self.manifest.body == other.manifest.body)
            and self.manifest.source == other.manifest.source
        )

    def __hash__(self) -> int:
        return hash((self.id, self.sync, self.commit, self.manifest.digest))

    def __repr__(self) -> str:
        return f"Defended({self.subject}, {self.manifest.source})"


_DEFENDED = frozenset({Action.CREATE, Action.UPDATE, Action.UNCHANGED})
Declaration = Change | Defended  # what a repair is told to restore (a pass's change, or its record)


class Remediator:
    def __init__(
        self,
        cluster: Cluster,
        discovery: Discovery,
        sync: str,
        *,
        metrics: Metrics,
        allowed: Callable[[], bool],
        fight_threshold: int = 5,
        on_fight: Callable[[Declaration], None] = lambda _c: None,
        on_event: Callable[[ObjectId, dict[str, Any] | None], None] = lambda _o, _b: None,
        scope: str | None = None,
        on_drift: Callable[[ObjectId, Drift], None] = lambda _o, _d: None,
        users: forensics.Users | None = None,
    ):
        self.cluster, self.discovery, self.sync, self.metrics = cluster, discovery, sync, metrics
        self.scope = scope  # a tenant sync watches inside its namespace only (all its rights allow)
        self.allowed = allowed
        self.fight_threshold = fight_threshold
        self.on_fight = on_fight
        self.on_event = on_event  # every event on a managed object (None: deleted), for health
        self.on_drift = on_drift  # who changed an object, after it was repaired
        self.users = users  # the user who changed an object, where a source of them is given
        self._desired: dict[ObjectId, Defended] = {}
        self._repairs: dict[ObjectId, collections.deque[float]] = {}
        self.fights: set[ObjectId] = set()
        self._watched: dict[Resource, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def update(self, changeset: ChangeSet) -> None:
        """After a pass: the declared state to defend, and watches on every kind it covers."""
        desired: dict[ObjectId, Defended] = {}
        for change in changeset.changes:
            kept = Defended.of(change, self.sync)
            if kept is not None:
                desired[change.id] = kept
        with self._lock:
            self._desired = desired
            self.fights.clear()
            self._repairs.clear()
        for resource in self._resources({(oid.group_kind, _version(c)) for oid, c in desired.items()}):
            if resource not in self._watched:
                thread = threading.Thread(
                    target=self._watch,
                    args=(resource,),
                    daemon=True,
                    name=f"watch-{resource.plural}.{resource.version}",
                )
                self._watched[resource] = thread
                thread.start()

    def _resources(self, addresses: set[tuple[GroupKind, str | None]]) -> list[Resource]:
        """The resources serving each kind at its declared version. Discovery lives as long as
        the daemon: it is refreshed once when a pass declares something it does not know yet
        (a new CRD, or a new version of one)."""
        found = [self.discovery.find(gk, version) for gk, version in addresses]
        if None in found:
            try:
                self.discovery.refresh()
            except AcmError as e:
                log.info("discovery refresh failed", extra={"fields": {"error": str(e)}})
            found = [self.discovery.find(gk, version) for gk, version in addresses]
        return [r for r in found if r is not None]

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, resource: Resource) -> None:
        selector = f"{metadata.SYNC_LABEL}={self.sync}"
        version = None
        while not self._stop.is_set():
            try:
                for event in self.cluster.watch(
                    resource.collection(self.scope),
                    {
                        "labelSelector": selector,
                        "resourceVersion": version,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": 60,
                    },
                    self._stop,
                ):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = None  # too old: start over from the current state
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if event.get("type") in ("MODIFIED", "DELETED", "ADDED"):
                        self.observe(resource, event["type"], obj)
            except (AcmError, ApiError) as e:
                log.info(
                    "watch interrupted", extra={"fields": {"resource": resource.plural, "error": str(e)}}
                )
                self._stop.wait(1.0)
            except Exception:  # a bug must not end drift repair of this kind for good
                log.exception("watch failed", extra={"fields": {"resource": resource.plural}})
                version = None
                self._stop.wait(1.0)

    def observe(self, resource: Resource, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        oid = ObjectId(
            resource.group_kind.group,
            resource.group_kind.kind,
            meta.get("namespace", "") if resource.namespaced else "",
            meta.get("name", ""),
        )
        with self._lock:
            change = self._desired.get(oid)
        if change is None:
            return
        if _version(change) != resource.version:  # the watch at its version sees it
            return
        self.on_event(oid, None if kind == "DELETED" else obj)
        if not self.allowed():
            return
        if kind != "DELETED" and (
            metadata.ignores_mutation(change.manifest)
            or compare.difference(
                ownership.without_commit(change.desired), ignorefields.strip(obj, change.ignored)
            )
            is None
        ):
            return  # as declared, or declared with mutation: ignore (only a deletion is repaired)
        self.repair(change, resource, "deleted" if kind == "DELETED" else "edited", obj)

    def _body(self, change: Declaration) -> dict[str, Any] | None:
        """What a repair applies: the declared state, whole even when the pass adopted a
        mutation-ignored object with the marks only (only its deletion is repaired)."""
        if change.manifest is not None and metadata.ignores_mutation(change.manifest):
            return ignorefields.strip(ownership.stamp(change.manifest, self.sync, None), change.ignored)
        return change.desired

    def _forensics(
        self, change: Declaration, resource: Resource, live: dict[str, Any] | None, *, deleted: bool
    ) -> Drift:
        """Who made the change; never fails the repair."""
        declared = ownership.without_commit(change.desired) if change.desired is not None else None
        drift = forensics.attribute(
            ignorefields.strip(declared, change.ignored) if declared is not None else None,
            ignorefields.strip(live, change.ignored) if live is not None and not deleted else None,
            deleted=deleted,
        )
        if self.users is None:
            return drift
        try:
            user = self.users(resource.plural, change.id, drift.manager, drift.deleted)
        except Exception:  # a source of users is best effort
            log.exception("user of a change not read", extra={"fields": {"object": change.subject}})
            user = None
        return dataclasses.replace(drift, user=user).bounded() if user else drift

    def repair(
        self, change: Declaration, resource: Resource, why: str, live: dict[str, Any] | None = None
    ) -> None:
        now = time.monotonic()
        with self._lock:
            if change.id in self.fights:
                return
            history = self._repairs.setdefault(change.id, collections.deque())
            while history and now - history[0] > FIGHT_WINDOW:
                history.popleft()
            fought = len(history) >= self.fight_threshold
            if fought:
                self.fights.add(change.id)
            else:
                history.append(now)
        if fought:
            self.metrics.fights.labels(self.sync).inc()
            log.warning(
                "fight: another controller keeps changing a managed object; repair "
                "paused until the next sync",
                extra={"fields": {"sync": self.sync, "object": change.subject}},
            )
            events.record(
                self.cluster,
                self.sync,
                "Fight",
                f"{change.subject} was changed back {self.fight_threshold} times "
                "within a minute; repair paused until the next sync",
                warning=True,
            )
            self.on_fight(change)
            return
        try:
            writes.send(
                self.cluster, writes.server_side_apply(resource.path_of(change.id), self._body(change))
            )
        except (ApiError, AcmError) as e:
            log.warning("drift repair failed", extra={"fields": {"object": change.subject, "error": str(e)}})
            return
        self.metrics.drift_repairs.labels(self.sync).inc()
        drift = self._forensics(change, resource, live, deleted=why == "deleted")
        who = forensics.describe(drift)
        log.info(
            "drift repaired",
            extra={
                "fields": {
                    "sync": self.sync,
                    "object": change.subject,
                    "why": why,
                    "manager": drift.manager or "unknown",
                    "operation": drift.operation,
                    "user": drift.user,
                    "changed": list(drift.fields),
                }
            },
        )
        events.record(
            self.cluster,
            self.sync,
            "DriftRepaired",
            f"{change.subject} was {why} {who}"
            + (f" (changed: {', '.join(drift.fields)})" if drift.fields else "")
            + "; declared state restored",
        )
        self.on_drift(change.id, drift)
