"""Kubernetes label selectors (matchLabels and matchExpressions): parsing and matching. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector that is not well formed."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values  # NotIn


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """All requirements hold; an empty selector matches everything."""
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)


def _expression(expr: Any, index: int) -> Requirement:
    if not isinstance(expr, dict):
        raise SelectorError(f"matchExpressions[{index}] must be an object")
    key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str) or not key:
        raise SelectorError(f"matchExpressions[{index}].key must be a non-empty string")
    if operator not in OPERATORS:
        raise SelectorError(
            f"matchExpressions[{index}].operator {operator!r} is not one of {', '.join(OPERATORS)}"
        )
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SelectorError(f"matchExpressions[{index}].values must be a list of strings")
    if operator in ("In", "NotIn") and not values:
        raise SelectorError(f"matchExpressions[{index}]: operator {operator} needs values")
    if operator in ("Exists", "DoesNotExist") and values:
        raise SelectorError(f"matchExpressions[{index}]: operator {operator} takes no values")
    return Requirement(key, operator, frozenset(values))


def parse(spec: Any) -> Selector:
    """A ``metav1.LabelSelector`` document → a Selector; SelectorError when malformed."""
    if spec is None:
        return Selector(())
    if not isinstance(spec, dict):
        raise SelectorError("a label selector must be an object")
    match_labels = spec.get("matchLabels") or {}
    if not isinstance(match_labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in match_labels.items()
    ):
        raise SelectorError("matchLabels must map strings to strings")
    expressions = spec.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError("matchExpressions must be a list")
    reqs = [Requirement(k, "In", frozenset([v])) for k, v in sorted(match_labels.items())]
    reqs += [_expression(e, i) for i, e in enumerate(expressions)]
    return Selector(tuple(reqs))
