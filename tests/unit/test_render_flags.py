"""The render flags of every command that reads a repository: off by default, each switch and
limit carried into the render stage's options, nonsense refused as a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite import paths, render
from acm_lite.cli import percluster
from acm_lite.cli.main import build_parser, main

COMMANDS = [
    ["sync", "--once", "--repo", "r"],
    ["diff", "--repo", "r"],
    ["serve", "--repo", "r"],
    ["vet", "repo"],
    ["hydrate", "repo", "--output", "out"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_renders_with_nothing_reaching_outside_by_default(command: list[str]) -> None:
    options = percluster.render_options(build_parser().parse_args(command))
    assert options == render.Options()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_each_flag_reaches_the_render_options(command: list[str]) -> None:
    args = build_parser().parse_args(
        [
            *command,
            "--render-network",
            "--render-exec",
            "--render-alpha-plugins",
            "--render-timeout",
            "12.5",
            "--render-max-output",
            "3",
        ]
    )
    options = percluster.render_options(args, cache=True)
    assert (options.allow_network, options.allow_exec, options.allow_alpha_plugins) == (True, True, True)
    assert (options.timeout_seconds, options.max_output_bytes) == (12.5, 3 * 1024 * 1024)
    assert options.cache_dir == paths.cache_dir() / "render"


@pytest.mark.parametrize(
    "flag", [["--render-timeout", "0"], ["--render-timeout", "inf"], ["--render-max-output", "x"]]
)
def test_a_limit_that_is_not_a_positive_number_is_a_usage_error(
    flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vet", str(tmp_path), *flag]) == 2
    assert flag[0] in capsys.readouterr().err
