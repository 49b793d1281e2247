"""HierarchyConfigs in ``system/``: KNV1042 (unknown mode), KNV1041 (kinds that cannot be
inherited), KNV1046 (cluster-scoped kinds). Also builds the inheritance table they define."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.kinds import Scope, Scoper
from acm_lite.objects import GroupKind, Manifest

MODES = frozenset({"none", "inherit", "hierarchicalRef", ""})


def _resources(obj: Manifest) -> list[dict[str, object]]:
    spec = obj.spec
    return [r for r in spec.get("resources") or [] if isinstance(r, dict)]


def _group_kinds(resource: dict[str, object]) -> list[GroupKind]:
    group = str(resource.get("group", ""))
    names = resource.get("kinds") or [""]
    return [GroupKind(group, str(k)) for k in names] if isinstance(names, list) else []


def check(objs: list[Manifest], scoper: Scoper) -> list[Problem]:
    problems = []
    for obj in (o for o in objs if o.group_kind == kinds.HIERARCHY_CONFIG):
        for resource in _resources(obj):
            mode = resource.get("hierarchyMode", "")
            if mode not in MODES:
                problems.append(Problem.about(errors.ILLEGAL_HIERARCHY_MODE,
                                              f"hierarchyMode {mode!r} is not one of none, inherit",
                                              obj))
            for gk in _group_kinds(resource):
                if gk == kinds.NAMESPACE or gk.group == kinds.CONFIGMANAGEMENT_GROUP or not gk.kind:
                    problems.append(Problem.about(errors.UNSUPPORTED_RESOURCE_IN_HIERARCHY_CONFIG,
                                                  f"{gk or 'an empty kind'} cannot be configured "
                                                  "for inheritance", obj))
                elif scoper.scope(gk) is Scope.CLUSTER:
                    problems.append(Problem.about(
                        errors.CLUSTER_SCOPED_RESOURCE_IN_HIERARCHY_CONFIG,
                        f"{gk} is cluster-scoped and cannot be inherited", obj))
    return problems


def modes(objs: list[Manifest]) -> dict[GroupKind, str]:
    """GroupKind → effective hierarchy mode ("inherit" or "none")."""
    table: dict[GroupKind, str] = {}
    for obj in (o for o in objs if o.group_kind == kinds.HIERARCHY_CONFIG):
        for resource in _resources(obj):
            mode = str(resource.get("hierarchyMode", "")) or "inherit"
            for gk in _group_kinds(resource):
                table[gk] = "none" if mode == "none" else "inherit"
    return table
