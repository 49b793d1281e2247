"""NamespaceSelectors: their two modes and the namespaces each selects. No I/O.

A *static* selector picks the Namespaces declared in the source. A *dynamic* one (unstructured
format only, as in Config Sync) also picks the Namespaces that exist in the cluster with matching
labels, except those being deleted; offline (``vet``, ``hydrate``) no live Namespaces are known, so it
selects what a static one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.parse import selectors

STATIC = "static"
DYNAMIC = "dynamic"
MODES = (STATIC, DYNAMIC)

# Live Namespaces as (name, labels) pairs: hashable, so a declared set can be cached by them.
LiveNamespaces = frozenset[tuple[str, frozenset[tuple[str, str]]]]


@dataclass(frozen=True)
class NamespaceSelection:
    """One NamespaceSelector, read: its label selector and its mode."""

    selector: selectors.Selector
    mode: str

    @property
    def dynamic(self) -> bool:
        return self.mode == DYNAMIC

    def select(self, declared: Iterable[Manifest], live: LiveNamespaces | None) -> list[str]:
        """Names of the selected namespaces, sorted: declared ones, plus live ones when dynamic."""
        names = {ns.name for ns in declared if self.selector.matches(ns.labels)}
        if self.dynamic and live:
            names |= {name for name, labels in live if self.selector.matches(dict(labels))}
        return sorted(names)


def read(obj: Manifest) -> NamespaceSelection:
    """A NamespaceSelector object → its selection; SelectorError when malformed."""
    spec = obj.spec
    mode = spec.get("mode") or STATIC
    if mode not in MODES:
        raise selectors.SelectorError(f"unknown mode {mode!r}; use {STATIC!r} or {DYNAMIC!r}")
    selector = selectors.parse(spec.get("selector"))
    if selector.empty:
        raise selectors.SelectorError("NamespaceSelectors must define spec.selector")
    return NamespaceSelection(selector, mode)


def validate(objs: list[Manifest], *, hierarchical: bool) -> list[Problem]:
    """KNV1014 for each malformed NamespaceSelector, and for dynamic mode in the hierarchical
    format (where Config Sync refuses it)."""
    problems = []
    for obj in (o for o in objs if o.group_kind == kinds.NAMESPACE_SELECTOR):
        try:
            selection = read(obj)
        except selectors.SelectorError as e:
            problems.append(Problem.about(errors.INVALID_SELECTOR, f"invalid selector: {e}", obj))
            continue
        if selection.dynamic and hierarchical:
            problems.append(
                Problem.about(
                    errors.INVALID_SELECTOR,
                    "a NamespaceSelector must not use the dynamic mode with the hierarchy source format",
                    obj,
                    hint="switch to the unstructured source format, or remove spec.mode",
                )
            )
    return problems


def has_dynamic(objs: Iterable[Manifest]) -> bool:
    """Whether any NamespaceSelector asks for live Namespaces (malformed ones are not counted)."""
    return any(
        o.group_kind == kinds.NAMESPACE_SELECTOR
        and isinstance(o.body.get("spec"), dict)
        and o.body["spec"].get("mode") == DYNAMIC
        for o in objs
    )


def live(items: Iterable[Mapping[str, Any]]) -> LiveNamespaces:
    """Live Namespaces from a LIST of them, leaving out those being deleted (Terminating)."""
    found = set()
    for item in items:
        metadata = item.get("metadata") or {}
        if (item.get("status") or {}).get("phase") == "Terminating" or metadata.get("deletionTimestamp"):
            continue
        labels = metadata.get("labels") or {}
        found.add((str(metadata.get("name", "")), frozenset((str(k), str(v)) for k, v in labels.items())))
    return frozenset(found)
