"""Deletion propagation: what happens to a sync's objects when its RootSync is deleted.

With ``deletion-propagation-policy: Foreground`` (Config Sync's ``configsync.gke.io/`` key or
acm-lite's ``acm-lite.io/`` one) the RootSync carries a finalizer, and deleting it deletes every
object its inventory records, in reverse apply order (namespaced objects, cluster-scoped ones,
Namespaces, CRDs), one level only once the one before is gone. Protected objects (``default``,
``kube-*``, acm-lite's namespaces and kinds) are never deleted, only unmarked; an object another
sync now manages is left alone. Once every object is gone the inventory and the health record are
deleted and the finalizer is removed. Without the annotation (or with ``Orphan``) the objects stay
and acm-lite's labels and annotations are taken off them, as Config Sync's Orphan leaves them.

Each call does one bounded round (``budget`` seconds) and says how far it got; the caller retries
with backoff. Cluster I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from acm_lite import api, errors, metadata
from acm_lite.apply import inventory, writes
from acm_lite.apply import inventory_parts as parts
from acm_lite.cluster.client import ApiError, Client
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId
from acm_lite.plan import order, ownership, protected
from acm_lite.status import model, resources, store
from acm_lite.status.model import State

FINALIZER = "configsync.gke.io/reconciler"  # Config Sync's name, so its habits carry over
POLICY_KEYS = (f"{api.GROUP}/deletion-propagation-policy", metadata.DELETION_PROPAGATION_POLICY)
FOREGROUND, ORPHAN = "Foreground", "Orphan"
FINALIZING, FINALIZER_FAILURE = "ReconcilerFinalizing", "ReconcilerFinalizerFailure"
BUDGET = 60.0  # seconds one round may spend before it reports and yields
MAX_REPORTED = 20  # objects named in a status, at most


@dataclass
class Round:
    """How far one round got: objects deleted (or unmarked), those still terminating, problems."""

    acted: int = 0
    waiting: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    done: bool = False


def _meta(item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("metadata")
    return meta if isinstance(meta, dict) else {}


def policy(item: dict[str, Any]) -> str:
    """The RootSync's deletion propagation policy: Foreground only when one of the keys says so
    (acm-lite's own first), otherwise Orphan."""
    annotations = _meta(item).get("annotations")
    annotations = annotations if isinstance(annotations, dict) else {}
    for key in POLICY_KEYS:
        if key in annotations:
            return FOREGROUND if annotations[key] == FOREGROUND else ORPHAN
    return ORPHAN


def deleting(item: dict[str, Any]) -> bool:
    return bool(_meta(item).get("deletionTimestamp"))


def finalizers(item: dict[str, Any]) -> list[str]:
    found = _meta(item).get("finalizers")
    return [f for f in found if isinstance(f, str)] if isinstance(found, list) else []


def has_finalizer(item: dict[str, Any]) -> bool:
    return FINALIZER in finalizers(item)


def set_finalizer(cluster: Client, item: dict[str, Any], present: bool) -> None:
    """Add or remove the finalizer; a no-op when it is already so. The resourceVersion makes the
    patch fail (409) rather than overwrite a list another client changed meanwhile."""
    current = finalizers(item)
    if (FINALIZER in current) == present:
        return
    wanted = [*current, FINALIZER] if present else [f for f in current if f != FINALIZER]
    meta = _meta(item)
    patch = {"metadata": {"finalizers": wanted or None, "resourceVersion": meta.get("resourceVersion")}}
    path = store.path_of(
        _kind(item), str(meta.get("namespace") or api.SYSTEM_NAMESPACE), str(meta.get("name"))
    )
    writes.send(cluster, writes.merge_patch(path, patch, field_manager=api.FIELD_MANAGER))


def _kind(item: dict[str, Any]) -> str:
    return api.REPO_SYNC if item.get("kind") == api.REPO_SYNC else api.ROOT_SYNC


def _reverse_levels(ids: set[ObjectId]) -> list[list[ObjectId]]:
    """The recorded objects by apply level, last applied first."""
    by_level: dict[int, list[ObjectId]] = {}
    for oid in ids:
        by_level.setdefault(order.base_level(oid), []).append(oid)
    return [sorted(by_level[level], key=str) for level in sorted(by_level, reverse=True)]


def _live(cluster: Client, path: str) -> dict[str, Any] | None:
    try:
        found = cluster.request("GET", path)
    except ApiError as e:
        if e.status == 404:
            return None
        raise
    return found if isinstance(found, dict) else None


def _problem(sync: str, oid: ObjectId, what: str, error: ApiError | AcmError) -> Problem:
    cause = error.to_acm() if isinstance(error, ApiError) else error
    return Problem(
        errors.FINALIZE_FAILED,
        f"the sync {sync!r} is being deleted, but {oid} could not be {what}: {cause.code}: {cause.message}",
        obj=oid.describe(),
        hint="allow acm-lite to do it, or do it by hand; the daemon retries",
    )


class _Finalize:
    """One round over one sync's inventory (read through ``cluster``); the objects read, deleted
    or unmarked through ``target`` (a RepoSync's ServiceAccount when deleting)."""

    def __init__(
        self, cluster: Client, sync: str, *, foreground: bool, budget: float, target: Client | None = None
    ):
        self.cluster, self.sync, self.foreground = cluster, sync, foreground
        self.target = target or cluster
        self.deadline = time.monotonic() + budget
        self.discovery: Discovery | None = None
        self.round = Round()

    def _path(self, oid: ObjectId) -> str | None:
        """Where the object lives; None when the cluster no longer serves its kind (so none is left)."""
        if self.discovery is None:
            self.discovery = Discovery(self.target)
        found = self.discovery.find(oid.group_kind)
        return found.path_of(oid) if found is not None else None

    def run(self) -> Round:
        ids = inventory.read(self.cluster, self.sync)
        for level in _reverse_levels(ids):
            left = False
            for oid in level:
                if time.monotonic() > self.deadline:
                    self.round.waiting.append("the rest (this round's time is up)")
                    return self.round
                left = not self._one(oid) or left
            if left or self.round.problems:
                return self.round  # the next level waits until this one is gone
        self.round.done = True
        return self.round

    def _one(self, oid: ObjectId) -> bool:
        """Act on one recorded object; True once nothing more is to be done with it."""
        try:
            path = self._path(oid)
            live = _live(self.target, path) if path is not None else None
            if path is None or live is None or metadata.owner(live) not in (self.sync, None):
                return True  # gone, or another sync's now
            if metadata.owner(live) is None:
                return True  # not marked as ours: leave it as it is
            if not self.foreground or protected.never_delete(oid):
                self._unmark(path)
                return True
            if _meta(live).get("deletionTimestamp"):
                self.round.waiting.append(str(oid))
                return False
            uid = _meta(live).get("uid")
            writes.send(self.target, writes.delete(path, uid=uid, propagation="Background"))
            self.round.acted += 1
            if _live(self.target, path) is None:
                return True
            self.round.waiting.append(str(oid))
            return False
        except ApiError as e:
            if e.status in (404, 409):  # gone, or replaced by another object of that name
                return True
            self.round.problems.append(_problem(self.sync, oid, self._verb(oid), e))
        except AcmError as e:
            self.round.problems.append(_problem(self.sync, oid, self._verb(oid), e))
        return False

    def _verb(self, oid: ObjectId) -> str:
        return "deleted" if self.foreground and not protected.never_delete(oid) else "unmarked"

    def _unmark(self, path: str) -> None:
        writes.send(
            self.target,
            writes.merge_patch(path, ownership.unmanage_patch(), field_manager=api.FIELD_MANAGER),
        )
        self.round.acted += 1


def finalize(
    cluster: Client, sync: str, *, foreground: bool, budget: float = BUDGET, target: Client | None = None
) -> Round:
    """One round of deleting (``foreground``) or unmarking the sync's recorded objects; when
    every one is done, the inventory and the health record are deleted too (``done``). The
    objects are reached through ``target`` (default ``cluster``, which keeps the records)."""
    outcome = _Finalize(cluster, sync, foreground=foreground, budget=budget, target=target).run()
    if outcome.done:
        try:
            forget(cluster, sync)
        except (ApiError, AcmError) as e:
            cause = e.to_acm() if isinstance(e, ApiError) else e
            outcome.done = False
            outcome.problems.append(
                Problem(
                    errors.FINALIZE_FAILED,
                    f"the inventory or health record of the sync {sync!r} could not be deleted: "
                    f"{cause.code}: {cause.message}",
                    hint="allow acm-lite to delete resourceinventories and resourcestatuses",
                )
            )
    return outcome


def forget(cluster: Client, sync: str, namespace: str = api.SYSTEM_NAMESPACE) -> None:
    """Delete the sync's inventory parts and health record (ResourceInventories and
    ResourceStatuses labelled with its name)."""
    base = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}"
    for plural, selector in (
        (inventory.PLURAL, parts.selector(sync)),
        (resources.PLURAL, resources.selector(sync)),
    ):
        try:
            writes.send(cluster, writes.delete(f"{base}/{plural}", selector=selector))
        except ApiError as e:
            if e.status != 404:  # 404: the kind is not installed, so nothing was recorded
                raise
    try:  # the single object older versions wrote, named after the sync
        doc = cluster.request("GET", f"{base}/{inventory.PLURAL}/{sync}")
    except ApiError as e:
        if e.status == 404:
            return
        raise
    labels = _meta(doc).get("labels") if isinstance(doc, dict) else None
    if not (isinstance(labels, dict) and metadata.INVENTORY_SYNC_LABEL in labels):
        writes.send(cluster, writes.delete(f"{base}/{inventory.PLURAL}/{sync}", uid=_meta(doc).get("uid")))


