"""Every registered error code says what to do about it, `acm-lite errors CODE` prints it, and
docs/troubleshooting.md is generated from the same texts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from acm_lite import errors
from acm_lite.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "acm_lite" / "data" / "remediation.yaml"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_troubleshooting", ROOT / "hack" / "gen_troubleshooting.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_code_has_a_remediation() -> None:
    lacking = [
        c.id
        for c in errors.all_codes()
        if (fix := errors.remediation(c.id)) is None or len(fix.causes) < 20 or len(fix.fix) < 10
    ]
    assert lacking == [], f"write causes and fix for these in {DATA.relative_to(ROOT)}"


def test_the_remediation_file_is_keyed_by_registered_codes_in_order() -> None:
    raw = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    keys = list(raw)
    assert keys == sorted(keys)
    assert [k for k in keys if errors.lookup(k) is None] == []
    assert all(set(entry) == {"causes", "fix"} for entry in raw.values())


def test_a_code_unknown_to_the_file_has_no_remediation() -> None:
    assert errors.remediation("ACM0000") is None


def test_errors_code_prints_summary_causes_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "knv1068"]) == 0
    out = capsys.readouterr().out
    fix = errors.remediation("KNV1068")
    assert fix is not None
    flat = " ".join(out.split())
    assert out.startswith("KNV1068 ActionableHydrationError (permanent)\n")
    assert " ".join(errors.RENDER_FAILED.summary.split()) in flat
    assert "Usual causes: " + fix.causes in flat
    assert "What to do: " + fix.fix in flat


def test_errors_code_marks_a_code_that_does_not_block(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "KNV1021"]) == 0
    assert capsys.readouterr().out.startswith("KNV1021 UnknownObjectKind (waiting, not blocking)\n")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_errors_code_carries_the_remediation_as_data(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "ACM1103", "-o", fmt]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    fix = errors.remediation("ACM1103")
    assert fix is not None
    assert rows == [
        {
            "code": "ACM1103",
            "name": "SourceAuthFailed",
            "category": "permanent",
            "summary": errors.SOURCE_AUTH_FAILED.summary,
            "blocking": True,
            "causes": fix.causes,
            "fix": fix.fix,
        }
    ]


def test_troubleshooting_is_generated_from_the_registry_and_current() -> None:
    generator = _generator()
    text = generator.render()
    assert (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8") == text, (
        "docs/troubleshooting.md is stale: run .venv/bin/python hack/gen_troubleshooting.py"
    )
    for code in errors.all_codes():
        fix = errors.remediation(code.id)
        assert fix is not None
        assert f"### {code.id} {code.name}\n" in text
        assert f"**What to do.** {fix.fix}\n" in text


def test_troubleshooting_groups_follow_the_registry_comments() -> None:
    groups = _generator().sections()
    listed = [c for _, codes in groups for c in codes]
    assert sorted(listed) == [c.id for c in errors.all_codes()]
    assert groups[0][0].endswith("(ACM1001-ACM1009)")
    assert "KNV2002" in dict(groups)[next(h for h, _ in groups if h.endswith("(KNV2xxx)"))]
