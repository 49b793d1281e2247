"""`acm-lite policy verify`: run gator Suite files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from acm_lite.cli import Subcommands, output
from acm_lite.cli.exitcodes import ExitStatus


def register(sub: Subcommands) -> None:
    policy = sub.add_parser(
        "policy",
        help="Gatekeeper policies: test them",
        description="Work with Gatekeeper ConstraintTemplates and Constraints.",
    )
    verbs = policy.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    run = verbs.add_parser(
        "verify",
        help="run gator Suite files",
        description="Run every gator Suite (test.gatekeeper.sh/v1alpha1) found "
        "under each PATH, as `gator verify` does. Exit 1 on any "
        "failure.",
    )
    run.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="a Suite file, or a directory searched for them"
    )
    run.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    run.set_defaults(handler=_verify)


def _text(data: dict[str, Any]) -> str:
    lines = []
    for case in data["cases"]:
        mark = "ok  " if case["passed"] else "FAIL"
        line = f"{mark} {case['suite']} {case['test']}/{case['case']}"
        lines.append(line + (f": {case['message']}" if case["message"] else ""))
    lines.append(f"{data['passed']} passed, {data['failed']} failed")
    return "\n".join(lines)


def _verify(args: argparse.Namespace) -> int:
    from acm_lite.policy import verify

    results = [r for suite, root in verify.find_suites(args.paths) for r in verify.run_suite(suite, root)]
    passed = sum(1 for r in results if r.passed)
    data = {"cases": [r.to_dict() for r in results], "passed": passed, "failed": len(results) - passed}
    output.emit(data, args.output, _text)
    return ExitStatus.SUCCESS if results and passed == len(results) else ExitStatus.FAILURE
