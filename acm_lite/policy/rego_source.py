"""Rego v0 source rewritten, before the engine reads it, where OPA and regorus read the same
text differently (see docs/policy-engine-limits.md). Each rewrite keeps every line where it
was, so the engine's messages still point at the template's own lines. No I/O.

- Chained bodies, ``p[x] { a } { b }``: OPA reads each further body as another definition of
  the rule; regorus reads it as ``else`` (refused for partial rules, a different value for the
  others). Each further body gets the rule's head written before it.
- A line starting with ``(`` in a rule body: OPA starts a new expression; regorus calls the
  term that ended the line before (``input.parameters.x`` then ``(a - b) >= 1`` becomes a call
  of ``input.parameters.x``). A ``;`` is put after that term.
- ``sprintf`` with fewer or more arguments than the format has verbs: OPA formats as Go does
  (``%!v(MISSING)``, ``%!(EXTRA ...)``); regorus fails the evaluation. Calls of the built-in go
  through ``data.acm_lite_builtins.format``, which fixes up the format and arguments first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

HELPER_PACKAGE = "acm_lite_builtins"
SPRINTF_ARGS = "acm_lite.sprintf_args"
HELPER_MODULE = f"""package {HELPER_PACKAGE}

format(text, args) = out {{
  fixed := {SPRINTF_ARGS}(text, args)
  out := sprintf(fixed[0], fixed[1])
}}
"""

_TOKEN = re.compile(
    r"""(?P<nl>\n)|(?P<space>[ \t\r\f\v]+)|(?P<comment>\#[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*")"""
    r"""|(?P<raw>`[^`]*`)|(?P<word>[A-Za-z0-9_]+)|(?P<assign>:=)|(?P<other>.)""",
    re.DOTALL,
)
_KEYWORDS = frozenset(
    {"not", "some", "in", "with", "as", "else", "default", "import", "package", "every", "contains", "if"}
)
_OPEN = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int
    depth: int  # brackets open before it
    newline_before: bool


def _tokens(text: str) -> list[_Token]:
    out = []
    depth = 0
    newline = False
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "nl":
            newline = True
            continue
        if kind in ("space", "comment"):
            continue
        value = m.group()
        if value in ")]}":
            depth = max(depth - 1, 0)
        out.append(_Token(kind, value, m.start(), m.end(), depth, newline))
        if value in _OPEN:
            depth += 1
        newline = False
    return out


def _ends_term(token: _Token) -> bool:
    if token.kind in ("string", "raw") or token.text in (")", "]", "}"):
        return True
    return token.kind == "word" and token.text not in _KEYWORDS


def _newline_calls(tokens: list[_Token]) -> list[tuple[int, str]]:
    """Where a ``;`` keeps a line starting with ``(`` from calling the term before it."""
    edits = []
    stack: list[str] = []
    for i, token in enumerate(tokens):
        if (
            token.text == "("
            and token.newline_before
            and i > 0
            and _ends_term(tokens[i - 1])
            and stack[-1:] == ["{"]
            and tokens[i - 1].text != "}"
        ):
            edits.append((tokens[i - 1].end, ";"))
        if token.text in _OPEN:
            stack.append(token.text)
        elif token.text in ")]}" and stack:
            stack.pop()
    return edits


def _statements(tokens: list[_Token]) -> list[list[int]]:
    """Top-level statements as lists of token indexes at depth 0 (brackets' insides omitted)."""
    statements: list[list[int]] = []
    previous: _Token | None = None
    for i, token in enumerate(tokens):
        if token.depth != 0:
            continue
        starts = (
            previous is None
            or (
                token.newline_before
                and _ends_term(previous)
                and token.text not in ("{", "else", "=", ":=")
                and previous.text != "else"
            )
            or token.text in ("package", "import", "default")
        )
        if starts or not statements:
            statements.append([i])
        else:
            statements[-1].append(i)
        previous = token
    return statements


def _chained_bodies(text: str, tokens: list[_Token]) -> list[tuple[int, str]]:
    """Where a rule's head is written before each of its chained bodies."""
    edits = []
    for statement in _statements(tokens):
        words = [tokens[i].text for i in statement]
        if not words or words[0] in ("package", "import", "default") or "else" in words:
            continue
        opens = [i for i in statement if tokens[i].text == "{"]
        if len(opens) < 2:
            continue
        first = 0
        before = [tokens[i].text for i in statement if i < opens[0]]
        if before and before[-1] in ("=", ":="):
            first = 1  # the rule's value is an object or set literal
        if first >= len(opens) - 1:
            continue
        head_end = tokens[opens[first]].start
        head = _one_line([t for t in tokens if tokens[statement[0]].start <= t.start < head_end])
        for i in opens[first + 1 :]:
            if tokens[i - 1].text == "}":
                edits.append((tokens[i].start, head + " "))
    return edits


def _one_line(tokens: list[_Token]) -> str:
    """The tokens' text on one line: each gap (spaces, newlines, comments) becomes one space."""
    out = []
    for i, token in enumerate(tokens):
        if i and token.start > tokens[i - 1].end:
            out.append(" ")
        out.append(token.text)
    return "".join(out)


def _defines_sprintf(tokens: list[_Token]) -> bool:
    return any(
        tokens[s[0]].text == "sprintf" for s in _statements(tokens) if s and tokens[s[0]].kind == "word"
    )


def _sprintf_calls(tokens: list[_Token]) -> list[tuple[int, int, str]]:
    if _defines_sprintf(tokens):
        return []
    out = []
    for i, token in enumerate(tokens):
        if (
            token.text == "sprintf"
            and i + 1 < len(tokens)
            and tokens[i + 1].text == "("
            and not (i > 0 and tokens[i - 1].text == ".")
        ):
            out.append((token.start, token.end, f"data.{HELPER_PACKAGE}.format"))
    return out


def rewrite(text: str) -> str:
    """``text`` with the rewrites above applied (unchanged when none applies)."""
    if "\n" not in text:
        return text
    tokens = _tokens(text)
    inserts = _newline_calls(tokens) + _chained_bodies(text, tokens)
    replaces = _sprintf_calls(tokens)
    if not inserts and not replaces:
        return text
    edits = [(at, at, new) for at, new in inserts] + replaces
    out = []
    cursor = 0
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(text[cursor:start])
        out.append(new)
        cursor = max(cursor, end)
    out.append(text[cursor:])
    return "".join(out)


_VERB = re.compile(r"%(?:%|\[\d+\]|[-+# 0]*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?([a-zA-Z]))")


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "string"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    return "string"


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, separators=(", ", ": "))


def sprintf_args(format_: Any, args: Any) -> list[Any]:
    """The format and arguments to give the engine's ``sprintf`` so it prints what Go's
    ``fmt.Sprintf`` prints with a missing or extra argument: ``%!v(MISSING)``, and
    ``%!(EXTRA type=value, ...)`` after the text."""
    if not isinstance(format_, str) or not isinstance(args, list):
        return [format_, args]
    pieces: list[str] = []
    used = 0
    cursor = 0
    for m in _VERB.finditer(format_):
        if m.group() == "%%" or m.group(1) is None:
            continue
        if used < len(args):
            used += 1
            continue
        pieces.append(format_[cursor : m.start()])
        pieces.append(f"%%!{m.group(1)}(MISSING)")
        cursor = m.end()
    pieces.append(format_[cursor:])
    fixed = "".join(pieces)
    if used < len(args):
        extra = ", ".join(f"{_go_type(a)}={_go_value(a)}" for a in args[used:])
        fixed += "%%!(EXTRA " + extra.replace("%", "%%") + ")"
    return [fixed, args[:used]]
