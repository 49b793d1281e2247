"""Cluster and ClusterSelector objects: KNV1039 (outside clusterregistry/ in a hierarchical repo),
KNV1004 (selector annotations on selector kinds), KNV1029 (ClusterSelectors sharing a name)."""

from __future__ import annotations

from collections import defaultdict

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.metadata import CLUSTER_NAME_SELECTOR_ANNOTATION, CLUSTER_SELECTOR_ANNOTATION
from acm_lite.objects import Manifest

_SELECTOR_KINDS = frozenset({kinds.CLUSTER, kinds.CLUSTER_SELECTOR, kinds.NAMESPACE_SELECTOR})


def check(objs: list[Manifest], *, hierarchical: bool) -> list[Problem]:
    problems = []
    by_name: dict[str, list[Manifest]] = defaultdict(list)
    for obj in objs:
        gk = obj.group_kind
        if gk in _SELECTOR_KINDS:
            for key in (CLUSTER_SELECTOR_ANNOTATION, CLUSTER_NAME_SELECTOR_ANNOTATION):
                if key in obj.annotations:
                    problems.append(
                        Problem.about(
                            errors.ILLEGAL_SELECTOR_ANNOTATION,
                            f"{gk.kind} objects may not declare {key}",
                            obj,
                        )
                    )
        if gk in (kinds.CLUSTER, kinds.CLUSTER_SELECTOR):
            if hierarchical and obj.top_directory != "clusterregistry":
                problems.append(
                    Problem.about(
                        errors.INCORRECT_TOP_LEVEL_DIRECTORY,
                        f"{gk.kind} objects must be declared in clusterregistry/",
                        obj,
                    )
                )
            if gk == kinds.CLUSTER_SELECTOR:
                by_name[obj.name].append(obj)
    for name, same in by_name.items():
        if len(same) > 1:
            problems += [
                Problem.about(
                    errors.NAME_COLLISION,
                    f"ClusterSelectors must have unique names; {len(same)} are named {name!r}",
                    o,
                )
                for o in same
            ]
    return problems
