"""KNV1054: annotation and label values must be strings (``"true"``, not ``true``)."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest


def check(obj: Manifest) -> list[Problem]:
    problems = []
    for field in ("annotations", "labels"):
        value = obj.metadata.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(
                Problem.about(
                    errors.INVALID_ANNOTATION_VALUE, f"metadata.{field} must be a map of strings", obj
                )
            )
            continue
        bad = sorted(str(k) for k, v in value.items() if not isinstance(v, str))
        if bad:
            problems.append(
                Problem.about(
                    errors.INVALID_ANNOTATION_VALUE,
                    f"values of metadata.{field} {', '.join(bad)} are not strings",
                    obj,
                    hint='quote them, e.g. "true" or "8080"',
                )
            )
    return problems
