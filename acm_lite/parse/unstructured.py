"""The unstructured format: any layout; namespaced objects without a namespace get the default
one, or (with a namespace-selector) a copy in every Namespace the selector picks: the declared ones,
and for a dynamic selector the live ones too. No I/O: live Namespaces are handed in."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.kinds import Scope, Scoper
from acm_lite.metadata import NAMESPACE_SELECTOR_ANNOTATION
from acm_lite.objects import Manifest
from acm_lite.parse import namespace_selection, selectors
from acm_lite.parse.namespace_selection import LiveNamespaces


def flatten(
    objs: list[Manifest],
    scoper: Scoper,
    default_namespace: str = "default",
    live: LiveNamespaces | None = None,
) -> tuple[list[Manifest], list[Problem]]:
    problems = namespace_selection.validate(objs, hierarchical=False)
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
            problems.append(
                Problem.about(
                    errors.OBJECT_HAS_UNKNOWN_SELECTOR,
                    f"{NAMESPACE_SELECTOR_ANNOTATION}={selector_name} names no declared NamespaceSelector",
                    obj,
                )
            )
            continue
        try:
            selection = namespace_selection.read(named[selector_name])
        except selectors.SelectorError:
            continue  # reported by namespace_selection.validate
        out += [obj.with_namespace(name) for name in selection.select(namespaces, live)]
    return out, problems
