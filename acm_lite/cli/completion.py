"""`acm-lite completion bash|zsh|fish`: the shell's completion script, from argcomplete, and
what it completes beyond the parser's own commands, flags and choices: cluster names from the
fleet file and contexts from the kubeconfig.

At each TAB the shell runs acm-lite with ``_ARGCOMPLETE`` set; ``main`` then builds the parser
(which loads no engine, see ``main``), answers from it and exits before running anything."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import Any

from acm_lite.cli import Subcommands
from acm_lite.cli.exitcodes import ExitStatus

SHELLS = ("bash", "zsh", "fish")
MAX_READ = 4 * 1024 * 1024  # a kubeconfig or fleet file larger than this offers nothing
COMPLETING = "_ARGCOMPLETE"  # set by the scripts while the shell asks for completions


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh, fish)",
        description="Print a script that makes the shell complete acm-lite's commands, flags, "
        "their choices, cluster names (from the fleet file) and kubeconfig contexts. The script "
        "runs acm-lite at each TAB, which answers without loading any engine.",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to print the script for")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    print(shellcode(["acm-lite"], shell=args.shell), end="")
    return ExitStatus.SUCCESS


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit when it is asking for completions; otherwise return at once."""
    if COMPLETING not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def _load(path: str | os.PathLike[str] | None) -> Any:
    """A small YAML file's content, or None for anything missing, large, unreadable or not YAML:
    completing never fails and never reads much."""
    if not path:
        return None
    try:
        # a regular file only: a FIFO or a device named here would hang the shell or never end
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = f.read(MAX_READ + 1)
        if len(data) > MAX_READ:
            return None
        import yaml

        return yaml.safe_load(data)
    except Exception:  # completion offers nothing rather than failing the shell
        return None


def _names(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]


def contexts(prefix: str, parsed_args: argparse.Namespace, **_kwargs: Any) -> list[str]:
    """The contexts of --kubeconfig, else of the first file of $KUBECONFIG, else ~/.kube/config."""
    path = getattr(parsed_args, "kubeconfig", None)
    if not path:
        env = os.environ.get("KUBECONFIG", "")
        path = next((p for p in env.split(os.pathsep) if p), None) or str(Path.home() / ".kube" / "config")
    config = _load(path)
    found = _names(config.get("contexts")) if isinstance(config, dict) else []
    return [n for n in found if n.startswith(prefix)]


def fleet_clusters(prefix: str, parsed_args: argparse.Namespace, **_kwargs: Any) -> list[str]:
    """The cluster names of --fleet (or $ACM_LITE_FLEET)."""
    fleet = _load(getattr(parsed_args, "fleet", None) or os.environ.get("ACM_LITE_FLEET"))
    spec = fleet.get("spec") if isinstance(fleet, dict) else None
    found = _names(spec.get("clusters")) if isinstance(spec, dict) else []
    return [n for n in found if n.startswith(prefix)]


def attach(parser: argparse.ArgumentParser) -> None:
    """Give ``parser``'s --context flag its completer, and its --cluster/--clusters flags the
    fleet's names where the command takes a fleet file (``dev env --cluster`` names a local
    cluster, not a fleet member)."""
    fleet = any("--fleet" in a.option_strings for a in parser._actions)
    for action in parser._actions:
        if "--context" in action.option_strings:
            action.completer = contexts  # type: ignore[attr-defined]
        elif fleet and action.dest in ("cluster", "clusters") and action.option_strings:
            action.completer = fleet_clusters  # type: ignore[attr-defined]
