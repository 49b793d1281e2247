"""The in-cluster record of what one sync applied (a ResourceInventory in acm-lite-system).

Written as the union of old and new before applying, and as the final set after pruning, so a
sync killed halfway never forgets an object it may have created.
"""

from __future__ import annotations

from acm_lite import api
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.objects import ObjectId

PLURAL = "resourceinventories"


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def encode(oid: ObjectId) -> str:
    return f"{oid.group}/{oid.kind}/{oid.namespace}/{oid.name}"


def decode(entry: str) -> ObjectId:
    group, kind, namespace, name = entry.split("/", 3)
    return ObjectId(group, kind, namespace, name)


def read(cluster: Cluster, sync: str, namespace: str = api.SYSTEM_NAMESPACE) -> set[ObjectId]:
    """The recorded objects (empty when the sync never ran)."""
    try:
        doc = cluster.request("GET", _path(namespace, sync))
    except ApiError as e:
        if e.status == 404:
            return set()
        raise e.to_acm(f"{api.GROUP}/ResourceInventory {namespace}/{sync}") from e
    return {decode(entry) for entry in (doc.get("spec") or {}).get("objects") or []}


def write(cluster: Cluster, sync: str, objects: set[ObjectId],
          namespace: str = api.SYSTEM_NAMESPACE) -> None:
    body = {"apiVersion": api.API_VERSION, "kind": "ResourceInventory",
            "metadata": {"name": sync, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "acm-lite"}},
            "spec": {"count": len(objects), "objects": sorted(encode(o) for o in objects)}}
    try:
        cluster.request("PATCH", _path(namespace, sync), body=body,
                        query={"fieldManager": api.FIELD_MANAGER, "force": "true"},
                        content_type="application/apply-patch+yaml", decode=False)
    except ApiError as e:
        raise e.to_acm(f"{api.GROUP}/ResourceInventory {namespace}/{sync}") from e
