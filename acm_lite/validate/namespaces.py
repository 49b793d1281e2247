"""KNV1055: metadata.namespace, or a Namespace's name, is no valid namespace name (reserved
namespaces are ``reserved``'s rule)."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.validate.names import is_label

_RULE = (
    "a valid namespace name has at most 63 characters: lower-case letters, digits and '-', "
    "starting and ending with a letter or digit"
)


def check(obj: Manifest) -> list[Problem]:
    if obj.group_kind == kinds.NAMESPACE:
        if obj.name and not is_label(obj.name):
            return [
                Problem.about(
                    errors.INVALID_DIRECTORY_NAME, f"Namespace name {obj.name!r} is invalid", obj, hint=_RULE
                )
            ]
        return []
    if obj.namespace and not is_label(obj.namespace):
        return [
            Problem.about(
                errors.INVALID_DIRECTORY_NAME,
                f"metadata.namespace {obj.namespace!r} is invalid",
                obj,
                hint=_RULE,
            )
        ]
    return []
