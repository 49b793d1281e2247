"""Recursive rules and functions are refused before evaluation, as OPA's compiler refuses them
(``rego_recursion_error``): regorus has no such check for functions and overflows its stack.

A rule depends on every rule its body names — directly, through an import, or through a ``data.``
reference to the same or another package of the template and its libs (a reference to a package
or a part of it names every rule under it). Any cycle in that graph is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from acm_lite.policy import rego_ast
from acm_lite.policy.rego_ast import Module, Path, Rule


def _overlaps(ref: Path, rule: Path) -> bool:
    shorter = min(len(ref), len(rule))
    return ref[:shorter] == rule[:shorter]


def _head_and_bodies(rule: Rule) -> list[Any]:
    """The parts of a rule that are evaluated: its bodies and its head's values (not its name or
    its arguments)."""
    kind, body = next(iter(rule.node.items()))
    if kind == "Default":
        return [body.get("value")]
    head_kind, head = next(iter((body.get("head") or {"": {}}).items()))
    parts = [value for key, value in head.items() if key not in ("refr", "args", "span")]
    return [*parts, body.get("bodies")] if head_kind else [body.get("bodies")]


def _dependencies(mods: list[Module]) -> dict[Path, set[Path]]:
    paths = {rule.path for module in mods for rule in module.rules}
    graph: dict[Path, set[Path]] = {path: set() for path in paths}
    for module in mods:
        names = {rule.path[len(module.package)] for m in mods if m.package == module.package
                 for rule in m.rules}
        for rule in module.rules:
            for ref in rego_ast.references(_head_and_bodies(rule)):
                target = rego_ast.resolve(ref, module, rule, names)
                if target is not None:
                    graph[rule.path].update(p for p in paths if _overlaps(target, p))
    return graph


def _cycle_from(start: Path, graph: dict[Path, set[Path]]) -> list[Path] | None:
    """A path of rules from ``start`` back to itself, if there is one (iterative DFS)."""
    stack: list[tuple[Path, Iterator[Path]]] = [(start, iter(sorted(graph[start])))]
    seen = {start}
    while stack:
        _, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        elif child == start:
            return [n for n, _ in stack] + [start]
        elif child not in seen:
            seen.add(child)
            stack.append((child, iter(sorted(graph[child]))))
    return None


def _name(path: Path) -> str:
    return ".".join(path)


def check(mods: list[Module]) -> str | None:
    """Why the modules are recursive (the first cycle found, with where it starts), or None."""
    graph = _dependencies(mods)
    lines = {rule.path: f"{rule.file}:{rule.line}" for module in mods for rule in module.rules}
    for start in sorted(graph):
        cycle = _cycle_from(start, graph)
        if cycle is not None:
            return (f"rego_recursion_error: {_name(start)} ({lines[start]}) is recursive: "
                    + " -> ".join(_name(p) for p in cycle))
    return None
