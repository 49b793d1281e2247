"""Which resources a cluster serves: GroupKind → version, plural, scope (REST paths follow).

Uses aggregated discovery (two requests for the whole cluster), refreshed when a kind is missing,
for example right after a CRD became Established.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError
from acm_lite.objects import GroupKind, ObjectId

_AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
               "application/json")


@dataclass(frozen=True)
class Resource:
    group_kind: GroupKind
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group_kind.group}/{self.version}" if self.group_kind.group else self.version

    def collection(self, namespace: str | None = None) -> str:
        base = (f"/apis/{self.group_kind.group}/{self.version}" if self.group_kind.group
                else f"/api/{self.version}")
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def path(self, name: str, namespace: str = "") -> str:
        return f"{self.collection(namespace or None)}/{name}"

    def path_of(self, oid: ObjectId) -> str:
        return self.path(oid.name, oid.namespace if self.namespaced else "")


def _parse_aggregated(doc: dict[str, Any]) -> dict[GroupKind, Resource]:
    found: dict[GroupKind, Resource] = {}
    for group in doc.get("items") or []:
        name = (group.get("metadata") or {}).get("name", "")
        for index, version in enumerate(group.get("versions") or []):  # preferred first
            for res in version.get("resources") or []:
                kind = (res.get("responseKind") or {}).get("kind")
                if not kind:
                    continue
                gk = GroupKind(name, kind)
                if gk in found and index > 0:
                    continue
                found[gk] = Resource(gk, version["version"], res["resource"],
                                     res.get("scope") == "Namespaced")
    return found


class Discovery:
    """A cached view of the cluster's resources."""

    def __init__(self, cluster: Cluster):
        self._cluster = cluster
        self._resources: dict[GroupKind, Resource] = {}
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        found: dict[GroupKind, Resource] = {}
        for root in ("/api", "/apis"):
            doc = self._get(root)
            if doc.get("kind") != "APIGroupDiscoveryList":
                raise AcmError(errors.API_SERVER_ERROR,
                               "the API server does not offer aggregated discovery (Kubernetes "
                               "1.30+ is required)")
            found.update(_parse_aggregated(doc))
        with self._lock:
            self._resources = found

    def _get(self, path: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._cluster.request("GET", path, accept=_AGGREGATED)
        except ApiError as e:
            raise e.to_acm(path) from e
        return result

    def find(self, gk: GroupKind) -> Resource | None:
        with self._lock:
            return self._resources.get(gk)

    def resource(self, gk: GroupKind, *, refresh: bool = True) -> Resource:
        """The resource serving ``gk``; refreshes once before giving up."""
        found = self.find(gk)
        if found is None and refresh:
            self.refresh()
            found = self.find(gk)
        if found is None:
            raise AcmError(errors.UNKNOWN_RESOURCE, f"the cluster serves no resource for {gk}",
                           hint="declare or install its CustomResourceDefinition")
        return found