def report(cluster: Client, item: dict[str, Any], outcome: Round) -> None:
    """Put how far finalizing got in the RootSync's status, in Config Sync's terms: the
    ``ReconcilerFinalizing`` condition while it works, ``ReconcilerFinalizerFailure`` with the
    errors when something refused, and the errors themselves in ``status.errors``."""
    meta = _meta(item)
    name = str(meta.get("name"))
    status = model.SyncStatus.from_status(
        item.get("status") if isinstance(item.get("status"), dict) else None
    )
    status.stage = "finalize"
    status.errors = [p.to_dict() for p in outcome.problems[:MAX_REPORTED]]
    status.state = State.ERROR if outcome.problems else State.PENDING
    waiting = outcome.waiting[:MAX_REPORTED]
    status.message = (
        f"deleting managed objects ({policy(item)}): {outcome.acted} acted on this round"
        + (f"; waiting for {', '.join(waiting)}" if waiting else "")
        + (f"; {len(outcome.problems)} could not be" if outcome.problems else "")
    )
    before = {c.get("type"): c for c in status.conditions}
    status.conditions = model.conditions(status, status.conditions)
    status.conditions.append(
        _condition(FINALIZING, "ResourcesDeleting", "Deleting managed resource objects", before)
    )
    if outcome.problems:
        first = outcome.problems[0]
        text = f"{len(outcome.problems)} error(s); first: {first.code.id} {first.message}"
        status.conditions.append(_condition(FINALIZER_FAILURE, "DestroyFailure", text, before))
    store.write_status(
        cluster, name, status, item, str(meta.get("namespace") or api.SYSTEM_NAMESPACE), kind=_kind(item)
    )


def _condition(kind: str, reason: str, message: str, before: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """A True condition, keeping the time it became True when it already was."""
    old = before.get(kind) or {}
    since = old.get("lastTransitionTime") if old.get("status") == "True" else None
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message[: model.MAX_CONDITION_MESSAGE],
        "lastTransitionTime": since if isinstance(since, str) else model.now(),
    }
