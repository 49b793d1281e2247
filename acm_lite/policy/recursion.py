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


class _Overlaps:
    """The rule paths a reference overlaps (one a prefix of the other), found by lookups instead
    of a scan of every rule per reference."""

    def __init__(self, paths: set[Path]):
        self.paths = paths
        self.under: dict[Path, list[Path]] = {}
        for path in paths:
            for end in range(1, len(path) + 1):
                self.under.setdefault(path[:end], []).append(path)

    def __call__(self, ref: Path) -> set[Path]:
        found = set(self.under.get(ref, ()))
        found.update(ref[:end] for end in range(1, len(ref)) if ref[:end] in self.paths)
        return found


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
    overlapping = _Overlaps(paths)
    graph: dict[Path, set[Path]] = {path: set() for path in paths}
    for module in mods:
        names = {
            rule.path[len(module.package)] for m in mods if m.package == module.package for rule in m.rules
        }
        for rule in module.rules:
            for ref in rego_ast.references(_head_and_bodies(rule)):
                target = rego_ast.resolve(ref, module, rule, names)
                if target is not None:
                    graph[rule.path].update(overlapping(target))
    return graph


def _cycle(graph: dict[Path, set[Path]]) -> list[Path] | None:
    """A cycle of rules, if there is one: one depth-first walk over the whole graph (iterative),
    which meets a rule still on its stack exactly when it closes a cycle."""
    done: set[Path] = set()
    for root in sorted(graph):
        if root in done:
            continue
        stack: list[tuple[Path, Iterator[Path]]] = [(root, iter(sorted(graph[root])))]
        on_stack = {root: 0}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                del on_stack[node]
                done.add(node)
            elif child in on_stack:
                return [n for n, _ in stack[on_stack[child] :]] + [child]
            elif child not in done:
                on_stack[child] = len(stack)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def _name(path: Path) -> str:
    return ".".join(path)


def check(mods: list[Module]) -> str | None:
    """Why the modules are recursive (a cycle, with where it starts), or None."""
    cycle = _cycle(_dependencies(mods))
    if cycle is None:
        return None
    lines = {rule.path: f"{rule.file}:{rule.line}" for module in mods for rule in module.rules}
    start = cycle[0]
    shown = [_name(p) for p in cycle[:_SHOWN]]
    if len(cycle) > _SHOWN:  # a hostile template's cycle can be thousands of rules long
        shown[-1:] = [f"... ({len(cycle) - _SHOWN + 1} more)", _name(cycle[-1])]
    return f"rego_recursion_error: {_name(start)} ({lines[start]}) is recursive: " + " -> ".join(shown)


_SHOWN = 10
