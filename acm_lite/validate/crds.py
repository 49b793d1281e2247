"""CRDs: KNV1048 (the name must be ``<plural>.<group>``) and KNV1043 (no CRDs for the syncer's
own API groups)."""

from __future__ import annotations

from acm_lite import api, errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

ILLEGAL_GROUPS = frozenset({kinds.CONFIGMANAGEMENT_GROUP, "configsync.gke.io", api.GROUP})


def check(obj: Manifest) -> list[Problem]:
    if obj.group_kind != kinds.CRD:
        return []
    spec = obj.spec
    group = spec.get("group", "")
    names = spec["names"] if isinstance(spec.get("names"), dict) else {}
    if not isinstance(group, str):
        return [Problem.about(errors.INVALID_CRD_NAME, "spec.group must be a string", obj)]
    if group in ILLEGAL_GROUPS:
        return [Problem.about(errors.UNSUPPORTED_OBJECT, f"CRDs of the {group} group may not be synced", obj)]
    expected = f"{names.get('plural', '')}.{group}"
    if obj.name != expected:
        return [
            Problem.about(
                errors.INVALID_CRD_NAME,
                f"a CRD's metadata.name must be <plural>.<group>: expected {expected!r}",
                obj,
            )
        ]
    return []
