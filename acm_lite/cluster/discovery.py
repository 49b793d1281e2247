"""Which resources a cluster serves: GroupKind → every served version, plural, scope (REST paths
follow).

Uses aggregated discovery (two requests for the whole cluster), refreshed when a kind is missing,
for example right after a CRD became Established.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError
from acm_lite.objects import GroupKind, ObjectId

_AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


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
        base = (
            f"/apis/{self.group_kind.group}/{self.version}"
            if self.group_kind.group
            else f"/api/{self.version}"
        )
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def path(self, name: str, namespace: str = "") -> str:
        return f"{self.collection(namespace or None)}/{name}"

    def path_of(self, oid: ObjectId) -> str:
        return self.path(oid.name, oid.namespace if self.namespaced else "")


def _mappings(value: Any) -> list[dict[str, Any]]:
    """The objects of a list in a discovery document; anything else in it is skipped."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse_aggregated(doc: dict[str, Any], *, core: bool = False) -> dict[GroupKind, dict[str, Resource]]:
    """Every served version of each kind, the group's preferred version first. Entries too
    malformed to address (an aggregated API server may publish anything) are skipped; only
    ``core`` (/api) has a group without a name."""
    found: dict[GroupKind, dict[str, Resource]] = {}
    for group in _mappings(doc.get("items")):
        name = "" if core else _mapping(group.get("metadata")).get("name")
        for version in _mappings(group.get("versions")):  # preferred first
            served_as = version.get("version")
            for res in _mappings(version.get("resources")):
                kind = _mapping(res.get("responseKind")).get("kind")
                plural = res.get("resource")
                if not (kind and plural and served_as and isinstance(name, str) and (core or name)):
                    continue
                gk = GroupKind(name, str(kind))
                found.setdefault(gk, {}).setdefault(
                    str(served_as),
                    Resource(gk, str(served_as), str(plural), res.get("scope") == "Namespaced"),
                )
    return found


class Discovery:
    """A cached view of the cluster's resources: each kind at every version it is served at
    (objects are addressed at the version they were declared with, as kubectl does)."""

    def __init__(self, cluster: Client):
        self._cluster = cluster
        self._resources: dict[GroupKind, dict[str, Resource]] = {}
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        found: dict[GroupKind, dict[str, Resource]] = {}
        for root in ("/api", "/apis"):
            doc = self._get(root)
            if doc.get("kind") != "APIGroupDiscoveryList":
                raise AcmError(
                    errors.API_SERVER_ERROR,
                    "the API server does not offer aggregated discovery (Kubernetes 1.30+ is required)",
                )
            found.update(_parse_aggregated(doc, core=root == "/api"))
        with self._lock:
            self._resources = found
            self._missed: set[tuple[GroupKind, str | None]] = set()

    def _get(self, path: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._cluster.request("GET", path, accept=_AGGREGATED)
        except ApiError as e:
            raise e.to_acm(path) from e
        return result

    def find(self, gk: GroupKind, version: str | None = None, *, fallback: bool = False) -> Resource | None:
        """The resource serving ``gk`` at ``version`` (the preferred one when the version is
        None, or with ``fallback`` when that version is not served); None when not served."""
        with self._lock:
            served = self._resources.get(gk)
        if not served:
            return None
        if version is not None:
            found = served.get(version)
            if found is not None or not fallback:
                return found
        return next(iter(served.values()))

    def versions(self, gk: GroupKind) -> list[str]:
        """The versions ``gk`` is served at, the preferred one first."""
        with self._lock:
            return list(self._resources.get(gk) or {})

    def resource(self, gk: GroupKind, version: str | None = None, *, refresh: bool = True) -> Resource:
        """The resource serving ``gk`` at ``version`` (None: its preferred version); refreshes
        once before giving up, as a CRD may have just started serving it."""
        found = self.find(gk, version)
        if found is None and refresh and (gk, version) not in self._missed:
            self.refresh()  # once per address until the next refresh, not once per object
            found = self.find(gk, version)
            if found is None:
                with self._lock:
                    self._missed.add((gk, version))
        if found is not None:
            return found
        served = self.versions(gk)
        if not served:
            raise AcmError(
                errors.UNKNOWN_RESOURCE,
                f"the cluster serves no resource for {gk}",
                hint="declare or install its CustomResourceDefinition",
            )
        raise AcmError(
            errors.VERSION_NOT_SERVED,
            f"the cluster serves {gk} at {', '.join(served)}, not at {version!r}",
            hint=f"declare it at a served version (preferred: {served[0]})",
        )
