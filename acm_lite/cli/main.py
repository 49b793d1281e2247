"""Entry point: parse arguments, dispatch to a command group, turn exceptions into exit codes."""

from __future__ import annotations

import argparse
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
        return for_error(e)
    except UsageError as e:
        print(f"acm-lite: error: {e}", file=sys.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except Exception as e:
        if args.debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return ExitStatus.INTERNAL


def run() -> None:
    """Console-script entry: SIGTERM is handled like Ctrl-C so cleanup runs."""
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    sys.exit(main(sys.argv[1:]))
