"""`acm-lite hydrate` output compared file by file with reviewed golden copies.

Regenerate after an intended change with ACM_LITE_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from acm_lite.cli.main import main

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("hierarchy", []),
        ("unstructured", ["--source-format", "unstructured", "--flat"]),
    ],
)
def test_hydrate_matches_golden(
    case: str, args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["hydrate", str(GOLDEN / case / "repo"), "--output", str(out), *args]) == 0
    expected = GOLDEN / case / "expected"
    if os.environ.get("ACM_LITE_UPDATE_GOLDEN"):
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(out, expected)
    assert _tree(out) == _tree(expected)
