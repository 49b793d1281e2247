"""Apply order: CRDs, then Namespaces, then other cluster-scoped objects, then namespaced ones,
each pushed later by its ``config.kubernetes.io/depends-on`` targets. Prunes run in reverse. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.metadata import dependencies
from acm_lite.objects import Manifest, ObjectId

CRD_LEVEL, NAMESPACE_LEVEL, CLUSTER_LEVEL, NAMESPACED_LEVEL = 0, 1, 2, 3


def base_level(oid: ObjectId) -> int:
    if oid.group_kind == kinds.CRD:
        return CRD_LEVEL
    if oid.group_kind == kinds.NAMESPACE:
        return NAMESPACE_LEVEL
    return CLUSTER_LEVEL if not oid.namespace else NAMESPACED_LEVEL


@dataclass(frozen=True)
class Levels:
    """Each declared object's apply level (``of``), and the depends-on cycles found deciding them:
    an object on a cycle gets the namespaced level and a ``DEPENDENCY_CYCLE`` problem."""

    of: Mapping[ObjectId, int]
    problems: tuple[Problem, ...] = ()

    @property
    def cyclic(self) -> bool:
        """Whether depends-on forms a cycle: the pass stops at planning, nothing applied."""
        return bool(self.problems)


def levels(objs: list[Manifest]) -> Levels:
    """Each object's level: its kind's, or one past the deepest object it depends on."""
    by_id = {o.id: o for o in objs}
    deps = {o.id: [d for d in dependencies(o) if d in by_id] for o in objs}
    result: dict[ObjectId, int] = {}
    problems: list[Problem] = []
    visiting: set[ObjectId] = set()

    def visit(oid: ObjectId) -> int:
        if oid in result:
            return result[oid]
        if oid in visiting:
            raise _CycleError(oid)
        visiting.add(oid)
        level = max([base_level(oid), *(visit(d) + 1 for d in deps[oid])])
        visiting.discard(oid)
        result[oid] = level
        return level

    for obj in objs:
        try:
            visit(obj.id)
        except _CycleError as cycle:
            problems.append(
                Problem.about(errors.DEPENDENCY_CYCLE, f"depends-on forms a cycle through {cycle.oid}", obj)
            )
            visiting.clear()
            result.setdefault(obj.id, NAMESPACED_LEVEL)
    return Levels(result, tuple(problems))


class _CycleError(Exception):
    def __init__(self, oid: ObjectId):
        super().__init__(str(oid))
        self.oid = oid
