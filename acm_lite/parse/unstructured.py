"""The unstructured format: any layout; namespaced objects without a namespace get the default
one, or (with a namespace-selector) a copy in every declared Namespace the selector matches. No I/O."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.parse import kinds, selectors
from acm_lite.parse.hierarchy import namespace_selector, validate_namespace_selectors
from acm_lite.parse.kinds import Scope, Scoper
from acm_lite.validate.scope import NAMESPACE_SELECTOR_ANNOTATION


def flatten(objs: list[Manifest], scoper: Scoper, default_namespace: str = "default"
            ) -> tuple[list[Manifest], list[Problem]]:
    problems = validate_namespace_selectors(objs)
    named = {o.name: o for o in objs if o.group_kind == kinds.NAMESPACE_SELECTOR}
    namespaces = [o for o in objs if o.group_kind == kinds.NAMESPACE]
    out: list[Manifest] = []
    for obj in objs:
        if obj.group_kind == kinds.NAMESPACE_SELECTOR:
            continue
        if obj.namespace or scoper.scope(obj.group_kind) is not Scope.NAMESPACED:
            out.append(obj)
            continue
        selector_name = obj.annotations.get(NAMESPACE_SELECTOR_ANNOTATION)
        if selector_name is None:
            out.append(obj.with_namespace(default_namespace))
            continue
        if selector_name not in named:
            problems.append(Problem.about(errors.OBJECT_HAS_UNKNOWN_SELECTOR,
                                          f"{NAMESPACE_SELECTOR_ANNOTATION}={selector_name} names "
                                          "no declared NamespaceSelector", obj))
            continue
        try:
            selector = namespace_selector(named[selector_name])
        except selectors.SelectorError:
            continue  # reported by validate_namespace_selectors
        out += [obj.with_namespace(ns.name) for ns in namespaces if selector.matches(ns.labels)]
    return out, problems
