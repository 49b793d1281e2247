"""ACM1005: ``config.kubernetes.io/depends-on`` must be well formed and name declared objects.

The format is cli-utils': ``GROUP/namespaces/NAMESPACE/KIND/NAME`` for namespaced objects and
``GROUP/KIND/NAME`` for cluster-scoped ones (GROUP empty for the core group), comma-separated.
"""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId

DEPENDS_ON = "config.kubernetes.io/depends-on"


def parse_reference(ref: str) -> ObjectId:
    """One depends-on entry → ObjectId; ValueError when malformed."""
    parts = ref.strip().split("/")
    if len(parts) == 5 and parts[1] == "namespaces":
        group, _, namespace, kind, name = parts
    elif len(parts) == 3:
        group, kind, name = parts
        namespace = ""
    else:
        raise ValueError(f"{ref.strip()!r} is neither GROUP/KIND/NAME nor "
                         "GROUP/namespaces/NAMESPACE/KIND/NAME")
    if not kind or not name or (len(parts) == 5 and not namespace):
        raise ValueError(f"{ref.strip()!r} has an empty kind, name or namespace")
    return ObjectId(group, kind, namespace, name)


def dependencies(obj: Manifest) -> list[ObjectId]:
    """The objects ``obj`` depends on; malformed entries are skipped (``check`` reports them)."""
    out = []
    for ref in obj.annotations.get(DEPENDS_ON, "").split(","):
        if ref.strip():
            try:
                out.append(parse_reference(ref))
            except ValueError:
                continue
    return out


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
                problems.append(Problem.about(errors.INVALID_DEPENDS_ON,
                                              f"{DEPENDS_ON} names {target}, which is not declared "
                                              "for this cluster", obj))
            elif target == obj.id:
                problems.append(Problem.about(errors.INVALID_DEPENDS_ON,
                                              f"{DEPENDS_ON} names the object itself", obj))
    return problems
