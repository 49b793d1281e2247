"""KNV1029: two declared objects with the same group, kind, namespace and name."""

from __future__ import annotations

from collections import defaultdict

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId


def check(objs: list[Manifest]) -> list[Problem]:
    seen: dict[ObjectId, list[Manifest]] = defaultdict(list)
    for obj in objs:
        seen[obj.id].append(obj)
    problems = []
    for oid, same in seen.items():
        if len(same) > 1:
            files = ", ".join(sorted({o.source for o in same}))
            problems += [
                Problem.about(
                    errors.NAME_COLLISION,
                    f"{len(same)} objects are declared as {oid} (in {files})",
                    o,
                    hint="rename or delete the duplicates",
                )
                for o in same
            ]
    return problems
