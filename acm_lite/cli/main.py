"""Entry point: parse arguments, dispatch to a command group, turn exceptions into exit codes."""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from acm_lite import __version__
from acm_lite.cli import (
    dev,
    diff,
    errorscmd,
    fleet,
    hydrate,
    output,
    policy,
    serve,
    status,
    sync,
    vet,
)
from acm_lite.cli.clusterargs import UsageError
from acm_lite.cli.exitcodes import ExitStatus, for_error
from acm_lite.errors import AcmError

_GROUPS = (sync, diff, status, serve, vet, hydrate, policy, fleet, dev, errorscmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acm-lite",
        description="Sync Kubernetes clusters from Git, the Config Sync way, on any cluster.",
    )
    parser.add_argument("--version", action="version", version=f"acm-lite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in _GROUPS:
        group.register(sub)
    return parser


def _sigterm_as_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; never raises, returns the exit code."""
    parser = build_parser()
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
    code = main(sys.argv[1:])
    try:
        sys.stdout.flush()  # what is still buffered; its reader may be gone by now
    except BrokenPipeError:
        code = quiet_exit()
    sys.exit(code)
