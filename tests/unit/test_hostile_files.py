"""Files read outside a repository walk (gator suites and the files they name, fleet files, sync
configs) get the reader's bounds: a FIFO never hangs, a huge number or a malformed object is a
coded error, never exit 70."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from acm_lite.cli.main import main

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "templates" / "required-labels"


def _suite_dir(tmp_path: Path) -> Path:
    target = tmp_path / "suite"
    shutil.copytree(LIBRARY, target)
    return target


@pytest.mark.timeout(60)
def test_a_fifo_beside_suites_is_skipped_and_a_fifo_suite_object_is_coded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite_dir(tmp_path)
    os.mkfifo(suite / "pipe.yaml")  # found while looking for suites: never opened for reading
    sample = suite / "samples" / "allowed.yaml"
    sample.unlink()
    os.mkfifo(sample)  # named by a case
    code = main(["policy", "verify", str(suite)])
    out = capsys.readouterr().out
    assert code == 1
    assert "ACM3006" in out and "not a regular file" in out


@pytest.mark.parametrize(
    "content",
    [
        "metadata: not-a-map\nkind: Namespace\napiVersion: v1\n",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: 5}\n",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nspec: {n: " + "9" * 5000 + "}\n",
    ],
)
def test_a_malformed_case_object_fails_its_case_with_a_code(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite_dir(tmp_path)
    (suite / "samples" / "allowed.yaml").write_text(content)
    code = main(["policy", "verify", str(suite)])
    out = capsys.readouterr().out
    assert code == 1 and "ACM3006" in out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", [["vet", ".", "--fleet"], ["fleet", "list", "--fleet"]])
def test_a_fifo_fleet_file_is_coded(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fleet.yaml"
    os.mkfifo(fifo)
    code = main([*command, str(fifo)])
    assert code == 1
    assert "ACM4001" in capsys.readouterr().err
