"""Entry point: parse arguments, dispatch to a command group, turn exceptions into exit codes."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import textwrap
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import acm_lite
from acm_lite.cli import (
    allocator,
    completion,
    dev,
    diff,
    errorscmd,
    examples,
    fleet,
    hydrate,
    migrate,
    output,
    policy,
    preview,
    serve,
    status,
    sync,
    vet,
)
from acm_lite.cli.clusterargs import UsageError
from acm_lite.cli.exitcodes import ExitStatus, for_error
from acm_lite.errors import AcmError

_GROUPS = (
    sync,
    diff,
    preview,
    status,
    serve,
    migrate,
    vet,
    hydrate,
    policy,
    fleet,
    dev,
    errorscmd,
    completion,
)

# Flags every command understands the same way, given before the command or after it (the one
# after wins): the output format, tracebacks, and which cluster (where a command talks to one).
_GLOBAL_HELP = {
    "output": "output format: text, json or yaml (default: text); before or after the command",
    "debug": "show tracebacks of internal errors",
    "kubeconfig": "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
    "context": "kubeconfig context to use (default: the current one)",
}
_GLOBAL_FLAGS = {"-o": "output", "--output": "output", "--kubeconfig": "kubeconfig", "--context": "context"}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's raw description formatter, except that prose is wrapped to the terminal: a
    line starting with a space (an example, a table) is kept as written, other lines are joined
    into paragraphs and filled."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        prose: list[str] = []

        def flush() -> None:
            if prose:
                out.append(
                    textwrap.fill(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent)
                )
                prose.clear()

        for line in text.splitlines():
            if line.startswith(" ") or not line.strip():
                flush()
                out.append(indent + line if line.strip() else "")
            else:
                prose.append(line.strip())
        flush()
        return "\n".join(out)


class _Version(argparse.Action):
    """argparse's version action, reading the version only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        print(f"acm-lite {acm_lite.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree. Building it imports no engine, client or reader: each command
    imports what it runs when it runs, so ``--help`` and shell completion stay fast."""
    parser = argparse.ArgumentParser(
        prog="acm-lite",
        description="Sync Kubernetes clusters from Git, the Config Sync way, on any cluster.",
        formatter_class=HelpFormatter,
        epilog=examples.epilog(""),
    )
    parser.add_argument("--version", action=_Version, help="show acm-lite's version and exit")
    parser.add_argument("--debug", action="store_true", help=_GLOBAL_HELP["debug"])
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text", help=_GLOBAL_HELP["output"])
    parser.add_argument("--kubeconfig", metavar="FILE", help=_GLOBAL_HELP["kubeconfig"])
    parser.add_argument("--context", metavar="NAME", help=_GLOBAL_HELP["context"])
    completion.attach(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in _GROUPS:
        group.register(sub)
    for words, command, leaf in commands(parser):
        _finish(command, " ".join(words), leaf)
    return parser


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[list[str], argparse.ArgumentParser, bool]]:
    """Every command and command group below ``parser``: its words, its parser, and whether it
    is a leaf (a command that runs, not a group of verbs)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                verbs = any(isinstance(a, argparse._SubParsersAction) for a in child._actions)
                yield child.prog.split()[1:], child, not verbs
                yield from commands(child)


def _finish(parser: argparse.ArgumentParser, words: str, leaf: bool) -> None:
    """What every command's parser shares: the examples, and the global flags after the command.
    A global flag a command registers defaults to the value given before the command (SUPPRESS:
    argparse copies a subcommand's defaults over what was parsed before it); --debug is added to
    every command."""
    parser.formatter_class = HelpFormatter
    parser.epilog = examples.epilog(words)
    if not leaf:
        return
    for action in parser._actions:
        dest = next((_GLOBAL_FLAGS[o] for o in action.option_strings if o in _GLOBAL_FLAGS), None)
        if dest is not None and action.dest == dest:
            action.default = argparse.SUPPRESS
            action.help = action.help or _GLOBAL_HELP[dest]
    if not any("--debug" in a.option_strings for a in parser._actions):
        parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_GLOBAL_HELP["debug"]
        )
    completion.attach(parser)


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; never raises, returns the exit code."""
    parser = build_parser()
    completion.autocomplete(parser)  # exits here when the shell asks for completions
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 0 for --help/--version, 2 for usage errors
        return int(e.code or 0)
    try:
        return int(args.handler(args))
    except AcmError as e:
        print(f"error: {e.render()}", file=sys.stderr)
        try:
            _machine_readable(args, e)
        except BrokenPipeError:  # raised inside this handler, out of reach of the one below
            if stdout_closed():
                quiet_exit()
        return for_error(e)
    except UsageError as e:
        print(f"acm-lite: error: {e}", file=sys.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError as e:
        if stdout_closed():
            return quiet_exit()
        return _internal(e, args.debug)
    except Exception as e:
        return _internal(e, args.debug)


def _machine_readable(args: argparse.Namespace, error: AcmError) -> None:
    """Under ``-o json``/``-o yaml`` a fatal error is on stdout too, in the shape of the findings
    commands report (``{"errors": [...]}``), so a script reading stdout is never handed nothing."""
    fmt = getattr(args, "output", None)
    if fmt in ("json", "yaml"):
        output.emit({"errors": [error.to_dict()]}, fmt, str)


def _internal(e: Exception, debug: bool) -> int:
    if debug:
        raise e
    print(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)", file=sys.stderr)
    return ExitStatus.INTERNAL


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on it), which tells a
    closed stdout from a broken connection to a server, both BrokenPipeError."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def quiet_exit() -> int:
    """A reader that stops early (``| head -1``) is a normal end: stop writing, say nothing, and
    exit as coreutils do when SIGPIPE ends them (128 + 13), so ``set -o pipefail`` still tells a
    cut-short listing from a complete one. stdout goes to /dev/null so the interpreter's final
    flush cannot fail again (the recipe of Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return ExitStatus.PIPE_CLOSED


def run() -> None:
    """Console-script entry: SIGTERM is handled like Ctrl-C so cleanup runs."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    allocator.started_as_command()
    code = main(sys.argv[1:])
    try:
        sys.stdout.flush()  # what is still buffered; its reader may be gone by now
    except BrokenPipeError:
        code = quiet_exit()
    sys.exit(code)
