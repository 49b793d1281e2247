"""The package keeps its layers: import-linter's contracts in pyproject.toml hold for acm_lite, and
the same contracts, run over a small package of the same shape, report an import that breaks each
of them (so a kept contract is not a contract that checks nothing)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "acm_lite"
PROBE = "layered"  # the small package's name
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


CONTRACTS: list[dict[str, Any]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "importlinter"
]["contracts"]


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports run where ``cwd``'s pyproject.toml and package are; no cache is written."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout, result.stdout


def _renamed(value: Any) -> Any:
    """A contract's option with the package's name replaced by the probe's."""
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    if isinstance(value, str):
        return re.sub(rf"\b{PACKAGE}\b", PROBE, value)
    return value


def _layer_modules(layer: str) -> list[str]:
    """The module tails of one layer: ``"plan | policy"`` → plan, policy."""
    return [m.strip().strip("()") for m in re.split(r"[|:]", layer) if m.strip()]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # a string; JSON's escapes are TOML's


def _probe(root: Path, injected: tuple[str, str] | None) -> Path:
    """A package with a module for every module the contracts name, the project's contracts
    pointed at it, and, when ``injected`` is (importer, imported), one import between the two."""
    tails = {
        tail
        for contract in CONTRACTS
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for tail in _layer_modules(layer)
    }
    for contract in CONTRACTS:
        for key in ("modules", "source_modules", "forbidden_modules"):
            tails |= {m.removeprefix(f"{PACKAGE}.") for m in contract.get(key, [])}
    for tail in tails:
        path = root.joinpath(PROBE, *tail.split(".")).with_suffix(".py")
        for parent in path.relative_to(root).parents:
            if parent != Path("."):
                (root / parent).mkdir(exist_ok=True)
                (root / parent / "__init__.py").touch()
        path.write_text('"""A stub."""\n')
    if injected:
        importer, imported = injected
        path = root.joinpath(PROBE, *importer.split(".")).with_suffix(".py")
        path.write_text(f"import {PROBE}.{imported}  # noqa: F401\n")
    lines = ["[tool.importlinter]", f"root_package = {_toml(PROBE)}"]
    for contract in CONTRACTS:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [
            f"{key} = {_toml(value if key == 'name' else _renamed(value))}"
            for key, value in contract.items()
            if key != "ignore_imports"
        ]
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return root


def _violation(contract: dict[str, Any]) -> tuple[str, str]:
    """An import (importer, imported; module tails) that the contract must refuse."""
    if contract["type"] == "layers":
        top, bottom = _layer_modules(contract["layers"][0]), _layer_modules(contract["layers"][-1])
        return bottom[0], top[0]
    if contract["type"] == "independence":
        first, second = contract["modules"][:2]
        return first.removeprefix(f"{PACKAGE}."), second.removeprefix(f"{PACKAGE}.")
    if contract["type"] == "forbidden":
        return (
            contract["source_modules"][0].removeprefix(f"{PACKAGE}."),
            contract["forbidden_modules"][0].removeprefix(f"{PACKAGE}."),
        )
    raise AssertionError(f"no violation known for a {contract['type']} contract")


def test_probe_keeps_the_contracts(tmp_path: Path) -> None:
    result = _lint(_probe(tmp_path, None))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout, result.stdout


@pytest.mark.parametrize("contract", CONTRACTS, ids=[c["name"] for c in CONTRACTS])
def test_each_contract_reports_an_import_that_breaks_it(contract: dict[str, Any], tmp_path: Path) -> None:
    importer, imported = _violation(contract)
    result = _lint(_probe(tmp_path, (importer, imported)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(rf"^{re.escape(contract['name'])} BROKEN$", result.stdout, re.M), result.stdout
    assert f"{PROBE}.{importer} -> {PROBE}.{imported}" in result.stdout, result.stdout
