"""The parity suites (tests/policy_parity): each template in CEL and in Rego gives the same
verdicts, through `policy verify` and message for message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acm_lite.objects import Manifest
from acm_lite.policy import model, review, verify

PARITY = Path(__file__).resolve().parents[2] / "policy_parity"
SUITES = sorted(PARITY.glob("*/suite.yaml"))


def test_there_is_a_suite_per_class() -> None:
    assert {s.parent.name for s in SUITES} >= {
        "missing-fields",
        "lazy-variables",
        "quantities",
        "urls",
        "cidrs",
        "formats-and-lists",
    }


@pytest.mark.parametrize("suite", SUITES, ids=[s.parent.name for s in SUITES])
def test_policy_verify_passes_both_engines(suite: Path) -> None:
    results = list(verify.run_suite(suite))
    tests = {r.test for r in results}
    assert tests == {f"{suite.parent.name}-cel", f"{suite.parent.name}-rego"}
    assert [r for r in results if not r.passed] == []
    assert len(results) >= 6


def _load(path: Path) -> Manifest:
    return Manifest(yaml.safe_load(path.read_text()), path.name)


@pytest.mark.parametrize("suite", SUITES, ids=[s.parent.name for s in SUITES])
def test_cel_and_rego_give_the_same_messages(suite: Path) -> None:
    folder = suite.parent
    constraint = _load(folder / "constraint.yaml")
    engines = {}
    for name in ("cel", "rego"):
        policies = model.build([_load(folder / f"template-{name}.yaml"), constraint])
        assert policies.problems == []
        assert [c.template.engine for c in policies.constraints] == [
            name.upper() if name == "cel" else "Rego"
        ]
        engines[name] = policies.constraints[0]
    for sample in sorted((folder / "samples").glob("*.yaml")):
        subject = review.Subject(_load(sample).body, sample.name, None, "Original")
        found = {}
        for name, constraint_of in engines.items():
            outcome = review.check(constraint_of, subject)
            assert isinstance(outcome, list), outcome
            found[name] = sorted(v.message for v in outcome)
        assert found["cel"] == found["rego"], sample.name
