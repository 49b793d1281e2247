"""Live state: one paginated LIST per resource type, indexed by object identity."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.objects import GroupKind, ObjectId

PAGE = 500


def list_all(cluster: Cluster, resource: Resource, label_selector: str | None = None,
             namespace: str | None = None) -> list[dict[str, Any]]:
    """Every object of one resource type (in one namespace, or all), page by page."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = cluster.request("GET", resource.collection(namespace), query={
            "limit": PAGE, "continue": token, "labelSelector": label_selector})
        for item in page.get("items") or []:
            item.setdefault("apiVersion", resource.api_version)  # lists omit them per item
            item.setdefault("kind", resource.group_kind.kind)
            items.append(item)
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def _oid(gk: GroupKind, item: dict[str, Any]) -> ObjectId:
    meta = item.get("metadata") or {}
    return ObjectId(gk.group, gk.kind, meta.get("namespace", ""), meta.get("name", ""))


def _listed(cluster: Cluster, resource: Resource, namespace: str | None = None,
            label_selector: str | None = None) -> list[tuple[ObjectId, dict[str, Any]]]:
    gk = resource.group_kind
    try:
        return [(_oid(gk, i), i) for i in list_all(cluster, resource, label_selector, namespace)]
    except ApiError as e:
        if e.status == 404:  # the CRD went away between discovery and list
            return []
        raise e.to_acm(f"list {resource.plural}") from e


def _kind_snapshot(cluster: Cluster, resource: Resource, wanted: set[ObjectId], *,
                   label_selector: str, scope: str | None) -> list[tuple[ObjectId, dict[str, Any]]]:
    """This sync's objects of one kind (one labelled LIST), then the wanted objects it does not
    label yet (adoption candidates, or first sync) with unfiltered LISTs where they live. A
    tenant sync (``scope``) only ever lists inside its namespace."""
    found = _listed(cluster, resource, scope if resource.namespaced else None,
                    label_selector=label_selector)
    missing = wanted - {oid for oid, _ in found}
    if not missing:
        return found
    if not resource.namespaced:
        return found + _listed(cluster, resource)
    for namespace in sorted({oid.namespace for oid in missing}):
        found += _listed(cluster, resource, namespace)
    return found


def snapshot(cluster: Cluster, discovery: Discovery, wanted: Iterable[ObjectId],
             label_selector: str, *, concurrency: int = 8, scope: str | None = None
             ) -> dict[ObjectId, dict[str, Any]]:
    """Live state of the wanted objects (and any other object of their kinds that carries
    ``label_selector``); kinds the cluster does not serve yet are skipped."""
    by_kind: dict[GroupKind, set[ObjectId]] = {}
    for oid in wanted:
        by_kind.setdefault(oid.group_kind, set()).add(oid)
    served = [(r, by_kind[gk]) for gk in sorted(by_kind) if (r := discovery.find(gk)) is not None]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        batches = pool.map(lambda rw: _kind_snapshot(cluster, rw[0], rw[1],
                                                     label_selector=label_selector, scope=scope),
                           served)
        return {oid: item for batch in batches for oid, item in batch}
