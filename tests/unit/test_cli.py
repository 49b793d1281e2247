from __future__ import annotations

import json

import pytest

from acm_lite import __version__, errors
from acm_lite.cli.main import build_parser, main

COMMANDS = [
    ["sync"],
    ["diff"],
    ["preview"],
    ["status"],
    ["serve"],
    ["migrate"],
    ["vet"],
    ["hydrate"],
    ["dev"],
    ["dev", "build"],
    ["dev", "up"],
    ["dev", "env"],
    ["dev", "status"],
    ["dev", "down"],
    ["policy"],
    ["policy", "verify"],
    ["fleet"],
    ["fleet", "list"],
    ["fleet", "status"],
    ["errors"],
    ["completion"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: acm-lite {' '.join(command)}")


def test_every_command_is_listed_here() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    listed = {name for name in sub.choices}
    assert listed == {c[0] for c in COMMANDS}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"acm-lite {__version__}"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert main(["dev", "up", "--clusters", "0"]) == 2
    assert main(["dev", "up", "--nodes", "0"]) == 2
    assert main(["dev", "build", "kube-proxy"]) == 2
    assert "unknown component 'kube-proxy'" in capsys.readouterr().err


def test_errors_lists_and_explains_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["errors", "acm9001", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "code": "ACM9001",
            "name": "ToolchainMissing",
            "category": "permanent",
            "summary": "A tool needed to build the local control-plane binaries (go) is not installed.",
            "blocking": True,
            "causes": errors.remediation("ACM9001").causes,  # type: ignore[union-attr]
            "fix": errors.remediation("ACM9001").fix,  # type: ignore[union-attr]
        }
    ]
    assert main(["errors", "KNV0000"]) == 1


def test_coded_errors_become_exit_codes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACM_LITE_STATE_DIR", str(tmp_path))
    assert main(["dev", "env"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ACM9004 DevClusterNotRunning: no local control plane")
    assert "hint: start one with `acm-lite dev up`" in err
