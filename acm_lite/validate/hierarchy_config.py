"""HierarchyConfigs in ``system/``: KNV1042 (unknown mode), KNV1041 (kinds that cannot be
inherited), KNV1046 (cluster-scoped kinds). The inheritance table they define is the hierarchical
format's (``parse/hierarchy.py``)."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.kinds import Scope, Scoper, hierarchy_group_kinds, hierarchy_resources
from acm_lite.objects import Manifest

MODES = frozenset({"none", "inherit", "hierarchicalRef", ""})


def check(objs: list[Manifest], scoper: Scoper) -> list[Problem]:
    problems = []
    for obj in (o for o in objs if o.group_kind == kinds.HIERARCHY_CONFIG):
        for resource in hierarchy_resources(obj):
            mode = resource.get("hierarchyMode", "")
            if mode not in MODES:
                problems.append(
                    Problem.about(
                        errors.ILLEGAL_HIERARCHY_MODE,
                        f"hierarchyMode {mode!r} is not one of none, inherit",
                        obj,
                    )
                )
            for gk in hierarchy_group_kinds(resource):
                if gk == kinds.NAMESPACE or gk.group == kinds.CONFIGMANAGEMENT_GROUP or not gk.kind:
                    problems.append(
                        Problem.about(
                            errors.UNSUPPORTED_RESOURCE_IN_HIERARCHY_CONFIG,
                            f"{gk or 'an empty kind'} cannot be configured for inheritance",
                            obj,
                        )
                    )
                elif scoper.scope(gk) is Scope.CLUSTER:
                    problems.append(
                        Problem.about(
                            errors.CLUSTER_SCOPED_RESOURCE_IN_HIERARCHY_CONFIG,
                            f"{gk} is cluster-scoped and cannot be inherited",
                            obj,
                        )
                    )
    return problems
