"""What acm-lite knows about kinds offline: built-in kinds (from a real 1.37 API server's
discovery, in ``data/builtin_kinds.json``), Config Sync's own kinds, CRDs declared in the source,
and the kinds a HierarchyConfig names. No I/O beyond loading the packaged table once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

from acm_lite.objects import GroupKind, Manifest

CONFIGMANAGEMENT_GROUP = "configmanagement.gke.io"
CLUSTERREGISTRY_GROUP = "clusterregistry.k8s.io"
REPO = GroupKind(CONFIGMANAGEMENT_GROUP, "Repo")
HIERARCHY_CONFIG = GroupKind(CONFIGMANAGEMENT_GROUP, "HierarchyConfig")
NAMESPACE_SELECTOR = GroupKind(CONFIGMANAGEMENT_GROUP, "NamespaceSelector")
CLUSTER_SELECTOR = GroupKind(CONFIGMANAGEMENT_GROUP, "ClusterSelector")
SYNC = GroupKind(CONFIGMANAGEMENT_GROUP, "Sync")
CLUSTER = GroupKind(CLUSTERREGISTRY_GROUP, "Cluster")
NAMESPACE = GroupKind("", "Namespace")
CRD = GroupKind("apiextensions.k8s.io", "CustomResourceDefinition")

# Gatekeeper's groups: templates, constraints and expansion templates, and the Config and SyncSets
# that say which kinds referential policies read, are policy for acm-lite's in-process Policy
# Controller, not objects to apply.
GATEKEEPER_CONFIG = GroupKind("config.gatekeeper.sh", "Config")  # namespaced (gatekeeper-system)
POLICY_GROUPS = frozenset(
    {
        "templates.gatekeeper.sh",
        "constraints.gatekeeper.sh",
        "expansion.gatekeeper.sh",
        "config.gatekeeper.sh",
        "syncset.gatekeeper.sh",
    }
)

# Objects that steer parsing and are never applied to a cluster.
SOURCE_ONLY = frozenset({REPO, HIERARCHY_CONFIG, NAMESPACE_SELECTOR, CLUSTER_SELECTOR, CLUSTER})


class Scope(Enum):
    CLUSTER = "Cluster"
    NAMESPACED = "Namespaced"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class KindInfo:
    group_kind: GroupKind
    namespaced: bool
    plural: str
    versions: tuple[str, ...]  # served versions, preferred first


@cache
def builtin() -> dict[GroupKind, KindInfo]:
    """Every kind a stock kube-apiserver serves."""
    data = json.loads(resources.files("acm_lite").joinpath("data/builtin_kinds.json").read_text())
    merged: dict[GroupKind, dict[str, Any]] = {}
    for entry in data["kinds"]:
        gk = GroupKind(entry["group"], entry["kind"])
        info = merged.setdefault(
            gk, {"namespaced": entry["namespaced"], "plural": entry["plural"], "versions": []}
        )
        if entry["preferred"]:
            info["versions"].insert(0, entry["version"])
        else:
            info["versions"].append(entry["version"])
    return {gk: KindInfo(gk, v["namespaced"], v["plural"], tuple(v["versions"])) for gk, v in merged.items()}


def kubernetes_version() -> str:
    data = json.loads(resources.files("acm_lite").joinpath("data/builtin_kinds.json").read_text())
    return str(data["kubernetesVersion"])


_SOURCE_KIND_SCOPES = {gk: Scope.CLUSTER for gk in SOURCE_ONLY}


def crd_info(crd: Manifest) -> KindInfo | None:
    """The kind a CRD manifest defines, or None if it is too malformed to tell."""
    spec = crd.spec
    names = spec.get("names")
    if not isinstance(names, dict):
        return None
    group, kind = spec.get("group"), names.get("kind")
    if not isinstance(group, str) or not isinstance(kind, str):
        return None
    listed = spec.get("versions")
    versions = [v.get("name") for v in (listed if isinstance(listed, list) else []) if isinstance(v, dict)]
    return KindInfo(
        GroupKind(group, kind),
        spec.get("scope") != "Cluster",
        str(names.get("plural", "")),
        tuple(v for v in versions if isinstance(v, str)),
    )


def hierarchy_resources(config: Manifest) -> list[dict[str, object]]:
    """The entries of a HierarchyConfig's ``spec.resources`` that are objects."""
    spec = config.spec
    return [r for r in spec.get("resources") or [] if isinstance(r, dict)]


def hierarchy_group_kinds(resource: dict[str, object]) -> list[GroupKind]:
    """The kinds one HierarchyConfig entry names (one with an empty kind when it names none)."""
    group = str(resource.get("group", ""))
    names = resource.get("kinds") or [""]
    return [GroupKind(group, str(k)) for k in names] if isinstance(names, list) else []


class Scoper:
    """Answers "is this kind namespaced?" from built-ins, source-only kinds and declared CRDs."""

    def __init__(self, declared: list[Manifest], extra: dict[GroupKind, KindInfo] | None = None):
        self._kinds = dict(builtin())
        self._kinds.update(extra or {})
        for manifest in declared:
            if manifest.group_kind == CRD:
                info = crd_info(manifest)
                if info:
                    self._kinds[info.group_kind] = info

    def scope(self, gk: GroupKind) -> Scope:
        if gk in _SOURCE_KIND_SCOPES:
            return _SOURCE_KIND_SCOPES[gk]
        if gk == GATEKEEPER_CONFIG:  # read in-process, never applied; Gatekeeper's is namespaced
            return Scope.NAMESPACED
        if gk.group in POLICY_GROUPS:  # evaluated in-process, never applied
            return Scope.CLUSTER
        info = self._kinds.get(gk)
        if info is None:
            return Scope.UNKNOWN
        return Scope.NAMESPACED if info.namespaced else Scope.CLUSTER

    def info(self, gk: GroupKind) -> KindInfo | None:
        return self._kinds.get(gk)
