"""Hierarchical placement of namespaces: KNV1019 (a Namespace directly in namespaces/), KNV1020
(a Namespace named unlike its directory), KNV1009 (metadata.namespace unlike its directory)."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

NAMESPACES_DIR = "namespaces"


def check(obj: Manifest) -> list[Problem]:
    directory = obj.directory.rpartition("/")[2]
    if obj.group_kind == kinds.NAMESPACE and obj.top_directory == NAMESPACES_DIR:
        if obj.directory == NAMESPACES_DIR:
            return [
                Problem.about(
                    errors.ILLEGAL_TOP_LEVEL_NAMESPACE,
                    "Namespaces must be declared in subdirectories of namespaces/",
                    obj,
                    hint=f"move it to namespaces/{obj.name}/",
                )
            ]
        if obj.name != directory:
            return [
                Problem.about(
                    errors.INVALID_NAMESPACE_NAME,
                    f"a Namespace's metadata.name must match its directory: expected {directory!r}",
                    obj,
                )
            ]
        return []
    if obj.namespace and obj.top_directory == NAMESPACES_DIR and obj.namespace != directory:
        return [
            Problem.about(
                errors.ILLEGAL_METADATA_NAMESPACE_DECLARATION,
                f"metadata.namespace must match the directory holding the object, "
                f"{directory!r}, or be left blank",
                obj,
            )
        ]
    return []
