"""Builtin calls whose literal arguments ask for more than any policy needs (``numbers.range(1,
1e9)``) are refused when the template compiles; the engine would abort trying to allocate them.

Arguments known only at evaluation are bounded by the evaluation sandbox instead.
"""

from __future__ import annotations

from typing import Any

from acm_lite.policy import rego_ast
from acm_lite.policy.rego_ast import Module

MAX_RANGE = 1_000_000
_RANGES = {("numbers", "range"), ("numbers", "range_step")}


def _number(node: Any) -> float | None:
    inner = rego_ast.expression(node)
    if inner is None or inner[0] != "Number":
        return None
    value = inner[1].get("value")
    if not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _too_large(call: rego_ast.Reference) -> str | None:
    if (call.root, *call.segments) not in _RANGES or call.call_args is None:
        return None
    bounds = [_number(a) for a in call.call_args[:2]]
    step = _number(call.call_args[2]) if len(call.call_args) > 2 else 1.0
    if None in bounds or step is None or step == 0:
        return None
    low, high = bounds[0] or 0.0, bounds[1] or 0.0
    size = abs(high - low) / abs(step)
    if size <= MAX_RANGE:
        return None
    return (
        f"{call.root}.{'.'.join(call.segments)} would build {size:.0f} numbers (at most "
        f"{MAX_RANGE:,} are allowed)"
    )


def check(mods: list[Module]) -> str | None:
    """The first builtin call with oversized literal arguments, with where it is, or None."""
    for module in mods:
        for rule in module.rules:
            for ref in rego_ast.references(rule.node):
                wrong = _too_large(ref)
                if wrong:
                    return f"{module.file}:{ref.line or rule.line}: {wrong}"
    return None
