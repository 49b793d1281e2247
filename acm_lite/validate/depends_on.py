"""ACM1005: ``config.kubernetes.io/depends-on`` must be well formed and name declared objects
(the format and its reader are in ``metadata``)."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.metadata import DEPENDS_ON, parse_reference
from acm_lite.objects import Manifest


def check(objs: list[Manifest]) -> list[Problem]:
    declared = {o.id for o in objs}
    problems = []
    for obj in objs:
        value = obj.annotations.get(DEPENDS_ON)
        if value is None:
            continue
        for ref in value.split(","):
            try:
                target = parse_reference(ref)
            except ValueError as e:
                problems.append(Problem.about(errors.INVALID_DEPENDS_ON, f"{DEPENDS_ON}: {e}", obj))
                continue
            if target not in declared:
                problems.append(
                    Problem.about(
                        errors.INVALID_DEPENDS_ON,
                        f"{DEPENDS_ON} names {target}, which is not declared for this cluster",
                        obj,
                    )
                )
            elif target == obj.id:
                problems.append(
                    Problem.about(errors.INVALID_DEPENDS_ON, f"{DEPENDS_ON} names the object itself", obj)
                )
    return problems
