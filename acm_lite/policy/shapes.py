"""The structure of every policy object (ConstraintTemplate, Constraint, ExpansionTemplate, gator
Suite), checked before any field is used: a repository controls these files, and a field of
the wrong type must be a coded error naming the field, never an exception.

A shape is a type (or a tuple of types), a dict of field shapes, a one-item list (every item has
that shape), ``Required(shape)`` for a field that must be present, or ``MapOf(shape)`` for an
object whose values all have that shape. A null field counts as absent, as in Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
    float: "a number",
}


@dataclass(frozen=True)
class Required:
    shape: Any


@dataclass(frozen=True)
class MapOf:
    shape: Any


def _describe(expected: Any) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in expected)
    if isinstance(expected, dict | MapOf):
        return "an object"
    if isinstance(expected, list):
        return "a list"
    return _TYPE_NAMES.get(expected, getattr(expected, "__name__", str(expected)))


def _type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, expected: type | tuple[type, ...]) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML's true is not an integer here
    return isinstance(value, kinds)


def _check_fields(value: dict[str, Any], shape: dict[str, Any], path: str) -> str | None:
    for key, field_shape in shape.items():
        child = value.get(key)
        where = f"{path}.{key}" if path else key
        if child is None:
            if isinstance(field_shape, Required):
                return f"{where} is required"
            continue
        wrong = check(child, field_shape.shape if isinstance(field_shape, Required) else field_shape, where)
        if wrong:
            return wrong
    return None


def check(value: Any, shape: Any, path: str = "") -> str | None:
    """Why ``value`` does not have ``shape`` (the first wrong field, by path), or None."""
    if isinstance(shape, Required):
        shape = shape.shape
    if isinstance(shape, dict | MapOf):
        if not isinstance(value, dict):
            return f"{path or '(root)'} must be {_describe(shape)}, not {_type_name(value)}"
        if isinstance(shape, MapOf):
            for key, child in value.items():
                wrong = check(child, shape.shape, f"{path}.{key}" if path else str(key))
                if wrong:
                    return wrong
            return None
        return _check_fields(value, shape, path)
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{path} must be a list, not {_type_name(value)}"
        for i, item in enumerate(value):
            wrong = check(item, shape[0], f"{path}[{i}]")
            if wrong:
                return wrong
        return None
    if shape is Any or _is(value, shape):
        return None
    return f"{path or '(root)'} must be {_describe(shape)}, not {_type_name(value)}"


SELECTOR = {
    "matchLabels": MapOf(str),
    "matchExpressions": [{"key": Required(str), "operator": Required(str), "values": [str]}],
}

MATCH = {
    "kinds": [{"apiGroups": [str], "kinds": [str]}],
    "scope": str,
    "namespaces": [str],
    "excludedNamespaces": [str],
    "labelSelector": SELECTOR,
    "namespaceSelector": SELECTOR,
    "name": str,
    "source": str,
}

CEL_SOURCE = {
    "validations": [{"expression": Required(str), "message": str, "messageExpression": str}],
    "variables": [{"name": Required(str), "expression": Required(str)}],
    "matchConditions": [{"name": str, "expression": Required(str)}],
    "failurePolicy": str,
}

TEMPLATE = {
    "spec": Required(
        {
            "crd": {
                "spec": {
                    "names": {"kind": str, "shortNames": [str]},
                    "validation": {"openAPIV3Schema": dict, "legacySchema": bool},
                }
            },
            "targets": Required(
                [
                    {
                        "target": Required(str),
                        "rego": str,
                        "libs": [str],
                        "code": [{"engine": Required(str), "source": Required(dict)}],
                    }
                ]
            ),
        }
    )
}

CONSTRAINT = {
    "spec": {
        "enforcementAction": str,
        "scopedEnforcementActions": [{"action": str, "enforcementPoints": [{"name": str}]}],
        "match": MATCH,
        "parameters": dict,
    }
}

EXPANSION = {
    "spec": Required(
        {
            "applyTo": [{"groups": [str], "versions": [str], "kinds": [str]}],
            "templateSource": str,
            "generatedGVK": {"group": str, "version": str, "kind": str},
            "enforcementAction": str,
        }
    )
}

SUITE = {
    "tests": [
        {
            "name": str,
            "template": Required(str),
            "constraint": Required(str),
            "expansion": str,
            "cases": [
                {
                    "name": str,
                    "object": Required(str),
                    "inventory": [str],
                    "assertions": [{"violations": (int, str, bool), "message": str}],
                }
            ],
        }
    ]
}
