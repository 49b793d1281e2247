"""`acm-lite errors`: list every error code, or explain one with its usual causes and the fix."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from acm_lite import errors
from acm_lite.cli import Subcommands, output
from acm_lite.cli.exitcodes import ExitStatus


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "errors",
        help="list error codes or explain one",
        description="List acm-lite's error codes, or explain one: what it means, its usual causes and "
        "what to do.",
    )
    parser.add_argument("code", nargs="?", help="a code such as KNV1017 or ACM9001")
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    parser.set_defaults(handler=handle)


def _text(rows: list[dict[str, Any]]) -> str:
    return output.table(
        [[r["code"], r["name"], r["category"], r["summary"]] for r in rows],
        ["CODE", "NAME", "CATEGORY", "SUMMARY"],
    )


def _wrapped(text: str) -> str:
    return textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="  ")


def explain(row: dict[str, Any]) -> str:
    """One code as text: its name, what it means, its usual causes and what to do."""
    kind = row["category"] + ("" if row["blocking"] else ", not blocking")
    lines = [f"{row['code']} {row['name']} ({kind})", _wrapped(row["summary"])]
    if row.get("causes"):
        lines += ["", "Usual causes:", _wrapped(row["causes"]), "", "What to do:", _wrapped(row["fix"])]
    return "\n".join(lines)


def row_of(code: errors.Code) -> dict[str, Any]:
    """A code as data, with its remediation when one is written down."""
    row: dict[str, Any] = {
        "code": code.id,
        "name": code.name,
        "category": code.category.value,
        "summary": code.summary,
        "blocking": code.blocking,
    }
    fix = errors.remediation(code.id)
    if fix is not None:
        row.update(causes=fix.causes, fix=fix.fix)
    return row


def handle(args: argparse.Namespace) -> int:
    if args.code:
        code = errors.lookup(args.code.upper())
        if code is None:
            print(f"unknown error code {args.code}; `acm-lite errors` lists them all")
            return ExitStatus.FAILURE
        output.emit([row_of(code)], args.output, lambda rows: explain(rows[0]))
        return ExitStatus.SUCCESS
    rows = [
        {"code": c.id, "name": c.name, "category": c.category.value, "summary": c.summary}
        for c in errors.all_codes()
    ]
    output.emit(rows, args.output, _text)
    return ExitStatus.SUCCESS
