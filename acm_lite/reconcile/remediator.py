"""Watch-driven drift repair: label-filtered watches on the kinds a sync manages, at each version
its objects are declared at; an object someone edits (at any version) or deletes gets its declared
state back within about a second. An object another controller keeps reverting is a fight:
reported (metric, log, status) instead of looped on.

Each repair says who made the change (``forensics``): the field managers owning the changed
fields, and the user where ``users`` knows one; in the log line, an Event on the sync and the
object's health entry (``on_drift``).

Each watch keeps its place as client-go's reflector does: it starts from the whole current state
(a WatchList stream, ``sendInitialEvents``, ending at the ``k8s.io/initial-events-end`` bookmark,
or a LIST and a watch from its resourceVersion where the server refuses that), then follows from
the last resourceVersion it saw (bookmarks included). A watch cut or ended resumes from there and
misses nothing; one whose place the server no longer has (``410 Gone``, another error event, a
resourceVersion lost) starts over from the current state: every object it returns is compared
again, and a declared object it no longer returns is read and put back. ``epoch`` counts the
starts over (events may have been missed), ``synced`` says every watch holds the whole picture and
is connected; a pass that trusts the watches between passes checks both. Failures back off as the
reflector does (0.8 s doubling to 30 s, with jitter, reset after two quiet minutes)."""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from acm_lite import errors, metadata
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
INITIAL_EVENTS_END = "k8s.io/initial-events-end"  # the bookmark ending a WatchList's initial state
WATCH_TIMEOUT = 60  # seconds the server keeps one watch request open
LIST_PAGE = 500
MAX_RESOURCE_VERSION = 128  # characters; etcd's are decimal 64-bit numbers
MAX_LIST_PAGES = 2000  # a relist longer than this (a million objects, or a server paging forever) fails


@dataclasses.dataclass
class _Place:
    """Where one resource's watch is: the resourceVersion it resumes from (None: it starts over
    from the current state), whether it holds the whole picture and is connected, whether a start
    over is under way, and how many it began."""

    version: str | None = None
    synced: bool = False
    restarting: bool = False
    starts: int = 0


class _Backoff:
    """client-go's reflector backoff: ``initial`` doubling up to ``cap``, each delay plus up to as
    much again at random, back to ``initial`` once ``reset`` seconds passed without a delay."""

    def __init__(self, initial: float, cap: float, reset: float, clock: Callable[[], float] = time.monotonic):
        self.initial, self.cap, self.reset, self.clock = initial, cap, reset, clock
        self._next = initial
        self._last: float | None = None

    def delay(self) -> float:
        now = self.clock()
        if self._last is not None and now - self._last > self.reset:
            self._next = self.initial
        base = self._next
        self._next = min(self.cap, base * 2)
        self._last = now
        return base + random.random() * base


class _PlaceLostError(Exception):
    """The watch lost its place: it must read the whole current state again."""


class _NoWatchListError(Exception):
    """The server refused or ignored a WatchList request: LIST, then watch."""


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _resource_version(meta: dict[str, Any]) -> str | None:
    """An object's or list's resourceVersion; None when there is none, or it is not one a watch
    can be sent from (not a string, or longer than any server's)."""
    version = meta.get("resourceVersion")
    return version if isinstance(version, str) and 0 < len(version) <= MAX_RESOURCE_VERSION else None


def _resource_label(resource: Resource) -> str:
    """A resource as kubectl names it: ``deployments.v1.apps``, ``configmaps.v1``."""
    group = resource.group_kind.group
    return f"{resource.plural}.{resource.version}" + (f".{group}" if group else "")


def _status_lost(status: int, reason: str, message: str) -> bool:
    """Whether an answer says the resourceVersion a watch or list asked for is not there (any
    more): 410 Gone / Expired, or one newer than the server knows (client-go's
    isExpiredError and isTooLargeResourceVersionError)."""
    return status == 410 or reason in ("Expired", "Gone") or "too large resource version" in message.lower()


