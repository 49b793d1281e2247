"""The CEL engine for ``K8sNativeValidation`` templates, with ValidatingAdmissionPolicy semantics
as Gatekeeper's ``k8scel`` driver runs them.

Uses ``cel-expr-python`` (the C++ reference implementation) with the strings and optional
extensions Kubernetes enables, and Kubernetes' own libraries (``cel_library``). Variables are
``object``, ``oldObject``, ``params`` (the whole Constraint), ``request``, ``namespaceObject`` and
``variables`` (the template's own variables plus ``variables.params`` and
``variables.anyObject``, as Gatekeeper injects them). There is no ``authorizer``: Gatekeeper
declares none, so an expression using it does not compile.

Semantics carried over from the API server:

- A variable is evaluated only when an expression that is evaluated references it, at most once
  per evaluation; one that fails is an error only where it is read (a read behind ``false &&``
  never is), reported as ``composited variable "x" fails to evaluate: ...``.
- An evaluation error is the decision of ``failurePolicy``: ``Fail`` (the default) denies with
  the message ``expression '<expression>' resulted in error: <error>``, ``Ignore`` admits. A read
  of a missing field is ``no such key: <field>``; ``has()`` and ``?.`` never fail.
- A failing validation's message is its ``messageExpression`` (a string without newlines, at most
  5 KiB, trimmed), else ``message``, else ``failed expression: <expression>``.
- Match conditions: any false skips the object; errors without a false one follow
  ``failurePolicy``.
- Objects are seen as the API server serialises them: quantities in the built-in kinds' quantity
  fields are strings (``cpu: 2`` is ``"2"``), as ``quantity(...)`` expects.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from acm_lite.policy import cel_library

_TOP = ("object", "oldObject", "params", "request", "namespaceObject", "variables")
MAX_MESSAGE_BYTES = 5 * 1024
RESERVED_PREFIX = "gatekeeper_internal_"


class CelError(Exception):
    """An expression that does not compile."""


class CelUnsupportedError(CelError):
    """Kubernetes CEL this engine does not evaluate; ``construct`` names it."""

    def __init__(self, construct: str, message: str):
        super().__init__(message)
        self.construct = construct


def _env() -> Any:
    return cel.NewEnv(
        variables=dict.fromkeys(_TOP, cel.Type.DYN),
        extensions=[
            ext_strings.ExtStrings(),
            ext_optional.ExtOptional(),
            cel.CelExtension("kubernetes", cel_library.declarations()),
        ],
    )


_ENV = _env()


def compile_expression(source: str) -> Any:
    """The compiled expression; raises CelUnsupportedError for Kubernetes CEL this engine lacks, and
    CelError for any other expression that does not compile."""
    try:
        return _ENV.compile(source)
    except Exception as e:  # the binding raises plain exceptions for syntax and type errors
        construct = cel_library.unsupported_construct(source)
        if construct is not None:
            raise CelUnsupportedError(
                construct, f"{source!r} uses {construct}, which acm-lite's CEL engine does not evaluate"
            ) from e
        if re.search(r"\bauthorizer\b", source):
            raise CelError(
                f"{source!r}: the authorizer variable is not available to constraint templates "
                "(Gatekeeper declares none)"
            ) from e
        raise CelError(f"{source!r}: {_first_line(str(e))}") from e


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


_VARIABLE_REF = re.compile(r"\bvariables\s*(?:\.\s*\??\s*([A-Za-z_]\w*)|\[\s*[\"']([A-Za-z_]\w*)[\"']\s*\])")
_VARIABLES_WORD = re.compile(r"\bvariables\b")


def _references(source: str) -> frozenset[str] | None:
    """The variable names ``source`` reads; None when it uses ``variables`` as a whole."""
    names = {a or b for a, b in _VARIABLE_REF.findall(source)}
    if len(_VARIABLES_WORD.findall(source)) != len(_VARIABLE_REF.findall(source)):
        return None
    return frozenset(names)


@dataclass(frozen=True)
class Compiled:
    source: str
    program: Any
    needs: tuple[str, ...]  # template variables to evaluate first, in definition order


@dataclass(frozen=True)
class Validation:
    expression: Compiled
    message: str
    message_expression: Compiled | None


def evaluate(source: str, data: dict[str, Any] | None = None) -> Any:
    """One expression's value against ``data`` (the top-level variables); raises CelError with
    the error's message when it compiles but fails."""
    try:
        value = compile_expression(source).eval(_ENV.Activation(data=data or {}))
    except CelError:
        raise
    except Exception as e:
        raise CelError(_error_text(e, {})) from e
    if value.type() == cel.Type.ERROR:
        raise CelError(_error_text(value.plain_value(), {}))
    return value.plain_value()


# --- errors as the API server words them -----------------------------------------------------------

_KEY_NOT_FOUND = re.compile(r'Key not found in map\s*:\s*"?(.*?)"?\s*(\[[A-Z_]+\])?$')
_STATUS_PREFIX = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r"\s*\[[A-Z_]+\]$")
_INDEX_ERROR = re.compile(r"Index error: index=(-?\d+) size=(\d+)")


