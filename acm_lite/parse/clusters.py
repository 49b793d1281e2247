"""Cluster targeting: keep the objects whose cluster-selector or cluster-name-selector picks the
cluster being rendered; drop Cluster and ClusterSelector objects. No I/O.

A cluster's labels come from the fleet when given, else from the ``Cluster`` object of the same
name in the source. Namespaces are decided first: every object of an unselected namespace drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.metadata import CLUSTER_NAME_SELECTOR_ANNOTATION, CLUSTER_SELECTOR_ANNOTATION
from acm_lite.objects import Manifest
from acm_lite.parse import selectors


@dataclass(frozen=True)
class ClusterTarget:
    """The cluster being rendered; ``name`` None renders for no particular cluster."""

    name: str | None = None
    labels: Mapping[str, str] | None = None  # from a fleet; None: from the Cluster object
    extra: Mapping[str, str] = field(default_factory=dict)


def cluster_labels(objs: list[Manifest], target: ClusterTarget) -> dict[str, str]:
    if target.labels is not None:
        return dict(target.labels)
    for obj in objs:
        if obj.group_kind == kinds.CLUSTER and obj.name == target.name:
            return {str(k): str(v) for k, v in obj.labels.items()}
    return {}


def _active_selectors(objs: list[Manifest], labels: dict[str, str]) -> tuple[dict[str, bool], list[Problem]]:
    active: dict[str, bool] = {}
    problems = []
    for obj in objs:
        if obj.group_kind != kinds.CLUSTER_SELECTOR:
            continue
        spec = obj.spec
        try:
            selector = selectors.parse(spec.get("selector"))
        except selectors.SelectorError as e:
            problems.append(Problem.about(errors.INVALID_SELECTOR, f"invalid selector: {e}", obj))
            continue
        if selector.empty:
            problems.append(
                Problem.about(errors.INVALID_SELECTOR, "ClusterSelectors must define spec.selector", obj)
            )
            continue
        active[obj.name] = selector.matches(labels)
    return active, problems


def _selected(obj: Manifest, target: ClusterTarget, active: dict[str, bool]) -> bool | Problem:
    legacy = obj.annotations.get(CLUSTER_SELECTOR_ANNOTATION)
    inline = obj.annotations.get(CLUSTER_NAME_SELECTOR_ANNOTATION)
    if legacy is not None and inline is not None:
        return Problem.about(
            errors.CLUSTER_SELECTOR_ANNOTATION_CONFLICT,
            f"{CLUSTER_SELECTOR_ANNOTATION} and {CLUSTER_NAME_SELECTOR_ANNOTATION} may not both be set",
            obj,
        )
    if inline is not None:
        wanted = {n.strip().lower() for n in inline.split(",")}
        return target.name is not None and target.name.lower() in wanted
    if legacy is not None:
        if legacy not in active:
            return Problem.about(
                errors.OBJECT_HAS_UNKNOWN_SELECTOR,
                f"{CLUSTER_SELECTOR_ANNOTATION}={legacy} names no declared ClusterSelector",
                obj,
            )
        return active[legacy]
    return True


def select(objs: list[Manifest], target: ClusterTarget) -> tuple[list[Manifest], list[Problem]]:
    """The objects that land on ``target``, and the problems found deciding it."""
    active, problems = _active_selectors(objs, cluster_labels(objs, target))
    namespace_state: dict[str, bool] = {}
    kept: list[Manifest] = []
    for obj in objs:
        if obj.group_kind == kinds.NAMESPACE:
            state = _selected(obj, target, active)
            if isinstance(state, Problem):
                problems.append(state)
                continue
            namespace_state[obj.name] = namespace_state.get(obj.name, False) or state
    for obj in objs:
        gk = obj.group_kind
        if gk in (kinds.CLUSTER, kinds.CLUSTER_SELECTOR):
            continue
        if gk == kinds.NAMESPACE:
            if namespace_state.get(obj.name) and _selected(obj, target, active) is True:
                kept.append(obj)
            continue
        if namespace_state.get(obj.namespace) is False:
            continue
        state = _selected(obj, target, active)
        if isinstance(state, Problem):
            problems.append(state)
        elif state:
            kept.append(obj)
    return kept, problems
