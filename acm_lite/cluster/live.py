"""Live state: one paginated LIST per resource type, indexed by object identity."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from acm_lite import kinds, metadata
from acm_lite.cluster.client import ApiError, Client
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.objects import GroupKind, ObjectId

PAGE = 500
# acm-lite's marks whose values repeat from object to object
_REPEATED = frozenset({metadata.MANAGED_BY_LABEL, metadata.SYNC_LABEL, metadata.COMMIT, metadata.SOURCE_PATH})


def lean(item: dict[str, Any]) -> dict[str, Any]:
    """A listed object as a pass keeps it: ``metadata.managedFields`` (most of a small object's
    size) cut down to what a pass reads of it, who applied the object at which version, and the
    marks every object of a sync shares (its sync, the commit, the source file) one string each;
    every other field as listed. Changes ``item`` in place and returns it."""
    meta = item.get("metadata")
    if not isinstance(meta, dict):
        return item
    for key in ("labels", "annotations"):
        marks = meta.get(key)
        if isinstance(marks, dict):
            for mark in _REPEATED.intersection(marks):
                if isinstance(value := marks[mark], str):
                    marks[mark] = sys.intern(value)
    if isinstance(managed := meta.get("managedFields"), list):
        meta["managedFields"] = [
            {k: entry[k] for k in ("manager", "operation", "apiVersion") if k in entry}
            for entry in managed
            if isinstance(entry, dict) and entry.get("operation") == "Apply"
        ]
    return item


def list_all(
    cluster: Client,
    resource: Resource,
    label_selector: str | None = None,
    namespace: str | None = None,
    *,
    keep: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every object of one resource type (in one namespace, or all), page by page; ``keep``
    (e.g. ``lean``) makes what is kept of each as its page arrives."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = cluster.request(
            "GET",
            resource.collection(namespace),
            query={"limit": PAGE, "continue": token, "labelSelector": label_selector},
        )
        for item in page.get("items") or []:
            item.setdefault("apiVersion", resource.api_version)  # lists omit them per item
            item.setdefault("kind", resource.group_kind.kind)
            items.append(keep(item) if keep is not None else item)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


@dataclass
class Budget:
    """What a bounded read may still hold: objects, and bytes of their JSON."""

    objects: int
    bytes: int

    @property
    def spent(self) -> bool:
        return self.objects <= 0 or self.bytes <= 0


def list_bounded(
    cluster: Client, resource: Resource, budget: Budget, namespace: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Every object of one resource type, page by page, until ``budget`` is spent (what it holds
    is taken from it); the objects, and whether some were left unread."""
    items: list[dict[str, Any]] = []
    token = None
    while not budget.spent:
        page = cluster.request(
            "GET",
            resource.collection(namespace),
            query={"limit": min(PAGE, budget.objects), "continue": token},
        )
        for item in page.get("items") or []:
            if budget.spent:
                return items, True
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.group_kind.kind)
            budget.objects -= 1
            budget.bytes -= len(json.dumps(item, separators=(",", ":")))
            items.append(item)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items, False
    return items, True


def _oid(gk: GroupKind, item: dict[str, Any]) -> ObjectId:
    meta = item.get("metadata") or {}
    return ObjectId(gk.group, gk.kind, meta.get("namespace", ""), meta.get("name", ""))


def _listed(
    cluster: Client,
    resource: Resource,
    namespace: str | None = None,
    label_selector: str | None = None,
    forbidden: set[GroupKind] | None = None,
) -> list[tuple[ObjectId, dict[str, Any]]]:
    gk = resource.group_kind
    try:
        listed = list_all(cluster, resource, label_selector, namespace, keep=lean)
        return [(_oid(gk, i), i) for i in listed]
    except ApiError as e:
        if e.status == 404:  # the CRD went away between discovery and list
            return []
        if e.status == 403 and forbidden is not None:  # the caller reports each object's refusal
            forbidden.add(gk)
            return []
        raise e.to_acm(f"list {resource.plural}") from e


def _unlabelled(
    resource: Resource, wanted: set[ObjectId], found: list[tuple[ObjectId, dict[str, Any]]]
) -> list[str | None]:
    """Where the wanted objects a labelled LIST did not return live (adoption candidates, or a
    first sync): the namespaces to list unfiltered, or [None] for a cluster-scoped kind."""
    missing = wanted - {oid for oid, _ in found}
    if not missing:
        return []
    if not resource.namespaced:
        return [None]
    return [*sorted({oid.namespace for oid in missing})]


def _addressed(
    discovery: Discovery, wanted: Iterable[ObjectId], versions: Mapping[ObjectId, str]
) -> dict[Resource, set[ObjectId]]:
    """The wanted objects by the resource they are read at: the version they are declared at
    when the cluster serves it, else (objects only recorded, or declared at a version no longer
    served) the kind's preferred version. Kinds the cluster does not serve are left out."""
    by_address: dict[tuple[str, str, str | None], set[ObjectId]] = {}
    for oid in wanted:
        by_address.setdefault((oid.group, oid.kind, versions.get(oid)), set()).add(oid)
    out: dict[Resource, set[ObjectId]] = {}
    for (group, kind, version), oids in sorted(
        by_address.items(), key=lambda a: (a[0][0], a[0][1], a[0][2] or "")
    ):
        resource = discovery.find(GroupKind(group, kind), version, fallback=True)
        if resource is not None:
            out.setdefault(resource, set()).update(oids)
    return out


