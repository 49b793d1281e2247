"""Waiting until applied objects are Current and pruned ones are gone, with health computed as
kstatus computes it (``acm_lite.health``), as cli-utils' wait tasks (Config Sync's applier) and
Flux's ``wait`` do.

The objects are read by polling, first at once (objects Current when applied cost one round),
then with a backoff up to ``MAX_DELAY``, until ``timeout``. Each round reads, per kind and
namespace, the objects still pending: two or more by a list with the sync's label selector (one
request for a whole namespace of ConfigMaps), one (or one the list did not return) by a GET.
An object being waited for is settled once it is Current (or Failed: kstatus's terminal state;
``fail_fast`` ends the whole wait there), a pruned one once it is NotFound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acm_lite import errors, health
from acm_lite.cluster.client import ApiError, Client
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.errors import AcmError, Problem
from acm_lite.health import Health, Status
from acm_lite.objects import ObjectId, split_api_version
from acm_lite.plan.changeset import Change, Outcome, Result

FIRST_DELAY = 0.2  # seconds before the second round
MAX_DELAY = 2.0  # the backoff's ceiling between rounds
PAGE = 500  # objects per list page
MAX_PAGES = 100  # pages one list may take in one round; what is left is read by GETs

# Results whose object is waited for: applied, or declared and left as it was.
_WAITED = frozenset({Outcome.CREATED, Outcome.CONFIGURED, Outcome.UNCHANGED})


@dataclass(frozen=True)
class Target:
    """One object to wait for, where it is read, and whether it is waited for until gone."""

    change: Change
    resource: Resource
    gone: bool = False  # pruned: settled once NotFound

    @property
    def id(self) -> ObjectId:
        return self.change.id

    def reached(self, seen: Health) -> bool:
        """Whether ``seen`` is what the wait is for: Current, or NotFound once pruned."""
        return seen.status is (Status.NOT_FOUND if self.gone else Status.CURRENT)

    def settled(self, seen: Health) -> bool:
        """Whether to stop reading the object: reached, or Failed (kstatus's terminal state)."""
        return self.reached(seen) or (not self.gone and seen.status is Status.FAILED)


@dataclass
class Waited:
    """What a wait saw: each target's last health, the time it took, and whether it ran out."""

    targets: list[Target]
    health: dict[ObjectId, Health] = field(default_factory=dict)
    seconds: float = 0.0
    timed_out: bool = False
    timeout: float = 0.0
    error: AcmError | None = None  # the API server could not be reached: the wait stopped

    @property
    def unsettled(self) -> list[Target]:
        """The targets whose last health is not what the wait was for, in their order."""
        return [t for t in self.targets if not t.reached(self.health.get(t.id, _UNREAD))]

    def counts(self) -> dict[str, int]:
        """Targets per status, every status listed."""
        out = {s.value: 0 for s in Status}
        for t in self.targets:
            out[self.health.get(t.id, _UNREAD).status.value] += 1
        return out

    def problems(self) -> list[Problem]:
        """One coded problem per target not Current (or not gone), naming its status, reason
        and message, as Config Sync words a wait that failed or timed out."""
        out = []
        for t in self.unsettled:
            seen = self.health.get(t.id, _UNREAD)
            if seen.status is Status.FAILED:
                why = "reconcile failed"
            elif self.timed_out:
                why = f"reconcile timeout after {self.timeout:g}s"
            else:
                why = "not settled when the wait stopped"
            what = f"{t.id} to be deleted" if t.gone else str(t.id)
            detail = seen.status.value + (f" ({seen.reason})" if seen.reason else "")
            if seen.message:
                detail += f": {seen.message}"
            error = AcmError(errors.APPLY_ERROR, f"failed to wait for {what}: {why}: {detail}")
            manifest = t.change.manifest
            if manifest is not None:
                out.append(error.to_problem(source=manifest.source, obj=manifest.describe()))
            else:
                out.append(error.to_problem(obj=t.id.describe()))
        return out


_UNREAD = Health(Status.UNKNOWN, "NotRead", "not read yet")


def targets(results: Iterable[Result], discovery: Discovery) -> list[Target]:
    """The objects a pass's results leave to wait for: those applied or unchanged (declared), to
    be Current, and those pruned, to be gone. An object whose kind is no longer served is not
    waited for when pruned (it went with its CRD)."""
    out = []
    for r in results:
        change = r.change
        gone = r.outcome is Outcome.PRUNED
        if not gone and not (r.outcome in _WAITED and change.manifest is not None):
            continue
        resource = _resource_of(change, discovery)
        if resource is not None:
            out.append(Target(change, resource, gone))
    return out


def _resource_of(change: Change, discovery: Discovery) -> Resource | None:
    gk = change.id.group_kind
    if change.manifest is not None:
        version: str | None = change.manifest.version
    else:
        version = split_api_version(str((change.live or {}).get("apiVersion", "")))[1] or None
    return discovery.find(gk, version, fallback=True)


def wait(
    cluster: Client,
    waiting_for: Sequence[Target],
    timeout: float,
    *,
    selector: str | None = None,
    fail_fast: bool = True,
    on_round: Callable[[Waited], None] = lambda _w: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Read ``waiting_for`` until each is settled (or, ``fail_fast``, one is Failed) or
    ``timeout`` seconds passed. ``selector`` is the label selector every target carries (lists
    use it); ``on_round`` hears of each round. An API server that cannot be reached raises its
    coded error (transient)."""
    started = clock()
    deadline = started + timeout
    waited = Waited(list(waiting_for), timeout=timeout)
    pending = list(waiting_for)
    delay = FIRST_DELAY
    while pending:
        waited.health.update(read(cluster, pending, selector))
        pending = [t for t in pending if not t.settled(waited.health[t.id])]
        waited.seconds = clock() - started
        on_round(waited)
        if fail_fast and any(
            waited.health[t.id].status is Status.FAILED for t in waited.targets if not t.gone
        ):
            break
        remaining = deadline - clock()
        if pending and remaining <= 0:
            waited.timed_out = True
            break
        if pending:
            sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_DELAY)
    waited.seconds = clock() - started
    return waited


def read(cluster: Client, reading: Sequence[Target], selector: str | None) -> dict[ObjectId, Health]:
    """The health of each of ``reading`` now; NotFound for one that does not exist, Unknown
    (with the API server's answer) for one that cannot be read."""
    groups: dict[tuple[Resource, str], list[Target]] = {}
    for t in reading:
        namespace = t.id.namespace if t.resource.namespaced else ""
        groups.setdefault((t.resource, namespace), []).append(t)
    seen: dict[ObjectId, Health] = {}
    for (resource, namespace), group in groups.items():
        if selector and len(group) > 1:
            seen.update(_listed(cluster, resource, namespace, group, selector))
        for t in group:
            if t.id not in seen:
                seen[t.id] = _get(cluster, t)
    return seen


def _listed(
    cluster: Client, resource: Resource, namespace: str, group: list[Target], selector: str
) -> dict[ObjectId, Health]:
    """The health of the group's objects a list with ``selector`` returns (the others are left
    to GETs); nothing when the list fails."""
    wanted = {t.id.name: t.id for t in group}
    kind = resource.group_kind
    out: dict[ObjectId, Health] = {}
    token: str | None = None
    for _ in range(MAX_PAGES):
        try:
            page = cluster.request(
                "GET",
                resource.collection(namespace or None),
                query={"limit": PAGE, "continue": token, "labelSelector": selector},
            )
        except ApiError:
            return out
        if not isinstance(page, Mapping):
            return out
        items = page.get("items")
        for item in items if isinstance(items, list) else ():
            name = _name(item)
            oid = wanted.get(name) if name is not None else None
            if oid is not None:
                # list items carry no kind or apiVersion; kstatus's rules are chosen by them
                out[oid] = health.compute({**item, "apiVersion": resource.api_version, "kind": kind.kind})
        metadata = page.get("metadata")
        token = metadata.get("continue") if isinstance(metadata, Mapping) else None
        if not token or not isinstance(token, str):
            break
    return out


def _name(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    metadata = item.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else None


def _get(cluster: Client, target: Target) -> Health:
    try:
        body = cluster.request("GET", target.resource.path_of(target.id))
    except ApiError as e:
        if e.status == 404:
            return health.compute(None)
        return Health(Status.UNKNOWN, e.reason or str(e.status), e.message[: health.MAX_MESSAGE])
    if not isinstance(body, Mapping):
        return Health(Status.UNKNOWN, "Unreadable", "the API server answered with something not an object")
    return health.compute(body)