def _error_text(raw: Any, failed: dict[str, str]) -> str:
    """cel-cpp's error as cel-go words it; a missing key naming a failed variable is that
    variable's failure."""
    text = _STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", str(raw).strip()))
    missing = _KEY_NOT_FOUND.search(text)
    if missing:
        key = missing.group(1)
        if key in failed:
            return failed[key]
        return f"no such key: {key}"
    if text.startswith("No matching overloads found"):
        return "no such overload" + text.removeprefix("No matching overloads found").replace(" : ", ": ", 1)
    if text == "divide by zero":
        return "division by zero"
    index = _INDEX_ERROR.fullmatch(text)
    if index:
        return f"index '{index.group(1)}' out of range in list size '{index.group(2)}'"
    return text


class _FailedError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- objects as the API server serialises them -----------------------------------------------------

_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


_SI = (
    (18, "E"),
    (15, "P"),
    (12, "T"),
    (9, "G"),
    (6, "M"),
    (3, "k"),
    (0, ""),
    (-3, "m"),
    (-6, "u"),
    (-9, "n"),
)


def _quantity_text(value: Any) -> Any:
    """A number in a quantity field as the API server writes it back: its canonical decimal form
    (``2`` is ``"2"``, ``0.5`` is ``"500m"``, ``1000`` is ``"1k"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return value
    try:
        amount = cel_library.parse_quantity(repr(value) if isinstance(value, float) else str(value))
    except cel_library.LibraryError:
        return value
    if amount == 0:
        return "0"
    for exponent, suffix in _SI:
        mantissa = amount / Fraction(10) ** exponent
        if mantissa.denominator == 1:
            return f"{mantissa.numerator}{suffix}"
    return value


def _quantities(mapping: Any) -> Any:
    if not isinstance(mapping, dict) or not any(
        isinstance(v, int | float) and not isinstance(v, bool) for v in mapping.values()
    ):
        return mapping
    return {k: _quantity_text(v) for k, v in mapping.items()}


def _with_resources(container: Any) -> Any:
    if not isinstance(container, dict) or not isinstance(container.get("resources"), dict):
        return container
    resources = container["resources"]
    fixed = {k: _quantities(v) if k in ("limits", "requests") else v for k, v in resources.items()}
    if all(fixed[k] is resources[k] for k in fixed):
        return container
    return {**container, "resources": fixed}


def _pod_spec(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    changed = dict(spec)
    for key in _CONTAINER_LISTS:
        if isinstance(spec.get(key), list):
            changed[key] = [_with_resources(c) for c in spec[key]]
    if isinstance(spec.get("overhead"), dict):
        changed["overhead"] = _quantities(spec["overhead"])
    if all(changed[k] is spec.get(k) for k in changed):
        return spec
    return changed


def _replace_at(body: Any, path: tuple[str, ...], fix: Any) -> Any:
    if not isinstance(body, dict):
        return body
    inner = body.get(path[0])
    if not isinstance(inner, dict) and len(path) > 1:
        return body
    new = fix(inner) if len(path) == 1 else _replace_at(inner, path[1:], fix)
    return body if new is inner else {**body, path[0]: new}


_LAST_SERVED: list[Any] = [None, None]  # [body, as_served(body)]: one object meets every constraint in turn


def as_served(body: Any) -> Any:
    """``as_served`` of the object the previous call was given is not worked out again."""
    last = _LAST_SERVED
    if last[0] is body:
        return last[1]
    served = _as_served(body)
    last[0], last[1] = body, served
    return served


def _as_served(body: Any) -> Any:
    """``body`` with numeric quantities of the built-in kinds (containers' resources, pod overhead,
    ResourceQuota hard, LimitRange limits, PersistentVolumeClaim resources) as strings, as the
    API server serialises them; the same object when nothing changes."""
    if not isinstance(body, dict):
        return body
    kind = body.get("kind")
    path = _POD_SPEC_PATHS.get(str(kind))
    if path is not None:
        return _replace_at(body, path, _pod_spec)
    if kind == "ResourceQuota":
        return _replace_at(body, ("spec", "hard"), _quantities)
    if kind == "PersistentVolumeClaim":
        for key in ("requests", "limits"):
            body = _replace_at(body, ("spec", "resources", key), _quantities)
        return body
    if kind == "LimitRange" and isinstance(body.get("spec"), dict):
        limits = body["spec"].get("limits")
        if isinstance(limits, list):
            fixed = [
                {k: _quantities(v) for k, v in item.items()} if isinstance(item, dict) else item
                for item in limits
            ]
            return {**body, "spec": {**body["spec"], "limits": fixed}}
    return body


# --- programs ---------------------------------------------------------------------------------------


class CelProgram:
    """A template's CEL source: variables, validations, match conditions, failure policy; compiled
    once, evaluated with one activation per evaluation (rebuilt only when a variable is added)."""

    def __init__(self, source: dict[str, Any]):
        policy = source.get("failurePolicy", "Fail")
        if policy not in ("Fail", "Ignore"):
            raise CelError(f"invalid failure policy: unrecognized failure policy: {policy}")
        order: list[str] = []
        self._variables: dict[str, Compiled] = {}
        for v in source.get("variables") or []:
            name = str(v["name"])
            if name.startswith(RESERVED_PREFIX) or name in ("params", "anyObject"):
                raise CelError(
                    f"invalid variable definition: {name} is not a valid variable name (Gatekeeper reserves "
                    f"params, anyObject and the prefix {RESERVED_PREFIX!r})"
                )
            self._variables[name] = self._compile(str(v["expression"]), order)
            order.append(name)
        self.match_conditions = [
            self._compile(str(m["expression"]), order) for m in source.get("matchConditions") or []
        ]
        self.validations = [
            Validation(
                self._compile(str(v["expression"]), order),
                str(v.get("message") or ""),
                self._compile(str(v["messageExpression"]), order) if v.get("messageExpression") else None,
            )
            for v in source.get("validations") or []
        ]
        for m in source.get("matchConditions") or []:
            if str(m.get("name") or "").startswith(RESERVED_PREFIX):
                raise CelError(
                    f"invalid match condition: {m['name']} cannot have {RESERVED_PREFIX!r} as a prefix"
                )
        self.fail_closed = policy == "Fail"

    def _compile(self, source: str, defined: list[str]) -> Compiled:
        program = compile_expression(source)
        refs = _references(source)
        direct = set(defined) if refs is None else {r for r in refs if r in defined}
        needed: set[str] = set()
        pending = list(direct)
        while pending:
            name = pending.pop()
            if name not in needed:
                needed.add(name)
                pending += self._variables[name].needs
        return Compiled(source, program, tuple(n for n in defined if n in needed))

    def violations(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """``data`` holds the top-level variables; returns Gatekeeper-shaped violations."""
        return _Evaluation(self, data).run()


class _Evaluation:
    """One object against one program: the activation and the variables evaluated so far."""

    def __init__(self, program: CelProgram, data: dict[str, Any]):
        self.program = program
        self.base = dict(data)
        for key in ("object", "oldObject"):
            if key in self.base:
                self.base[key] = as_served(self.base[key])
        given = dict(data.get("variables") or {})
        if "anyObject" in given:
            given["anyObject"] = as_served(given["anyObject"])
        self.values: dict[str, Any] = given
        self.failed: dict[str, str] = {}
        self.done: set[str] = set()
        self.activation: Any = None

    def _activate(self) -> Any:
        if self.activation is None:
            self.activation = _ENV.Activation(data={**self.base, "variables": self.values})
        return self.activation

    def _ensure(self, needs: tuple[str, ...]) -> None:
        for name in needs:
            if name in self.done:
                continue
            self.done.add(name)
            compiled = self.program._variables[name]
            self._ensure(compiled.needs)
            try:
                value = self._eval_raw(compiled)
            except _FailedError as e:
                self.failed[name] = f'composited variable "{name}" fails to evaluate: {e.message}'
                continue
            self.values[name] = value
            self.activation = None

    def _eval_raw(self, compiled: Compiled) -> Any:
        try:
            value = compiled.program.eval(self._activate())
        except Exception as e:
            raise _FailedError(_error_text(e, self.failed)) from e
        if value.type() == cel.Type.ERROR:
            raise _FailedError(_error_text(value.plain_value(), self.failed))
        return value.plain_value()

    def eval(self, compiled: Compiled) -> Any:
        """The value; raises _FailedError with the API server's message."""
        self._ensure(compiled.needs)
        try:
            return self._eval_raw(compiled)
        except _FailedError as e:
            raise _FailedError(f"expression '{compiled.source}' resulted in error: {e.message}") from e

    def _failure(self, message: str) -> list[dict[str, Any]]:
        return [{"msg": message}] if self.program.fail_closed else []

    def run(self) -> list[dict[str, Any]]:
        errors = []
        for condition in self.program.match_conditions:
            try:
                if self.eval(condition) is not True:
                    return []
            except _FailedError as e:
                errors.append(e.message)
        if errors:
            return self._failure(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        found = []
        for validation in self.program.validations:
            try:
                if self.eval(validation.expression) is True:
                    continue
            except _FailedError as e:
                found += self._failure(e.message)
                continue
            found.append({"msg": self._message(validation)})
        return found

    def _message(self, validation: Validation) -> str:
        if validation.message_expression is not None:
            try:
                rendered = self.eval(validation.message_expression)
            except _FailedError:
                rendered = None
            if isinstance(rendered, str):
                text = rendered.strip()
                if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_BYTES:
                    return text
        if validation.message.strip():
            return validation.message.strip()
        return f"failed expression: {validation.expression.source.strip()}"
