"""KNV1045: fields the API server owns have no place in a source object."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

METADATA_FIELDS = (
    "ownerReferences",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
)


def check(obj: Manifest) -> list[Problem]:
    present = [f"metadata.{f}" for f in METADATA_FIELDS if obj.metadata.get(f) not in (None, "", 0)]
    status = obj.body.get("status")
    if status and obj.group != "configmanagement.gke.io":
        present.insert(0, "status")
    if not present:
        return []
    return [
        Problem.about(
            errors.ILLEGAL_FIELDS_IN_CONFIG,
            f"fields set by the API server may not be declared: {', '.join(present)}",
            obj,
            hint="remove them (they come from `kubectl get -o yaml`)",
        )
    ]