def _merged(
    batches: Iterable[tuple[Resource, list[tuple[ObjectId, dict[str, Any]]]]],
    addressed: dict[Resource, set[ObjectId]],
) -> dict[ObjectId, dict[str, Any]]:
    """One live object per identity: a kind listed at several versions gives each object the
    body read at its own version (objects nobody asked for: the first version listed)."""
    lists = Counter(resource.group_kind for resource in addressed)
    first: dict[GroupKind, Resource] = {}
    own: dict[ObjectId, Resource] = {}
    for resource, oids in addressed.items():
        first.setdefault(resource.group_kind, resource)
        if lists[resource.group_kind] > 1:
            own.update(dict.fromkeys(oids, resource))
    out: dict[ObjectId, dict[str, Any]] = {}
    for resource, batch in batches:
        if lists[resource.group_kind] == 1:  # the usual case: one version per kind
            out.update(batch)
            continue
        default = first[resource.group_kind]
        out.update((oid, item) for oid, item in batch if own.get(oid, default) == resource)
    return out


def snapshot(
    cluster: Client,
    discovery: Discovery,
    wanted: Iterable[ObjectId],
    label_selector: str,
    *,
    concurrency: int = 8,
    scope: str | None = None,
    versions: Mapping[ObjectId, str] | None = None,
    forbidden: set[GroupKind] | None = None,
) -> dict[ObjectId, dict[str, Any]]:
    """Live state of the wanted objects (and any other object of their kinds that carries
    ``label_selector``), each read at the version ``versions`` declares it at (the preferred
    one for the rest); kinds the cluster does not serve yet are skipped. With ``forbidden`` (a
    sync acting as a ServiceAccount), a kind it may not list (403) is added there and read as
    holding nothing, rather than failing the whole read: writing its objects is then refused
    one by one, naming each.

    One labelled LIST per kind and version finds this sync's objects; the wanted objects it
    does not label yet are then listed unfiltered where they live, namespace by namespace. A
    tenant sync (``scope``) only ever lists inside its namespace. The LISTs of each round go
    out side by side."""
    addressed = _addressed(discovery, wanted, versions or {})
    served = list(addressed.items())
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        labelled = list(
            pool.map(
                lambda rw: _listed(
                    cluster,
                    rw[0],
                    scope if rw[0].namespaced else None,
                    label_selector=label_selector,
                    forbidden=forbidden,
                ),
                served,
            )
        )
        rest = [
            (resource, namespace)
            for (resource, want), found in zip(served, labelled, strict=True)
            for namespace in _unlabelled(resource, want, found)
        ]
        if scope is None and sum(1 for _, namespace in rest if namespace) > 1:
            existing = _namespaces(cluster, discovery)  # nothing lives in a namespace not there
            if existing is not None:
                rest = [(r, ns) for r, ns in rest if ns is None or ns in existing]
        unlabelled = list(pool.map(lambda rn: _listed(cluster, rn[0], rn[1], forbidden=forbidden), rest))
    return _merged(
        [
            *zip((r for r, _ in served), labelled, strict=True),
            *zip((r for r, _ in rest), unlabelled, strict=True),
        ],
        addressed,
    )


def _namespaces(cluster: Client, discovery: Discovery) -> set[str] | None:
    """The names of the cluster's namespaces; None when they cannot be listed."""
    resource = discovery.find(kinds.NAMESPACE)
    if resource is None:
        return None
    try:
        return {str((item.get("metadata") or {}).get("name")) for item in list_all(cluster, resource)}
    except ApiError:  # not allowed to list them: every namespace is listed on its own
        return None


def objects(
    cluster: Client,
    discovery: Discovery,
    wanted: Iterable[ObjectId],
    *,
    versions: Mapping[ObjectId, str] | None = None,
    concurrency: int = 8,
    forbidden_absent: bool = False,
) -> dict[ObjectId, dict[str, Any]]:
    """Live state of a few objects, one GET each at the version ``versions`` declares it at (the
    preferred one for the rest), side by side: what reading a handful of objects costs, whatever
    the number of objects of their kinds. Absent objects and kinds the cluster does not serve
    are left out, and with ``forbidden_absent`` (a sync acting as a ServiceAccount, as
    ``snapshot``'s ``forbidden``) so are objects it may not read; any other refusal raises."""
    addressed = _addressed(discovery, wanted, versions or {})
    calls = [(resource, oid) for resource, oids in addressed.items() for oid in oids]

    def get(call: tuple[Resource, ObjectId]) -> tuple[ObjectId, dict[str, Any] | None]:
        resource, oid = call
        try:
            found = cluster.request("GET", resource.path_of(oid))
        except ApiError as e:
            if e.status == 404 or (e.status == 403 and forbidden_absent):
                return oid, None
            raise e.to_acm(f"get {oid}") from e
        return oid, found if isinstance(found, dict) else None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return {oid: body for oid, body in pool.map(get, calls) if body is not None}
