"""The Rego engine, behind one module so another regorus build can replace it.

Uses the ``regorus`` module (published on PyPI as ``gordon-to-regorus``), in Rego v0 syntax as
Gatekeeper writes it. A template compiles once; each evaluation runs on a clone.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import regorus

from acm_lite.policy import bounds, recursion, rego_ast, rego_source


class RegoError(Exception):
    """A policy that does not compile, or an evaluation that fails."""


class RegoUnsupportedError(RegoError):
    """A policy using a construct acm-lite cannot evaluate as Gatekeeper does."""


# Calls Gatekeeper's Rego driver provides and acm-lite does not, with why.
UNSUPPORTED_CALLS = {
    "external_data": "Gatekeeper's external data providers are called over the network at admission; "
    "acm-lite evaluates offline and calls no provider",
}


def _unsupported(mods: list[rego_ast.Module]) -> str | None:
    """The first call of a builtin acm-lite does not provide, as ``file:line: why``."""
    defined = {rule.path[-1] for module in mods for rule in module.rules}
    for module in mods:
        for rule in module.rules:
            for ref in rego_ast.references(rule.node):
                why = UNSUPPORTED_CALLS.get(ref.root)
                if why and ref.call_args is not None and not ref.segments and ref.root not in defined:
                    return f"{module.file}:{ref.line}: {ref.root}() is not supported: {why}"
    return None


def _first_paragraph(message: str) -> str:
    """The engine's message without the Rust backtrace it appends when RUST_BACKTRACE is set."""
    return message.split("\nStack backtrace:", 1)[0].strip()


def _static_checks(engine: Any) -> None:
    """Refuse what would crash the engine rather than fail: recursion and oversized builtins."""
    try:
        mods = rego_ast.modules(engine.get_ast_as_json())
        wrong = recursion.check(mods) or bounds.check(mods)
        unsupported = _unsupported(mods)
    except RecursionError as e:
        raise RegoError("the policy nests too deeply to be checked") from e
    except (RuntimeError, ValueError) as e:
        raise RegoError(f"cannot inspect the policy: {_first_paragraph(str(e))}") from e
    if wrong:
        raise RegoError(wrong)
    if unsupported:
        raise RegoUnsupportedError(unsupported)


class RegoProgram:
    """One template's Rego (with its libs), compiled once, evaluated on per-thread clones."""

    def __init__(self, name: str, rego: str, libs: list[str]):
        engine = regorus.Engine()
        engine.set_rego_v0(True)
        try:
            texts = [rego_source.rewrite(text) for text in (rego, *libs)]
            package = engine.add_policy(f"{name}.rego", texts[0])
            for i, lib in enumerate(texts[1:]):
                engine.add_policy(f"{name}.lib{i}.rego", lib)
            if any(rego_source.HELPER_PACKAGE in text for text in texts):
                engine.add_policy("acm_lite_builtins.rego", rego_source.HELPER_MODULE)
                engine.add_extension(rego_source.SPRINTF_PLAN, 2, rego_source.sprintf_plan)
        except (RuntimeError, ValueError) as e:
            raise RegoError(_first_paragraph(str(e))) from e
        _static_checks(engine)
        self.rule = (
            f"{package}.violation"
            if package.startswith("data.")
            else (f"data.{package.removeprefix('package ').strip()}.violation")
        )
        self._engine = engine
        self._local = threading.local()
        self._inventory_json = "{}"
        self._inventory_version = 0

    def set_inventory(self, inventory: dict[str, Any], version: int) -> None:
        """``data.inventory`` for referential templates (cluster and namespace objects)."""
        self._inventory_json = json.dumps({"inventory": inventory})
        self._inventory_version = version

    def _clone(self) -> Any:
        local = self._local
        if getattr(local, "version", -1) != self._inventory_version or not hasattr(local, "engine"):
            engine = self._engine.clone()
            engine.add_data_json(self._inventory_json)
            local.engine, local.version = engine, self._inventory_version
        return local.engine

    def violations(self, review_input: dict[str, Any]) -> list[dict[str, Any]]:
        return self.violations_raw(json.dumps(review_input))

    def violations_raw(self, input_json: str) -> list[dict[str, Any]]:
        """Evaluate with ``input`` given as JSON text (callers reuse serialised reviews)."""
        engine = self._clone()
        try:
            engine.set_input_json(input_json)
            result = engine.eval_rule_as_json(self.rule)
        except (RuntimeError, ValueError) as e:
            raise RegoError(_first_paragraph(str(e))) from e
        found = json.loads(result) if result else []
        if isinstance(found, dict):  # an undefined rule comes back as an empty object
            return []
        return [v for v in found if isinstance(v, dict)]
