"""ACM1042: resource quantities that do not parse. The API server refuses the whole object when a
quantity field does not decode (``cpu: lots``), so a commit holding one would fail half-way
through an apply.

The grammar is apimachinery's ``ParseQuantity`` after its JSON decoder trims white space:
an optional sign, digits with an optional ``.`` (``1.``, ``.5`` and even ``.`` parse), then a
suffix — ``Ki Mi Gi Ti Pi Ei``, ``n u m k M G T P E`` or none, or ``e``/``E`` and a signed
64-bit integer. Only the empty string fails among digit-less forms. Numbers (YAML ``cpu: 1``)
decode as quantities too; infinities do not.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem, shown
from acm_lite.objects import GroupKind, Manifest, field_path
from acm_lite.validate import workloads
from acm_lite.validate.workloads import items, mapping

# Possessive quantifiers, as Go's scanner never gives back what it read: backtracking would make
# a long run of digits ending in a wrong character cost quadratic time.
_SHAPE = re.compile(r"[+-]?+[0-9]*+(?:\.[0-9]*+)?+([eEinumkKMGTP]*+[+-]?+[0-9]*+)")
_SUFFIXES = frozenset({"", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"})
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_INT64 = (-(2**63), 2**63 - 1)
# Go's strings.TrimSpace: Unicode White_Space (Python's str.strip also drops \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_HINT = "write a number with an optional suffix, e.g. 500m, 1.5, 128Mi, 2Gi, 1e3"


# Values in messages are cut short: a hostile key or value can be megabytes long.
@lru_cache(maxsize=4096)
def parses(text: str) -> bool:
    """Whether the API server decodes ``text`` as a quantity. Cached: values recur a lot."""
    text = text.strip(_GO_SPACE)
    shape = _SHAPE.fullmatch(text)
    if not text or shape is None:
        return False
    suffix = shape.group(1)
    if suffix in _SUFFIXES:
        return True
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is None:
        return False
    digits = exponent.group(1).lstrip("+-").lstrip("0")
    return len(digits) <= 19 and _INT64[0] <= int(exponent.group(1)) <= _INT64[1]


def valid(value: Any) -> bool:
    """Strings by the grammar, numbers when finite; other types are the schema check's business."""
    if isinstance(value, str):
        return parses(value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


Path = tuple[object, ...]  # field names and list indexes, joined only to report a problem


def _requirements(node: Any, path: Path, out: list[tuple[Path, Any]]) -> None:
    """``requests`` and ``limits`` of a ResourceRequirements."""
    if isinstance(node, dict):
        out.append(((*path, "requests"), node.get("requests")))
        out.append(((*path, "limits"), node.get("limits")))


def _pod_spec(spec: dict[str, Any], path: Path, out: list[tuple[Path, Any]]) -> None:
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        for i, container in enumerate(items(spec.get(kind))):
            _requirements(container.get("resources"), (*path, kind, i, "resources"), out)
    _requirements(spec.get("resources"), (*path, "resources"), out)
    out.append(((*path, "overhead"), spec.get("overhead")))
    for i, volume in enumerate(items(spec.get("volumes"))):
        empty_dir = mapping(volume.get("emptyDir"))
        if "sizeLimit" in empty_dir:
            out.append(((*path, "volumes", i, "emptyDir"), {"sizeLimit": empty_dir["sizeLimit"]}))
        claim = mapping(mapping(mapping(volume.get("ephemeral")).get("volumeClaimTemplate")).get("spec"))
        _requirements(
            claim.get("resources"),
            (*path, "volumes", i, "ephemeral", "volumeClaimTemplate", "spec", "resources"),
            out,
        )


def _fields(obj: Manifest) -> list[tuple[Path, Any]]:
    """Every map of quantities in the object, with its path."""
    out: list[tuple[Path, Any]] = []
    found = workloads.pod_spec(obj)
    if found is not None:
        _pod_spec(found[1], tuple(found[0].split(".")), out)
    kind, spec = obj.group_kind, obj.spec
    if kind == _STATEFULSET:
        for i, claim in enumerate(items(spec.get("volumeClaimTemplates"))):
            _requirements(
                mapping(claim.get("spec")).get("resources"),
                ("spec", "volumeClaimTemplates", i, "spec", "resources"),
                out,
            )
    elif kind == _PVC:
        _requirements(spec.get("resources"), ("spec", "resources"), out)
    elif kind == _PV:
        out.append((("spec", "capacity"), spec.get("capacity")))
    elif kind == _QUOTA:
        out.append((("spec", "hard"), spec.get("hard")))
    elif kind == _LIMIT_RANGE:
        for i, limit in enumerate(items(spec.get("limits"))):
            for field in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
                out.append((("spec", "limits", i, field), limit.get(field)))
    elif kind == _RUNTIME_CLASS:
        out.append((("overhead", "podFixed"), obj.mapping("overhead").get("podFixed")))
    return out


_STATEFULSET = GroupKind("apps", "StatefulSet")
_PVC = GroupKind("", "PersistentVolumeClaim")
_PV = GroupKind("", "PersistentVolume")
_QUOTA = GroupKind("", "ResourceQuota")
_LIMIT_RANGE = GroupKind("", "LimitRange")
_RUNTIME_CLASS = GroupKind("node.k8s.io", "RuntimeClass")
KINDS = frozenset(
    {*workloads.POD_TEMPLATE_PATHS, _STATEFULSET, _PVC, _PV, _QUOTA, _LIMIT_RANGE, _RUNTIME_CLASS}
)


def _all_valid(obj: Manifest) -> bool:
    """The common case, answered without building a single path: every quantity of the pod
    spec's containers is valid (other fields, and every other kind, go the long way)."""
    found = workloads.pod_spec(obj)
    if found is None or not _simple(found[1]) or "volumeClaimTemplates" in obj.spec:
        return False
    spec = found[1]
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        containers = spec.get(kind)
        if not containers:
            continue
        for container in containers if isinstance(containers, list) else ():
            resources = container.get("resources") if isinstance(container, dict) else None
            if not isinstance(resources, dict):
                continue
            for field in ("requests", "limits"):
                values = resources.get(field)
                if isinstance(values, dict) and not all(map(valid, values.values())):
                    return False
    return True


def _simple(spec: dict[str, Any]) -> bool:
    """No quantity outside the containers: no pod-level resources, overhead or volumes."""
    return "resources" not in spec and "overhead" not in spec and "volumes" not in spec


def check(obj: Manifest) -> list[Problem]:
    if obj.group_kind not in KINDS or _all_valid(obj):
        return []
    problems = []
    for path, quantities in _fields(obj):
        if not quantities or not isinstance(quantities, dict):
            continue
        for name, value in quantities.items():
            if not valid(value):
                problems.append(
                    Problem.about(
                        errors.INVALID_QUANTITY,
                        f"{field_path((*path, str(name)))}: {shown(value)} is not a quantity",
                        obj,
                        hint=_HINT,
                    )
                )
    return problems
