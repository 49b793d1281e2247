"""`acm-lite completion`: the scripts are valid for their shells, and bash (and fish, when
installed) completes commands, flags, choices, fleet clusters and kubeconfig contexts by running
the real acm-lite."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acm_lite.cli import completion
from acm_lite.cli.main import main

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _script(shell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["completion", shell]) == 0
    path = tmp_path / f"acm-lite.{shell}"
    path.write_text(capsys.readouterr().out)
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_ARC", "_ARGCOMPLETE", "COMP_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("ACM_LITE_FLEET", None)
    return env


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_script_is_valid_for_its_shell(
    shell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    script = _script(shell, tmp_path, capsys)
    assert "acm-lite" in script.read_text()
    done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / f"broken.{shell}"
    broken.write_text(script.read_text() + "\nif then fi end )\n")
    assert subprocess.run([shell, "-n", str(broken)], capture_output=True, timeout=60).returncode != 0


def _offer(script: Path, line: str, tmp_path: Path, extra: dict[str, str] | None = None) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end), through the script's function."""
    words = line.split(" ")
    program = (
        f"source {script}\n"
        f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}; COMP_TYPE=9\n"
        f"_python_argcomplete acm-lite {words[-1]!r} {words[-2]!r}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env() | (extra or {}),
    )
    assert done.returncode == 0, done.stderr
    return [w.strip() for w in done.stdout.splitlines() if w.strip()]


@pytest.fixture
def bash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    return _script("bash", tmp_path, capsys)


def test_bash_completes_commands_and_flags(bash: Path, tmp_path: Path) -> None:
    assert _offer(bash, "acm-lite sy", tmp_path) == ["sync"]
    assert set(_offer(bash, "acm-lite ", tmp_path)) >= {
        "sync",
        "vet",
        "completion",
        "--output",
    }
    assert _offer(bash, "acm-lite status --res", tmp_path) == ["--resources"]
    assert _offer(bash, "acm-lite fleet st", tmp_path) == ["status"]
    # a global flag after the command, and its choices
    assert _offer(bash, "acm-lite vet --deb", tmp_path) == ["--debug"]
    assert _offer(bash, "acm-lite status -o ", tmp_path) == ["text", "json", "yaml"]
    assert _offer(bash, "acm-lite completion f", tmp_path) == ["fish"]
    assert _offer(bash, "acm-lite prev", tmp_path) == ["preview"]
    assert _offer(bash, "acm-lite preview --max", tmp_path) == ["--max-bytes"]


def test_bash_completes_fleet_clusters_and_contexts(bash: Path, tmp_path: Path) -> None:
    fleet = REPO / "sample-repo" / "fleet.yaml"
    assert _offer(bash, f"acm-lite vet --fleet {fleet} --cluster ", tmp_path) == [
        "eks-prod",
        "aks-staging",
        "baremetal-edge",
    ]
    assert _offer(bash, f"acm-lite sync --fleet {fleet} --cluster a", tmp_path) == ["aks-staging"]
    assert _offer(bash, f"acm-lite preview --fleet {fleet} --cluster e", tmp_path) == ["eks-prod"]
    env = {"ACM_LITE_FLEET": str(fleet)}
    assert _offer(bash, "acm-lite fleet status --cluster b", tmp_path, env) == ["baremetal-edge"]
    assert (
        _offer(bash, "acm-lite dev env --cluster b", tmp_path, env) == []
    )  # local clusters, not the fleet's
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"contexts": [{"name": n} for n in ("prod-eu", "prod-us", "dev")]}))
    line = f"acm-lite status --kubeconfig {kubeconfig} --context prod"
    assert _offer(bash, line, tmp_path) == ["prod-eu", "prod-us"]
    assert _offer(bash, f"acm-lite --kubeconfig {kubeconfig} diff --context d", tmp_path) == ["dev"]


def test_fish_completes_commands_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    script = _script("fish", tmp_path, capsys)
    done = subprocess.run(
        ["fish", "-c", f"source {script}; complete -C 'acm-lite sy'; complete -C 'acm-lite status --res'"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    offered = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert offered == ["sync", "--resources"]


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not yaml: [",
        b"contexts: {a: b}",
        b"contexts: [1, null, {name: 5}, {name: ok}]",
        b"- a list\n",
        b"a: &a [*a]\n",
        b"contexts:\n" + b"- name: x\n" * (completion.MAX_READ // 10 + 1),
    ],
    ids=["binary", "not-a-list", "odd-items", "top-level-list", "alias-loop", "too-large"],
)
def test_hostile_kubeconfig_offers_nothing_or_the_valid_names(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    found = completion.contexts("", argparse.Namespace(kubeconfig=str(path)))
    assert found == (["ok"] if b"name: ok" in content else [])
    fleet = tmp_path / "fleet.yaml"
    fleet.write_bytes(content)
    assert completion.fleet_clusters("", argparse.Namespace(fleet=fleet)) == []
    assert completion.contexts("", argparse.Namespace(kubeconfig=str(tmp_path / "missing"))) == []


def test_a_fifo_or_directory_offers_nothing_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes: reading it would block the shell forever
    assert completion.contexts("", argparse.Namespace(kubeconfig=str(fifo))) == []
    assert completion.fleet_clusters("", argparse.Namespace(fleet=fifo)) == []
    assert completion.contexts("", argparse.Namespace(kubeconfig=str(tmp_path))) == []
