"""The command line's habits: a help line for every option and examples for every command, the
global flags before or after the command, and a --help that loads no engine."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from acm_lite.cli import examples, percluster
from acm_lite.cli.main import build_parser, commands, main

REPO = Path(__file__).resolve().parents[2]
PARSER = build_parser()
LEAVES = {" ".join(words): parser for words, parser, leaf in commands(PARSER) if leaf}
ALL = {"": PARSER, **{" ".join(words): parser for words, parser, _ in commands(PARSER)}}

# What each command needs besides the flag under test to parse at all.
REQUIRED = {
    "sync": ["--once"],
    "hydrate": ["--output", "compiled"],
    "policy verify": ["policies"],
    "fleet list": ["--fleet", "fleet.yaml"],
    "fleet status": ["--fleet", "fleet.yaml"],
    "completion": ["bash"],
    "preview": ["--base", "main"],
}


def test_every_leaf_command_is_covered_by_required_table() -> None:
    assert set(REQUIRED) <= set(LEAVES)
    assert {"sync", "diff", "status", "serve", "vet", "hydrate", "errors", "completion"} <= set(LEAVES)


@pytest.mark.parametrize("name", sorted(ALL), ids=lambda n: n or "acm-lite")
def test_every_option_has_help_and_every_command_examples(name: str) -> None:
    parser = ALL[name]
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            missing += [f"command {a.dest}" for a in action._choices_actions if not a.help]
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append("/".join(action.option_strings) or action.dest)
    assert not missing, f"acm-lite {name}: no help for {missing}"
    assert parser.epilog and parser.epilog.startswith("Examples:"), f"acm-lite {name} has no examples"
    assert issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)
    text = parser.format_help()
    for line in examples.EXAMPLES[name]:
        assert f"  {line}\n" in text + "\n", f"example kept as written: {line}"


_INVOCATION = re.compile(r"(?:^|(?<=\s)|(?<=\$\())acm-lite(?: [^\n\")>|#]*)?")


@pytest.mark.parametrize("name", sorted(examples.EXAMPLES), ids=lambda n: n or "acm-lite")
def test_every_example_parses(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACM_LITE_FLEET", raising=False)
    found = [m.group(0) for line in examples.EXAMPLES[name] for m in _INVOCATION.finditer(line)]
    assert found and len(found) <= 4
    for invocation in found:
        words = shlex.split(invocation)[1:]
        build_parser().parse_args(words)  # SystemExit (a test failure) when it does not parse
        assert words[: len(name.split())] == name.split(), f"{invocation} is not an example of {name}"


def _parse(words: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(words)


def _spellings(parser: argparse.ArgumentParser, dest: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
    """How ``parser`` spells the global flag ``dest`` (hydrate's --output is its directory)."""
    return tuple(o for a in parser._actions if a.dest == dest for o in a.option_strings if o in candidates)


GLOBAL_CASES = [
    (name, flags, a, b)
    for name, parser in sorted(LEAVES.items())
    for flags, a, b in (
        (_spellings(parser, "output", ("-o", "--output")), "json", "yaml"),
        (_spellings(parser, "kubeconfig", ("--kubeconfig",)), "a.yaml", "b.yaml"),
        (_spellings(parser, "context", ("--context",)), "one", "two"),
    )
    if flags
]


def test_global_flags_reach_the_commands_that_talk_to_clusters() -> None:
    with_context = {name for name, flags, _, _ in GLOBAL_CASES if flags == ("--context",)}
    assert ("hydrate", ("-o",), "json", "yaml") in GLOBAL_CASES
    assert {"sync", "diff", "status", "serve"} <= with_context
    with_output = {name for name, flags, _, _ in GLOBAL_CASES if flags[0] == "-o"}
    assert {"sync", "diff", "status", "vet", "hydrate", "errors", "fleet list", "dev build"} <= with_output


@pytest.mark.parametrize(
    ("name", "flags", "first", "second"),
    GLOBAL_CASES,
    ids=[f"{n} {f[0]}" for n, f, _, _ in GLOBAL_CASES],
)
def test_global_flag_before_or_after_the_command(
    name: str, flags: tuple[str, ...], first: str, second: str
) -> None:
    command = name.split()
    rest = REQUIRED.get(name, [])
    dest = {"-o": "output", "--kubeconfig": "kubeconfig", "--context": "context"}[flags[0]]
    default = _parse([*command, *rest])
    assert getattr(default, dest) == ("text" if dest == "output" else None)
    for flag in flags:
        before = _parse([flag, first, *command, *rest])
        after = _parse([*command, *rest, flag, first])
        assert getattr(before, dest) == getattr(after, dest) == first
        both = _parse([flag, first, *command, *rest, flag, second])
        assert getattr(both, dest) == second  # the one after the command wins


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_debug_before_or_after_every_command(name: str) -> None:
    command, rest = name.split(), REQUIRED.get(name, [])
    assert _parse([*command, *rest]).debug is False
    assert _parse(["--debug", *command, *rest]).debug is True
    assert _parse([*command, *rest, "--debug"]).debug is True


def test_output_format_before_or_after_gives_the_same_result(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", "json", "errors", "ACM9001"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main(["errors", "ACM9001", "-o", "json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert before == after and before[0]["code"] == "ACM9001"
    assert main(["-o", "json", "errors", "ACM9001", "-o", "text"]) == 0
    assert capsys.readouterr().out.startswith("ACM9001 ToolchainMissing")  # the one after wins: text


def test_global_kubeconfig_before_the_command_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status with a kubeconfig that does not exist fails the same way given before or after."""
    missing = str(tmp_path / "no-such-kubeconfig")
    codes = [main(["--kubeconfig", missing, "status"]), main(["status", "--kubeconfig", missing])]
    err = capsys.readouterr().err
    assert codes[0] == codes[1] != 0
    assert err.count("no-such-kubeconfig") >= 2


def test_hydrate_output_is_the_directory_and_o_the_format() -> None:
    args = _parse(["-o", "json", "hydrate", "sample-repo", "--output", "out"])
    assert (args.output, str(args.dest)) == ("json", "out")
    args = _parse(["hydrate", "sample-repo", "--output", "out", "-o", "yaml"])
    assert (args.output, str(args.dest)) == ("yaml", "out")


def test_nomos_path_and_no_api_server_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = REPO / "sample-repo"
    assert main(["vet", "--path", str(repo), "--no-api-server-check", "--cluster", "eks-prod"]) == 0
    assert "No validation issues found (eks-prod)" in capsys.readouterr().out
    assert main(["vet", str(tmp_path), "--path", str(repo)]) == 2
    assert "give one" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["hydrate", "--path", str(repo), "--clusters", "eks-prod", "--output", str(out)]) == 0
    assert (out / "eks-prod").is_dir()


def test_vet_keep_output_writes_what_hydrate_would(tmp_path: Path) -> None:
    repo = REPO / "sample-repo"
    kept, hydrated = tmp_path / "kept", tmp_path / "hydrated"
    assert main(["vet", str(repo), "--cluster", "eks-prod", f"--keep-output={kept}"]) == 0
    assert main(["hydrate", str(repo), "--cluster", "eks-prod", "--output", str(hydrated)]) == 0
    files = sorted(p.relative_to(kept) for p in kept.rglob("*.yaml"))
    assert files and files == sorted(p.relative_to(hydrated) for p in hydrated.rglob("*.yaml"))
    for rel in files:
        assert (kept / rel).read_text() == (hydrated / rel).read_text()


def test_render_flag_defaults_are_the_render_stage_defaults() -> None:
    from acm_lite import render

    options = render.Options()
    assert options.timeout_seconds == percluster.RENDER_TIMEOUT_SECONDS
    assert options.max_output_bytes == percluster.RENDER_MAX_OUTPUT_MIB * 1024 * 1024


# Modules a --help must not load: the Kubernetes client and HTTP stacks, the schema, policy and
# Git engines, the fleet file's reader, and acm-lite's own stages above the command line.
HEAVY = (
    "kubernetes",
    "urllib3",
    "requests",
    "jsonschema",
    "fastjsonschema",
    "kubernetes_validate",
    "regorus",
    "cel_expr_python",
    "re2",
    "git",
    "cryptography",
    "prometheus_client",
    "watchdog",
    "argcomplete",
    "acm_lite.cluster",
    "acm_lite.reconcile",
    "acm_lite.declare",
    "acm_lite.parse",
    "acm_lite.validate",
    "acm_lite.policy",
    "acm_lite.fleet",
    "acm_lite.render",
    "acm_lite.source",
    "acm_lite.apply",
    "acm_lite.plan",
    "acm_lite.status",
)

_PROBE = """
import contextlib, io, json, sys
from acm_lite.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=True,
    )
    found = json.loads(done.stdout)
    return found["code"], set(found["modules"])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in modules))


@pytest.mark.parametrize(
    "argv", [["--help"], ["sync", "--help"], ["vet", "--help"], ["fleet", "status", "--help"]]
)
def test_help_loads_no_engine(argv: list[str]) -> None:
    code, modules = _loaded(*argv)
    assert code == 0
    assert _heavy(modules) == []


def test_the_engines_load_when_a_command_runs() -> None:
    """The list above names modules that exist and that running a command does load."""
    code, modules = _loaded("vet", "sample-repo", "--cluster", "eks-prod")
    assert code == 0
    assert {"jsonschema", "acm_lite.declare", "acm_lite.validate", "acm_lite.parse"} <= set(_heavy(modules))
    code, modules = _loaded("status", "--kubeconfig", "/nonexistent/kubeconfig")
    assert code != 0
    assert {"kubernetes", "acm_lite.cluster", "acm_lite.status"} <= set(_heavy(modules))
