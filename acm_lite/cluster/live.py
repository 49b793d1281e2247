"""Live state: one paginated LIST per resource type, indexed by object identity."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.cluster.discovery import Discovery, Resource
from acm_lite.objects import GroupKind, ObjectId

PAGE = 500


def list_all(cluster: Cluster, resource: Resource, label_selector: str | None = None
             ) -> list[dict[str, Any]]:
    """Every object of one resource type, across namespaces, page by page."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = cluster.request("GET", resource.collection(), query={
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


def snapshot(cluster: Cluster, discovery: Discovery, kinds: Iterable[GroupKind],
             concurrency: int = 8) -> dict[ObjectId, dict[str, Any]]:
    """Live objects of the given kinds; kinds the cluster does not serve yet are skipped."""
    served = [r for gk in sorted(set(kinds)) if (r := discovery.find(gk)) is not None]

    def one(resource: Resource) -> list[tuple[ObjectId, dict[str, Any]]]:
        try:
            return [(_oid(resource.group_kind, i), i) for i in list_all(cluster, resource)]
        except ApiError as e:
            if e.status == 404:  # the CRD went away between discovery and list
                return []
            raise e.to_acm(f"list {resource.plural}") from e

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return {oid: item for batch in pool.map(one, served) for oid, item in batch}
