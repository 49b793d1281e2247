"""`acm-lite policy verify` and `acm-lite policy test`: gator's verify and test."""

from __future__ import annotations

import argparse
import json
import os
import select
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from acm_lite import errors
from acm_lite.cli import Subcommands, output
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.errors import AcmError


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
    _register_test(verbs)


def _register_test(verbs: Any) -> None:
    test = verbs.add_parser(
        "test",
        help="review objects against templates and constraints, as gator test",
        description="Review every object in the inputs against the ConstraintTemplates and "
        "Constraints in them (and ExpansionTemplates), as `gator test` does: the inputs are "
        "files and directories (-f, repeatable; .yaml, .yml and .json files, directories "
        "recursively), OCI images of policy files (--image) and stdin (-f - , or piped). An "
        "AdmissionReview is reviewed as its request. Prints one line per violation (or gator's "
        "results with -o json|yaml); exit 1 when a violated constraint's action is deny (or a "
        "scoped deny) or an input or policy is broken, 0 otherwise (warn and dryrun only print).",
    )
    test.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="a file or a directory of manifests and policies; - for stdin (repeatable)",
    )
    test.add_argument(
        "-i",
        "--image",
        action="append",
        default=[],
        metavar="REF",
        help="an OCI image of policy files: host[:port]/repository[:tag][@sha256:...] (repeatable); "
        "credentials from ACM_LITE_OCI_USERNAME/_PASSWORD",
    )
    test.add_argument(
        "--plain-http",
        action="store_true",
        help="accepted as gator's flag: a loopback registry is reached over plain http, any other over https",
    )
    test.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    test.add_argument(
        "--deny-only", action="store_true", help="show only violations of constraints whose action is deny"
    )
    test.set_defaults(handler=_test)


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


MAX_STDIN_BYTES = 8 * 1024 * 1024


def _stdin_piped() -> bool:
    """Whether stdin is a pipe or a file (gator reads it then), not a terminal or nothing."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


STDIN_WAIT_SECONDS = 2.0


def _stdin_ready() -> bool:
    """Whether piped stdin has data (or its end) within a moment. With other inputs given, a
    pipe nobody writes to (a CI runner's) is skipped, not waited on forever; ``-f -`` waits."""
    try:
        ready, _, _ = select.select([sys.stdin], [], [], STDIN_WAIT_SECONDS)
    except (OSError, ValueError):
        return False
    if not ready:
        print(
            f"note: stdin not read: nothing arrived within {STDIN_WAIT_SECONDS:g}s (-f - waits for it)",
            file=sys.stderr,
        )
    return bool(ready)


def _read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise AcmError(
            errors.POLICY_INPUT_INVALID,
            f"stdin holds more than {MAX_STDIN_BYTES} bytes",
            path="-",
            hint="give the manifests as files (-f) instead",
        )
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise AcmError(errors.POLICY_INPUT_INVALID, f"stdin is not UTF-8 ({e.reason})", path="-") from e


def _image_dirs(images: list[str]) -> list[Path]:
    from acm_lite.paths import cache_dir
    from acm_lite.source import oci
    from acm_lite.source.transfer import Credentials

    dirs = []
    for image in images:
        try:
            snapshot = oci.fetch(
                oci.OciSpec(image),
                cache=cache_dir(),
                credentials=Credentials.from_env("OCI"),
                progress=output.progress,
            )
        except AcmError as e:
            raise AcmError(
                errors.POLICY_INPUT_INVALID, f"--image {image}: {e.render()}", path=image, hint=e.hint
            ) from e
        dirs.append(snapshot.root)
    return dirs


def _inputs(args: argparse.Namespace) -> list[Any]:
    from acm_lite.policy import gatortest

    docs = []
    paths = [Path(f) for f in args.filename if f != "-"]
    docs += gatortest.read(paths)
    docs += gatortest.read(_image_dirs(args.image))
    if "-" in args.filename or (_stdin_piped() and (not docs or _stdin_ready())):
        docs += gatortest.read_text(_read_stdin(), "-")
    if not docs:
        raise AcmError(
            errors.POLICY_INPUT_INVALID,
            "no input data identified",
            hint="give manifests and policies with -f, --image or on stdin",
        )
    return docs


def _object_label(body: dict[str, Any]) -> str:
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    name = str(meta.get("name", "")) if meta else ""
    namespace = str(meta.get("namespace", "")) if meta else ""
    where = f"{namespace}/{name}" if namespace else name
    return f"{body.get('apiVersion', '')}/{body.get('kind', '')} {where}"


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _test_text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        name = str(((r["constraint"].get("metadata") or {}).get("name")) or "")
        lines.append(
            f"{_object_label(r['violatingObject'])}: [{_quoted(name)}] Message: {_quoted(r.get('msg', ''))}"
        )
    return "\n".join(lines)


def _yaml_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """gator's YAML: the framework's result under ``result`` (its field names lower-cased, the
    constraint under ``object``), then the violating object and the trace."""
    out = []
    for r in results:
        out.append(
            {
                "result": {
                    "target": r["target"],
                    "msg": r.get("msg", ""),
                    "metadata": r.get("metadata") or {},
                    "constraint": {"object": r["constraint"]},
                    "enforcementaction": r["enforcementAction"],
                    "scopedenforcementactions": r.get("scopedActions") or [],
                },
                "violatingObject": r["violatingObject"],
                "trace": r["trace"],
            }
        )
    return out


def _print_results(results: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(results or None, indent=4, ensure_ascii=False))
    elif fmt == "yaml":
        print(yaml.safe_dump(_yaml_results(results), sort_keys=False, allow_unicode=True), end="")
    elif results:
        print(_test_text(results))


def _test(args: argparse.Namespace) -> int:
    from acm_lite.policy import gatortest

    outcome = gatortest.run(_inputs(args))
    shown = [r for r in outcome.results if not args.deny_only or gatortest.enforceable(r)]
    _print_results(shown, args.output)
    for problem in outcome.problems:
        print(f"error: {problem.render()}", file=sys.stderr)
    if outcome.problems or any(gatortest.enforceable(r) for r in outcome.results):
        return ExitStatus.FAILURE
    return ExitStatus.SUCCESS
