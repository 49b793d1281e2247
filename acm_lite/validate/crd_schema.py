"""Schemas a repository supplies (a CRD's ``openAPIV3Schema``, a ConstraintTemplate's parameter
schema): checked as Kubernetes checks them before use, and validated with a validator that can
neither fetch anything nor backtrack.

Kubernetes forbids ``$ref`` (and ``definitions``, ``patternProperties``...) in these schemas;
refusing them keeps the schema library from resolving a reference to a URL. ``pattern`` runs in
RE2, Kubernetes' regular-expression semantics, whose matching time is linear.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema
import re2
from referencing import Registry
from referencing.exceptions import NoSuchResource

MAX_DEPTH = 64
# what Kubernetes forbids in these schemas, and the Draft 7 keywords it does not have at all (a
# validator would otherwise act on them, below where the structure check looks)
FORBIDDEN = (
    "$ref",
    "$schema",
    "id",
    "definitions",
    "dependencies",
    "additionalItems",
    "patternProperties",
    "$id",
    "const",
    "contains",
    "if",
    "then",
    "else",
    "propertyNames",
)
TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


_META: Any = jsonschema.Draft7Validator


def _refuse(uri: str) -> Any:
    raise NoSuchResource(uri)


NO_RETRIEVAL: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2; raises ``re2.error`` when RE2 cannot compile it."""
    return re2.compile(pattern, _RE2_OPTIONS)


def pattern_error(pattern: str) -> str | None:
    """Why RE2 cannot compile ``pattern``, or None."""
    try:
        compile_pattern(pattern)
    except re2.error as e:
        reason = e.args[0] if e.args else e
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None


def _children(node: dict[str, Any], path: str) -> Iterator[tuple[Any, str]]:
    """The subschemas of one schema node, with their paths."""
    for key in ("properties",):
        value = node.get(key)
        if isinstance(value, dict):
            yield from ((child, f"{path}.{key}.{name}") for name, child in value.items())
    for key in ("additionalProperties", "not", "items"):
        value = node.get(key)
        if isinstance(value, dict):
            yield value, f"{path}.{key}"
    for key in ("allOf", "anyOf", "oneOf"):
        value = node.get(key)
        if isinstance(value, list):
            yield from ((child, f"{path}.{key}[{i}]") for i, child in enumerate(value))


def _node_error(node: Any, path: str) -> str | None:
    if not isinstance(node, dict):
        return f"{path} must be an object (a schema)"
    for keyword in FORBIDDEN:
        if keyword in node:
            return f"{path}.{keyword} is not supported in a Kubernetes schema"
    kind = node.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in TYPES):
        return f"{path}.type must be one of {', '.join(sorted(TYPES))}"
    for key, want in (
        ("properties", dict),
        ("required", list),
        ("enum", list),
        ("allOf", list),
        ("anyOf", list),
        ("oneOf", list),
        ("items", dict),
    ):
        if key in node and not isinstance(node[key], want):
            return f"{path}.{key} must be {'an object' if want is dict else 'a list'}"
    pattern = node.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            return f"{path}.pattern must be a string"
        wrong = pattern_error(pattern)
        if wrong:
            return f"{path}.pattern is not a valid RE2 regular expression: {wrong}"
    return None


def _structure_error(schema: Any, path: str) -> str | None:
    stack: list[tuple[Any, str, int]] = [(schema, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"{where}: the schema nests deeper than {MAX_DEPTH} levels"
        wrong = _node_error(node, where)
        if wrong:
            return wrong
        stack.extend((child, child_path, depth + 1) for child, child_path in _children(node, where))
    return None


def problem(schema: Any, path: str = "openAPIV3Schema") -> str | None:
    """Why ``schema`` cannot be used (forbidden keywords, wrong types, a pattern RE2 cannot
    compile), naming the field; None when it can."""
    wrong = _structure_error(schema, path)
    if wrong:
        return wrong
    try:
        _META.check_schema(schema, format_checker=None)  # no format checks: they use Python re
    except jsonschema.SchemaError as e:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        return f"{path}{where}: {_short(e.message)}"
    return None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = compile_pattern(pattern).search(instance)
    except re2.error:  # a pattern the structure check did not reach: fail closed, never crash
        yield jsonschema.ValidationError(f"pattern {_short(repr(pattern), 80)} is not valid RE2")
        return
    if not matched:
        yield jsonschema.ValidationError(f"{_short(repr(instance), 80)} does not match {pattern!r}")


_validators: Any = jsonschema.validators
SafeValidator: Any = _validators.extend(jsonschema.Draft7Validator, validators={"pattern": _pattern})


def validator(schema: dict[str, Any]) -> Any:
    """A validator of instances for a schema ``problem`` accepted: RE2 patterns, no retrieval."""
    return SafeValidator(schema, registry=NO_RETRIEVAL)
