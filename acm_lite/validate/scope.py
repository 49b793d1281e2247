"""Scope rules: KNV1052 (namespace on a cluster-scoped object), KNV1004 (namespace-selector on a
cluster-scoped object), KNV1053 (both namespace and namespace-selector), KNV1029 (NamespaceSelectors
sharing a name), and the non-blocking KNV1021 (a kind nobody defines)."""

from __future__ import annotations

from collections import defaultdict

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.kinds import Scope, Scoper
from acm_lite.metadata import NAMESPACE_SELECTOR_ANNOTATION
from acm_lite.objects import Manifest


def _one(obj: Manifest, scope: Scope) -> Problem | None:
    has_selector = NAMESPACE_SELECTOR_ANNOTATION in obj.annotations
    if scope is Scope.CLUSTER and obj.namespace:
        return Problem.about(
            errors.ILLEGAL_NAMESPACE_ON_CLUSTER_SCOPED_RESOURCE,
            f"{obj.kind} is cluster-scoped and may not declare metadata.namespace",
            obj,
            hint="remove metadata.namespace",
        )
    if scope is Scope.CLUSTER and has_selector:
        return Problem.about(
            errors.ILLEGAL_SELECTOR_ANNOTATION,
            f"cluster-scoped objects may not declare {NAMESPACE_SELECTOR_ANNOTATION}",
            obj,
        )
    if scope is Scope.NAMESPACED and obj.namespace and has_selector:
        return Problem.about(
            errors.NAMESPACE_AND_SELECTOR,
            f"namespaced objects may not declare both metadata.namespace and {NAMESPACE_SELECTOR_ANNOTATION}",
            obj,
        )
    if scope is Scope.UNKNOWN:
        return Problem.about(
            errors.UNKNOWN_OBJECT_KIND,
            f"{obj.api_version}/{obj.kind} is neither built in nor defined by a CRD "
            "in the source; it must exist on the cluster",
            obj,
            hint="add its CustomResourceDefinition, or install it first",
        )
    return None


def check(objs: list[Manifest], scoper: Scoper) -> list[Problem]:
    problems = [p for o in objs if (p := _one(o, scoper.scope(o.group_kind))) is not None]
    by_name: dict[str, list[Manifest]] = defaultdict(list)
    for obj in objs:
        if obj.group_kind == kinds.NAMESPACE_SELECTOR:
            by_name[obj.name].append(obj)
    for name, same in sorted(by_name.items()):
        if len(same) > 1:
            problems += [
                Problem.about(
                    errors.NAME_COLLISION,
                    f"NamespaceSelectors must have unique names; {len(same)} are named {name!r}",
                    o,
                )
                for o in same
            ]
    return problems


def tenant(objs: list[Manifest], scoper: Scoper, namespace: str) -> list[Problem]:
    """KNV1058: a tenant (namespace-scoped) sync may declare only namespaced objects of its own
    namespace; everything else is refused before anything is applied."""
    problems = []
    for obj in objs:
        if obj.group_kind in kinds.SOURCE_ONLY or obj.group in kinds.POLICY_GROUPS:
            continue
        if scoper.scope(obj.group_kind) is not Scope.NAMESPACED:
            problems.append(
                Problem.about(
                    errors.BAD_SCOPE,
                    f"a sync scoped to namespace {namespace!r} may only declare "
                    f"namespaced objects; {obj.kind} is cluster-scoped",
                    obj,
                    hint="move it to the root sync's repository",
                )
            )
        elif obj.namespace and obj.namespace != namespace:
            problems.append(
                Problem.about(
                    errors.BAD_SCOPE,
                    f"a sync scoped to namespace {namespace!r} may not write "
                    f"into namespace {obj.namespace!r}",
                    obj,
                )
            )
    return problems
