"""What belongs to the syncer itself may not be declared in a source: KNV1034 (its namespaces,
and objects in them) and KNV1043 (its own kinds, but for RepoSync). A repository that could
declare them could overwrite, or on removal prune, every sync's status and inventory. A RepoSync
may be declared (by the root repository, as in Config Sync): it lives in the namespace it syncs,
and runs with the rights bound there, never acm-lite's own."""

from __future__ import annotations

from acm_lite import api, errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

CONFIG_SYNC_NAMESPACE = "config-management-system"
_OWN_GROUP, _NAMESPACE = api.GROUP, kinds.NAMESPACE  # bound once: this runs for every object


def reserved_namespaces() -> frozenset[str]:
    """Config Sync's namespace and acm-lite's own (the configured system namespace included)."""
    return frozenset({CONFIG_SYNC_NAMESPACE, *api.own_namespaces()})


def check(obj: Manifest, reserved: frozenset[str] | None = None) -> list[Problem]:
    reserved = reserved if reserved is not None else reserved_namespaces()
    if obj.group == _OWN_GROUP and obj.kind != api.REPO_SYNC:
        return [
            Problem.about(
                errors.UNSUPPORTED_OBJECT,
                f"{obj.kind} is acm-lite's own kind ({api.GROUP}) and may not be declared in a source",
                obj,
                hint="configure syncs with `acm-lite serve --config` or the chart",
            )
        ]
    if obj.group_kind == _NAMESPACE and obj.name in reserved:
        return [
            Problem.about(
                errors.ILLEGAL_NAMESPACE,
                f"the {obj.name!r} Namespace is reserved for the syncer and must not be declared",
                obj,
            )
        ]
    if obj.namespace in reserved:
        return [
            Problem.about(
                errors.ILLEGAL_NAMESPACE,
                f"objects must not be declared in the reserved namespace {obj.namespace!r}",
                obj,
            )
        ]
    return []
