"""The vetcli corpus through the whole read-and-validate path: every object the API server
rejects fails `vet` offline with its code, and every edge case the API server accepts passes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acm_lite import declare
from acm_lite.parse.clusters import ClusterTarget
from tests.support.api_cases import Case, all_cases


def _codes(tmp_path: Path, case: Case) -> list[str]:
    (tmp_path / "object.yaml").write_text(yaml.safe_dump(case.body))
    source = declare.load(tmp_path, declare.UNSTRUCTURED)
    result = declare.declare(source, ClusterTarget(None), declare.Options(source_format=declare.UNSTRUCTURED))
    assert all(len(p.message) < 500 for p in result.problems)  # hostile values are cut short
    return sorted({p.code.id for p in result.problems if p.blocking})


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_case(tmp_path: Path, case: Case) -> None:
    assert _codes(tmp_path, case) == ([case.code] if case.code else [])


def test_corpus_is_documented() -> None:
    from tests.support.api_cases import CORPUS

    readme = (CORPUS / "README.md").read_text()
    assert all(f"`{p.name}`" in readme for p in CORPUS.glob("*.yaml"))
