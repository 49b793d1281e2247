"""A template's Rego as the engine parsed it: packages, imports, rules and the references of
each rule, for the static checks run before anything is evaluated.

Reads the AST regorus exports as JSON, so the checks see exactly what the engine will run. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str, ...]
_REF_NODES = frozenset({"Var", "RefDot", "RefBrack"})


@dataclass
class Rule:
    """One definition of a rule or function (a rule defined twice has two)."""

    path: Path  # data.<package>.<name>...
    file: str
    line: int
    node: dict[str, Any]
    locals: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Reference:
    """A static reference made by a rule body (``data.lib.f``, ``helpers.h``, ``f``), with the
    call's literal arguments when it is a call."""

    root: str
    segments: Path
    call_args: tuple[Any, ...] | None = None
    line: int = 0


@dataclass
class Module:
    file: str
    text: str
    package: Path
    imports: dict[str, Path]  # alias -> absolute path under data
    rules: list[Rule]


def _span_line(node: dict[str, Any]) -> int:
    span = node.get("span")
    return int(span.get("line", 0)) if isinstance(span, dict) else 0


def expression(node: Any) -> tuple[str, dict[str, Any]] | None:
    """The (type, fields) of an expression node ``{"Type": {...}}``."""
    if isinstance(node, dict) and len(node) == 1:
        kind, body = next(iter(node.items()))
        if isinstance(body, dict) and kind[:1].isupper():
            return kind, body
    return None


def chain(node: Any) -> tuple[str, list[str], list[Any]] | None:
    """A reference as its root variable, its leading static segments, and the expressions of
    its dynamic indexes (``data.a[x].b`` is ``data``, ``[a]`` and ``[x, .b]``)."""
    parts: list[tuple[str, Any]] = []
    current = expression(node)
    while current is not None and current[0] in ("RefDot", "RefBrack"):
        kind, body = current
        if kind == "RefDot":
            value = body.get("field")
            parts.append(("field", value[1] if isinstance(value, list) and len(value) == 2 else None))
        else:
            parts.append(("index", body.get("index")))
        current = expression(body.get("refr"))
    if current is None or current[0] != "Var":
        return None
    segments: list[str] = []
    dynamic: list[Any] = []
    for kind, value in reversed(parts):
        if dynamic:
            if kind == "index":
                dynamic.append(value)
            continue
        literal = expression(value) if kind == "index" else None
        if kind == "field" and isinstance(value, str):
            segments.append(value)
        elif literal is not None and literal[0] == "String" and isinstance(literal[1].get("value"), str):
            segments.append(literal[1]["value"])
        else:
            dynamic.append(value)
    return str(current[1].get("value", "")), segments, dynamic


def _span_text(text: str, span: Any) -> str | None:
    if isinstance(span, dict) and isinstance(span.get("start"), int) and isinstance(span.get("end"), int):
        return text.encode()[span["start"] : span["end"]].decode(errors="replace")
    return None


def _bound_names(node: Any, text: str) -> Iterator[str]:
    """Variables a statement declares locally (``:=``, ``some``, ``every``)."""
    inner = expression(node)
    if inner is None:
        return
    kind, body = inner
    if kind == "AssignExpr" and body.get("op") == "ColEq":
        yield from _vars(body.get("lhs"))
    elif kind == "SomeIn":
        yield from _vars(body.get("key"))
        yield from _vars(body.get("value"))
    elif kind in ("SomeVars", "Every"):
        spans = [*(body.get("vars") or []), body.get("key"), body.get("value")]
        yield from (name for span in spans if (name := _span_text(text, span)))


def _vars(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        inner = expression(node)
        if inner is not None and inner[0] == "Var":
            yield str(inner[1].get("value", ""))
            return
        for value in node.values():
            yield from _vars(value)
    elif isinstance(node, list):
        for value in node:
            yield from _vars(value)


def _locals(node: Any, text: str, found: set[str]) -> None:
    if isinstance(node, dict):
        found.update(_bound_names(node, text))
        for value in node.values():
            _locals(value, text, found)
    elif isinstance(node, list):
        for value in node:
            _locals(value, text, found)


def _rule(spec: dict[str, Any], package: Path, file: str, text: str) -> Rule | None:
    kind, body = expression(spec) or ("", {})
    head = body if kind == "Default" else (expression(body.get("head")) or ("", {}))[1]
    ref = chain(head.get("refr"))
    if ref is None:
        return None
    root, segments, _ = ref
    rule = Rule((*package, root, *segments), file, _span_line(body), spec)
    rule.locals.update(_vars(head.get("args") or []))
    _locals(body.get("bodies"), text, rule.locals)
    return rule


def _imports(entries: list[Any]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in entries:
        ref = chain(entry.get("refr")) if isinstance(entry, dict) else None
        if ref is None or ref[0] != "data" or ref[2]:
            continue
        path = ("data", *ref[1])
        alias = entry.get("as")
        name = path[-1] if not isinstance(alias, str) else alias
        found[name] = path
    return found


def _alias(entry: dict[str, Any], text: str) -> str | None:
    alias = entry.get("as")
    return _span_text(text, alias) if isinstance(alias, dict) else alias


def modules(ast_json: str) -> list[Module]:
    """Every module the engine holds, with its rules' paths under ``data``."""
    out = []
    for policy in json.loads(ast_json):
        text = str((policy.get("source") or {}).get("contents", ""))
        file = str((policy.get("source") or {}).get("file", ""))
        ast = policy.get("ast") or {}
        package_ref = chain((ast.get("package") or {}).get("refr"))
        if package_ref is None:
            continue
        package: Path = ("data", package_ref[0], *package_ref[1])
        entries = [e for e in ast.get("imports") or [] if isinstance(e, dict)]
        imports = _imports([{**e, "as": _alias(e, text)} for e in entries])
        rules = [r for spec in ast.get("rules") or [] if (r := _rule(spec, package, file, text))]
        out.append(Module(file, text, package, imports, rules))
    return out


def references(node: Any) -> Iterator[Reference]:
    """Every reference and call in ``node`` (a rule), outermost first; a reference's inner
    parts are not reported again (``data.a.b`` is one reference, not also ``data.a``)."""
    inner = expression(node)
    if inner is not None and inner[0] == "Call":
        body = inner[1]
        params = body.get("params") or []
        target = chain(body.get("fcn"))
        if target is not None:
            yield Reference(target[0], tuple(target[1]), tuple(params), _span_line(body))
            for dynamic in target[2]:
                yield from references(dynamic)
        for param in params:
            yield from references(param)
        return
    if inner is not None and inner[0] in _REF_NODES:
        ref = chain(node)
        if ref is not None:
            yield Reference(ref[0], tuple(ref[1]), None, _span_line(inner[1]))
            for dynamic in ref[2]:
                yield from references(dynamic)
            return
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "with_mods":
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def resolve(ref: Reference, module: Module, rule: Rule, local_names: set[str]) -> Path | None:
    """The absolute path under ``data`` a reference names, or None (input, builtins, locals)."""
    if ref.root == "data":
        return ("data", *ref.segments)
    if ref.root in rule.locals:
        return None
    if ref.root in module.imports:
        return (*module.imports[ref.root], *ref.segments)
    if ref.root in local_names:
        return (*module.package, ref.root, *ref.segments)
    return None
