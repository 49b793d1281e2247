"""`acm-lite errors`: list every error code, or explain one."""

from __future__ import annotations

import argparse

from acm_lite import errors
from acm_lite.cli import Subcommands, output
from acm_lite.cli.exitcodes import ExitStatus


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "errors",
        help="list error codes or explain one",
        description="List acm-lite's error codes, or explain one.",
    )
    parser.add_argument("code", nargs="?", help="a code such as KNV1017 or ACM9001")
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    parser.set_defaults(handler=handle)


def _text(rows: list[dict[str, str]]) -> str:
    return output.table(
        [[r["code"], r["name"], r["category"], r["summary"]] for r in rows],
        ["CODE", "NAME", "CATEGORY", "SUMMARY"],
    )


def handle(args: argparse.Namespace) -> int:
    codes = errors.all_codes()
    if args.code:
        code = errors.lookup(args.code.upper())
        if code is None:
            print(f"unknown error code {args.code}; `acm-lite errors` lists them all")
            return ExitStatus.FAILURE
        codes = [code]
    rows = [{"code": c.id, "name": c.name, "category": c.category.value, "summary": c.summary} for c in codes]
    output.emit(rows, args.output, _text)
    return ExitStatus.SUCCESS