def _transient(status: int) -> bool:
    """A refusal to retry with the same resourceVersion after a pause: too many requests, or
    the server failing (client-go retries these; anything else relists)."""
    return status == 429 or status >= 500 or status == 0


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
        self._epoch = 0
        self._relists = 0
        metrics.watches_synced.labels(sync).set_function(lambda: 1.0 if self.synced else 0.0)
        self._places: dict[Resource, _Place] = {}
        self.backoff = (0.8, 30.0, 120.0)  # seconds: first delay, longest, quiet time to reset

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
        self._watch_kinds({(oid.group_kind, _version(c)) for oid, c in desired.items()})

    def _watch_kinds(self, addresses: set[tuple[GroupKind, str | None]]) -> None:
        for resource in self._resources(addresses):
            if resource not in self._watched:
                thread = threading.Thread(
                    target=self._watch,
                    args=(resource,),
                    daemon=True,
                    name=f"watch-{resource.plural}.{resource.version}",
                )
                self._watched[resource] = thread
                thread.start()

    def update_some(self, changeset: ChangeSet) -> None:
        """After an incremental pass: the declared state of the objects it planned replaced
        (dropped for those it pruned or released), the rest defended as before; watches on any
        kind it adds."""
        changed: dict[ObjectId, Defended] = {}
        for change in changeset.changes:
            kept = Defended.of(change, self.sync)
            if kept is not None:
                changed[change.id] = kept
        with self._lock:
            desired = dict(self._desired)
            for c in changeset.changes:
                desired.pop(c.id, None)
            desired.update(changed)
            self._desired = desired
            self.fights.clear()
            self._repairs.clear()
        self._watch_kinds({(oid.group_kind, _version(c)) for oid, c in changed.items()})

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

    @property
    def epoch(self) -> int:
        """How many times a watch started over from the current state: its first start, and
        every time it lost its place (events may have been missed since). Unchanged between two
        readings, with ``synced`` true at both, means every change since the first reached the
        watches."""
        with self._lock:
            return self._epoch

    @property
    def relists(self) -> int:
        """How many times a watch lost its place and read the whole state again (the epochs
        that were not a watch's first start): unchanged between two readings means no watch
        can have missed an event between them (a first start reads the state as it is then)."""
        with self._lock:
            return self._relists

    @property
    def synced(self) -> bool:
        """Every watched resource has delivered its whole current state and is connected. False
        before the first ``update`` that watches something. A resumed watch counts as connected
        once the server accepted it; one the server then tells its place is gone (an ERROR event
        right after) is not synced again until it has read the state anew, in a new epoch."""
        watched = list(self._watched)
        with self._lock:
            return bool(watched) and all(r in self._places and self._places[r].synced for r in watched)

    def _watch(self, resource: Resource) -> None:
        with self._lock:
            place = self._places.setdefault(resource, _Place())
        backoff = _Backoff(*self.backoff)
        watch_list = True  # until the server refuses or ignores it
        why = "first start"
        while not self._stop.is_set():
            try:
                if place.version is None:
                    self._start_over(resource, place, why)
                    seen: set[ObjectId] = set()
                    if watch_list:
                        try:
                            self._stream(resource, place, seen)
                        except _NoWatchListError as e:
                            log.info(
                                "watch: the API server does not stream the initial state; listing",
                                extra={"fields": {"resource": _resource_label(resource), "why": str(e)}},
                            )
                            watch_list = False
                        continue  # the stream ended: resume from where it got to, or start over
                    self._relist(resource, place, seen)
                self._stream(resource, place, None)
            except _PlaceLostError as e:
                why = str(e)
                with self._lock:
                    place.version, place.synced = None, False
            except ApiError as e:
                with self._lock:
                    place.synced = False
                if not _transient(e.status):  # refused: what it held may be stale, read it all again
                    why = f"{e.status} {e.reason}: {e.message}"[:300]
                    with self._lock:
                        place.version = None
                log.info(
                    "watch interrupted",
                    extra={"fields": {"resource": _resource_label(resource), "error": str(e.to_acm())}},
                )
                self._stop.wait(backoff.delay())
            except AcmError as e:  # unreachable, or the stream broke: resume from the same place
                with self._lock:
                    place.synced = False
                log.info(
                    "watch interrupted",
                    extra={"fields": {"resource": _resource_label(resource), "error": str(e)}},
                )
                self._stop.wait(backoff.delay())
            except Exception:  # a bug must not end drift repair of this kind for good
                log.exception("watch failed", extra={"fields": {"resource": _resource_label(resource)}})
                why = "watch failed"
                with self._lock:
                    place.version, place.synced = None, False
                self._stop.wait(backoff.delay())

    def _start_over(self, resource: Resource, place: _Place, why: str) -> None:
        """Begin reading the whole current state: a new epoch, counted once however many tries
        the reading takes."""
        with self._lock:
            place.synced = False
            if place.restarting:
                return
            place.restarting = True
            place.starts += 1
            self._epoch += 1
            epoch, relist = self._epoch, place.starts > 1
            self._relists += relist
        if relist:
            self.metrics.watch_relists.labels(self.sync, _resource_label(resource)).inc()
            log.warning(
                "watch lost its place; reading the whole state again",
                extra={
                    "fields": {
                        "sync": self.sync,
                        "resource": _resource_label(resource),
                        "why": why,
                        "epoch": epoch,
                    }
                },
            )

    def _synced(
        self, resource: Resource, place: _Place, version: str, seen: set[ObjectId], *, connected: bool
    ) -> None:
        """The whole current state (``seen``) was read up to ``version``. After a start over,
        the declared objects it lacks were deleted meanwhile (or lost their labels): each is read
        and repaired. The watch holds the whole picture once ``connected`` (a LIST's watch is
        not open yet)."""
        if place.starts > 1:
            self._missed(resource, seen)
        with self._lock:
            place.version, place.synced, place.restarting = version, connected, False

    def _query(self, place: _Place, initial: bool) -> dict[str, Any]:
        query: dict[str, Any] = {
            "labelSelector": f"{metadata.SYNC_LABEL}={self.sync}",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_TIMEOUT,
        }
        if initial:  # the current state as ADDED events, then the initial-events-end bookmark
            return {**query, "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}
        return {**query, "resourceVersion": place.version}

    def _stream(self, resource: Resource, place: _Place, seen: set[ObjectId] | None) -> None:
        """One watch request, until the server ends it: from ``place.version``, or (``seen``
        given) from the whole current state, whose objects are collected in ``seen``."""
        initial = seen is not None

        def opened() -> None:
            if not initial:
                with self._lock:
                    place.synced = True

        query = self._query(place, initial)
        try:
            for event in self.cluster.watch(resource.collection(self.scope), query, self._stop, opened):
                kind, obj, version = self._event(resource, event)
                if kind == "BOOKMARK":
                    if self._bookmark(resource, place, obj, version, seen if initial else None):
                        initial, seen = False, None
                elif kind in ("ADDED", "MODIFIED", "DELETED"):
                    if initial:  # initial ADDED events come in no resourceVersion order: no place yet
                        if seen is not None and kind != "DELETED":
                            seen.add(self._oid(resource, obj))
                    elif version is not None:
                        with self._lock:
                            place.version = version
                    self.observe(resource, kind, obj)
        except ApiError as e:
            if _status_lost(e.status, e.reason, e.message):
                raise _PlaceLostError(f"{e.status} {e.reason}: {e.message}"[:300]) from e
            if initial and e.status in (400, 422):  # sendInitialEvents refused
                raise _NoWatchListError(f"{e.status} {e.reason}: {e.message}"[:300]) from e
            raise
        if initial and not self._stop.is_set():
            raise _NoWatchListError("the watch ended before the initial-events-end bookmark")

    def _event(self, resource: Resource, event: Any) -> tuple[str, dict[str, Any], str | None]:
        """An event's type, object and resourceVersion; an ERROR event raises."""
        if not isinstance(event, dict):
            raise AcmError(errors.API_SERVER_ERROR, f"a watch event of {resource.plural} is not an object")
        kind, obj = event.get("type"), event.get("object")
        obj = obj if isinstance(obj, dict) else {}
        if kind == "ERROR":
            self._error_event(obj)
        if not isinstance(obj.get("metadata", {}), dict):
            raise AcmError(errors.API_SERVER_ERROR, f"a watch event of {resource.plural} has no metadata")
        meta = _mapping(obj.get("metadata"))
        return str(kind), obj, _resource_version(meta)

    def _bookmark(
        self,
        resource: Resource,
        place: _Place,
        obj: dict[str, Any],
        version: str | None,
        seen: set[ObjectId] | None,
    ) -> bool:
        """A bookmark moves the place on; the one ending the initial state (``seen`` given)
        makes the picture whole. Whether it ended the initial state."""
        meta = _mapping(obj.get("metadata"))
        annotations = _mapping(meta.get("annotations"))
        if seen is not None:
            if annotations.get(INITIAL_EVENTS_END) != "true":
                return False
            if version is None:
                raise _PlaceLostError("the initial-events-end bookmark has no resourceVersion")
            self._synced(resource, place, version, seen, connected=True)
            return True
        if version is not None:
            with self._lock:
                place.version = version
        return False

    def _error_event(self, status: dict[str, Any]) -> None:
        """An ERROR event ends the watch. One saying its resourceVersion is gone, or any error but
        a transient one, starts over (events may be lost); a transient one resumes after a pause."""
        code = status.get("code")
        code = code if isinstance(code, int) else 0
        reason, message = str(status.get("reason", ""))[:100], str(status.get("message", ""))[:300]
        if _status_lost(code, reason, message) or not _transient(code):
            raise _PlaceLostError(f"error event: {code} {reason}: {message}")
        raise ApiError(code, reason, message)

    def _relist(self, resource: Resource, place: _Place, seen: set[ObjectId]) -> None:
        """The whole current state by LIST, page by page (one snapshot: every page is read at the
        first one's resourceVersion); the watch goes on from its resourceVersion."""
        token = None
        for _ in range(MAX_LIST_PAGES):
            if self._stop.is_set():
                return
            try:
                page = self.cluster.request(
                    "GET",
                    resource.collection(self.scope),
                    query={
                        "labelSelector": f"{metadata.SYNC_LABEL}={self.sync}",
                        "limit": LIST_PAGE,
                        "continue": token,
                    },
                )
            except ApiError as e:
                if _status_lost(e.status, e.reason, e.message):  # the snapshot expired: again
                    raise _PlaceLostError(f"list: {e.status} {e.reason}") from e
                raise
            page = page if isinstance(page, dict) else {}
            items = page.get("items")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    seen.add(self._oid(resource, item))
                    self.observe(resource, "ADDED", item)
            meta = _mapping(page.get("metadata"))
            token = meta.get("continue")
            if not token:
                version = _resource_version(meta)
                if version is None:
                    raise AcmError(
                        errors.API_SERVER_ERROR, f"a list of {resource.plural} has no resourceVersion"
                    )
                self._synced(resource, place, version, seen, connected=False)  # until the watch opens
                return
        raise AcmError(
            errors.API_SERVER_ERROR, f"a list of {resource.plural} ran past {MAX_LIST_PAGES} pages"
        )

    @staticmethod
    def _oid(resource: Resource, obj: dict[str, Any]) -> ObjectId:
        meta = _mapping(obj.get("metadata"))
        return ObjectId(
            resource.group_kind.group,
            resource.group_kind.kind,
            str(meta.get("namespace", "")) if resource.namespaced else "",
            str(meta.get("name", "")),
        )

    def _missed(self, resource: Resource, seen: set[ObjectId]) -> None:
        """After a start over: each declared object of ``resource`` the current state lacked is
        read; one that is gone was deleted while nobody watched and is created again, one that
        lost the sync's labels is compared (and repaired) as any edit."""
        with self._lock:
            missing = [
                c
                for oid, c in self._desired.items()
                if oid.group_kind == resource.group_kind
                and _version(c) in (None, resource.version)
                and oid not in seen
            ]
        for change in missing:
            if self._stop.is_set():
                return
            try:
                live = self.cluster.request("GET", resource.path_of(change.id))
            except ApiError as e:
                if e.status == 404:
                    ref = {"name": change.id.name, "namespace": change.id.namespace}
                    self.observe(resource, "DELETED", {"metadata": ref})
                else:
                    log.info(
                        "watch: a declared object not read",
                        extra={"fields": {"object": change.subject, "error": str(e.to_acm())}},
                    )
                continue
            except AcmError as e:
                log.info(
                    "watch: a declared object not read",
                    extra={"fields": {"object": change.subject, "error": str(e)}},
                )
                continue
            if isinstance(live, dict):
                self.observe(resource, "MODIFIED", live)

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
