"""KNV1005: ``configmanagement.gke.io/managed`` may only be set to ``disabled``."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.metadata import DISABLED, MANAGED
from acm_lite.objects import Manifest


def check(obj: Manifest) -> list[Problem]:
    value = obj.annotations.get(MANAGED)
    if value is None or value == DISABLED:
        return []
    return [
        Problem.about(
            errors.ILLEGAL_MANAGEMENT_ANNOTATION,
            f"invalid management annotation {MANAGED}={value}; if set, the value must be {DISABLED!r}",
            obj,
        )
    ]
