"""Render command results as text, JSON or YAML."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import yaml

FORMATS = ("text", "json", "yaml")


def emit(data: Any, fmt: str, text: Callable[[Any], str]) -> None:
    """Print ``data`` in ``fmt``; ``text`` renders the human form."""
    if fmt == "json":
        out = json.dumps(data, indent=2, sort_keys=False)
    elif fmt == "yaml":
        out = yaml.safe_dump(data, sort_keys=False).rstrip("\n")
    else:
        out = text(data)
    if out:
        print(out)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain, left-aligned table like kubectl's."""
    cells = [headers, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def progress(message: str) -> None:
    """Progress of long work goes to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)
