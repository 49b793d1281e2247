"""The hostile repositories of tests/hostile/prune: each declares something of acm-lite's own and
`acm-lite vet` refuses it with Config Sync's code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acm_lite.cli.main import main

CORPUS = Path(__file__).resolve().parents[1] / "hostile" / "prune"
EXPECTED = {
    "own-namespace": "KNV1034",
    "object-in-own-namespace": "KNV1034",
    "rootsync": "KNV1043",
    "inventory": "KNV1043",
    "own-crd": "KNV1043",
}


def test_every_case_is_listed() -> None:
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_vet_refuses_with_the_config_sync_code(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["vet", str(CORPUS / case), "--source-format", "unstructured", "-o", "json"])
    codes = [e["code"] for e in json.loads(capsys.readouterr().out)["errors"]]
    assert (status, codes) == (1, [EXPECTED[case]])
