"""The CEL engine for ``K8sNativeValidation`` templates, with ValidatingAdmissionPolicy semantics.

Uses ``cel-expr-python`` (the C++ reference implementation) with the strings and optional
extensions that Kubernetes enables. Variables are ``object``, ``oldObject``, ``params`` (the whole
Constraint), ``request``, ``namespaceObject`` and ``variables`` (the template's own variables plus
``variables.params`` and ``variables.anyObject``, as Gatekeeper injects them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

_TOP = ("object", "oldObject", "params", "request", "namespaceObject", "variables", "authorizer")


class CelError(Exception):
    """An expression that does not compile, or an evaluation that fails."""


def _env() -> Any:
    return cel.NewEnv(
        variables=dict.fromkeys(_TOP, cel.Type.DYN),
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()],
    )


_ENV = _env()


def compile_expression(source: str) -> Any:
    try:
        return _ENV.compile(source)
    except Exception as e:  # the binding raises plain exceptions for syntax and type errors
        raise CelError(f"{source!r}: {e}") from e


@dataclass(frozen=True)
class Validation:
    expression: Any
    message: str
    message_expression: Any | None


class CelProgram:
    """A template's CEL source: variables, validations, match conditions, failure policy."""

    def __init__(self, source: dict[str, Any]):
        self.variables = [
            (str(v["name"]), compile_expression(str(v["expression"]))) for v in source.get("variables") or []
        ]
        self.match_conditions = [
            compile_expression(str(m["expression"])) for m in source.get("matchConditions") or []
        ]
        self.validations = [
            Validation(
                compile_expression(str(v["expression"])),
                str(v.get("message") or ""),
                compile_expression(str(v["messageExpression"])) if v.get("messageExpression") else None,
            )
            for v in source.get("validations") or []
        ]
        self.fail_closed = (source.get("failurePolicy") or "Fail") == "Fail"

    @staticmethod
    def _eval(expression: Any, data: dict[str, Any]) -> Any:
        try:
            value = expression.eval(data=data)
        except Exception as e:
            raise CelError(str(e)) from e
        if value.type() == cel.Type.ERROR:
            raise CelError(str(value.plain_value()))
        return value.plain_value()

    def violations(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """``data`` holds the top-level variables; returns Gatekeeper-shaped violations."""
        try:
            values = dict(data.get("variables") or {})
            for name, expression in self.variables:
                scope = {**data, "variables": values}
                values[name] = self._eval(expression, scope)
            scope = {**data, "variables": values}
            if not all(self._eval(m, scope) is True for m in self.match_conditions):
                return []
            found = []
            for validation in self.validations:
                if self._eval(validation.expression, scope) is True:
                    continue
                message = validation.message or "failed expression"
                if validation.message_expression is not None:
                    rendered = self._eval(validation.message_expression, scope)
                    message = rendered if isinstance(rendered, str) and rendered else message
                found.append({"msg": message})
            return found
        except CelError as e:
            if self.fail_closed:
                return [{"msg": f"evaluation error (failurePolicy Fail): {e}"}]
            return []
