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

import re
from dataclasses import dataclass
from typing import Any

HELPER_PACKAGE = "acm_lite_builtins"
SPRINTF_PLAN = "acm_lite.sprintf_plan"
HELPER_MODULE = f"""package {HELPER_PACKAGE}

format(text, args) = out {{
  kinds := [go_kind(a) | a := args[_]]
  plan := {SPRINTF_PLAN}(text, kinds)
  kept := [args[i] | i := plan[1][_]]
  extras := [sprintf("%s=%v", [e[1], args[e[0]]]) | e := plan[2][_]]
  out := concat("", [sprintf(plan[0], kept), extra_text(extras)])
}}

extra_text(extras) = "" {{
  count(extras) == 0
}}

extra_text(extras) = text {{
  count(extras) > 0
  text := concat("", ["%!(EXTRA ", concat(", ", extras), ")"])
}}

go_kind(a) = "int" {{
  is_number(a)
  round(a) == a
}}

go_kind(a) = "float64" {{
  is_number(a)
  round(a) != a
}}

go_kind(a) = "string" {{
  not is_number(a)
}}
"""

_TOKEN = re.compile(
    r"""(?P<nl>\n)|(?P<space>[ \t\r\f\v]+)|(?P<comment>\#[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*")"""
    r"""|(?P<raw>`[^`]*`)|(?P<word>[A-Za-z0-9_]+)|(?P<assign>:=)|(?P<op>==|!=|<=|>=)|(?P<other>.)""",
    re.DOTALL,
)
_KEYWORDS = frozenset(
    {"not", "some", "in", "with", "as", "else", "default", "import", "package", "every", "contains", "if"}
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
MAX_SCANNED = 500_000  # tokens read while finding the ends of negations
MAX_GROWTH = 1 << 20  # characters a rewrite may add beyond the policy's own size
_CONSTANTS = frozenset({"true", "false", "null", "input", "data", "_"})
_EQUALITY = frozenset({"=", "=="})
_INFIX = frozenset({"!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "&", "|"})


class RewriteError(ValueError):
    """A policy too large or too convoluted to rewrite within bounds (refused, not run)."""


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
        head = _one_line(tokens[statement[0] : opens[first]])
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
            and not _plain_sprintf(tokens, i)
        ):
            out.append((token.start, token.end, f"data.{HELPER_PACKAGE}.format"))
    return out


def _plain_sprintf(tokens: list[_Token], at: int) -> bool:
    """A call both engines print alike, left to the built-in: a literal format whose only verbs
    are ``%v``, with a literal array of as many arguments (most messages are written so)."""
    if at + 4 >= len(tokens):
        return False
    text, comma, bracket = tokens[at + 2], tokens[at + 3], tokens[at + 4]
    if text.kind not in ("string", "raw") or comma.text != "," or bracket.text != "[":
        return False
    depth = bracket.depth
    end = next(
        (j for j in range(at + 5, len(tokens)) if tokens[j].text == "]" and tokens[j].depth == depth), None
    )
    if end is None or end + 1 >= len(tokens) or tokens[end + 1].text != ")":
        return False
    verbs = [m.group() for m in _VERB.finditer(text.text) if m.group() != "%%"]
    if any(v != "%v" for v in verbs):
        return False
    elements = _split(tokens[at + 5 : end], depth + 1, frozenset({","}))
    return len(elements) == len(verbs)


def _split(tokens: list[_Token], depth: int, separators: frozenset[str]) -> list[list[_Token]]:
    """``tokens`` cut at each separator at ``depth``."""
    parts: list[list[_Token]] = [[]]
    for token in tokens:
        if token.depth == depth and token.text in separators:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _chain_end(tokens: list[_Token], depth: int) -> int:
    """How many of ``tokens`` make a reference ``a.b[c]...`` starting at the first."""
    i = 1
    while i < len(tokens):
        if tokens[i].text == "." and i + 1 < len(tokens) and tokens[i + 1].kind == "word":
            i += 2
        elif tokens[i].text == "[" and tokens[i].depth == depth:
            i += 1
            while i < len(tokens) and not (tokens[i].text == "]" and tokens[i].depth == depth):
                i += 1
            i += 1
        else:
            break
    return i


def _is_name(token: _Token) -> bool:
    return token.kind == "word" and not token.text[0].isdigit() and token.text not in _KEYWORDS


def _shape(operand: list[_Token], depth: int, rules: set[str]) -> str:
    """What an operand is: 'ref' (may be undefined), 'call', 'composite', or 'plain' (a local
    variable or a literal, always defined)."""
    first = operand[0]
    if _is_name(first) and first.text not in _CONSTANTS - {"input", "data"}:
        end = _chain_end(operand, depth)
        if end < len(operand) and operand[end].text == "(":
            return "call"
        if end == len(operand):
            if end > 1 or first.text in rules:
                return "ref" if first.text != "input" or end > 1 else "plain"
            return "plain"
        return "expression"
    if first.text in ("[", "{") and not any(t.text == "|" and t.depth == depth + 1 for t in operand):
        return "composite"
    return "plain"


def _dynamic_indexes(operand: list[_Token], depth: int, rules: set[str]) -> list[list[_Token]]:
    out = []
    i = 0
    while i < len(operand):
        if operand[i].text == "[" and operand[i].depth == depth:
            j = i + 1
            while j < len(operand) and not (operand[j].text == "]" and operand[j].depth == depth):
                j += 1
            inner = operand[i + 1 : j]
            if inner and _shape(inner, depth + 1, rules) in ("ref", "call"):
                out.append(inner)
            i = j
        i += 1
    return out


def _negation_end(tokens: list[_Token], start: int, budget: list[int]) -> int:
    depth = tokens[start].depth
    j = start + 1
    while j < len(tokens):
        budget[0] -= 1
        if budget[0] < 0:
            raise RewriteError("the policy has too many negations to read")
        token = tokens[j]
        if token.depth < depth or (token.depth == depth and token.text == ";"):
            break
        if token.depth == depth and token.newline_before and _ends_term(tokens[j - 1]):
            break
        j += 1
    return j


def _required(expr: list[_Token], depth: int, rules: set[str]) -> list[list[_Token]]:
    """The parts of a negated expression OPA evaluates before the negation (so that the
    negation fails, rather than succeeds, when one is undefined)."""
    sides = _split(expr, depth, _EQUALITY)
    if len(sides) > 1:
        out = []
        for side in sides:
            shape = _shape(side, depth, rules)
            if shape in ("call", "expression"):
                out.append(side)
            elif shape == "ref":
                out += _dynamic_indexes(side, depth, rules)
        return out
    operands = _split(expr, depth, _INFIX)
    if len(operands) > 1:
        return [o for o in operands if _shape(o, depth, rules) in ("ref", "call", "composite", "expression")]
    shape = _shape(expr, depth, rules)
    if shape == "ref":
        return _dynamic_indexes(expr, depth, rules)
    if shape != "call":
        return []
    open_at = next(i for i, t in enumerate(expr) if t.text == "(")
    if expr[-1].text != ")" or expr[-1].depth != depth:
        return []
    args = _split(expr[open_at + 1 : -1], depth + 1, frozenset({","}))
    return [a for a in args if _shape(a, depth + 1, rules) in ("ref", "call", "composite", "expression")]


def _negations(tokens: list[_Token]) -> list[tuple[int, str]]:
    """Where the parts OPA evaluates before a ``not`` are required to be defined first."""
    rules = {tokens[s[0]].text for s in _statements(tokens) if s and _is_name(tokens[s[0]])}
    edits = []
    budget = [MAX_SCANNED]
    for i, token in enumerate(tokens):
        if token.text != "not" or token.kind != "word":
            continue
        end = _negation_end(tokens, i, budget)
        expr = tokens[i + 1 : end]
        if not expr or any(t.text in ("with", "_", "some", "every") for t in expr):
            continue
        required = _required(expr, token.depth, rules)
        if required:
            edits.append((token.start, "".join(f"_ = {_one_line(part)}; " for part in required)))
    return edits


def rewrite(text: str) -> str:
    """``text`` with the rewrites above applied (unchanged when none applies)."""
    if "\n" not in text:
        return text
    tokens = _tokens(text)
    inserts = _newline_calls(tokens) + _chained_bodies(text, tokens) + _negations(tokens)
    replaces = _sprintf_calls(tokens)
    if not inserts and not replaces:
        return text
    edits = [(at, at, new) for at, new in inserts] + replaces
    if sum(len(new) for _, _, new in edits) > MAX_GROWTH + len(text):
        raise RewriteError("the policy would grow too large when rewritten (too many chained rule bodies)")
    out = []
    cursor = 0
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1])):
        out.append(text[cursor:start])
        out.append(new)
        cursor = max(cursor, end)
    out.append(text[cursor:])
    return "".join(out)


_VERB = re.compile(r"%(?:%|\[\d+\]|[-+# 0]*(?:\d+|\*)?(?:\.(?:\d+|\*)?)?([a-zA-Z]))")
_VALID = {
    "int": frozenset("vdboOxXcqU"),
    "float64": frozenset("vbgGxXfFeE"),
    "string": frozenset("vsqxX"),
}


def sprintf_plan(text: Any, kinds: Any) -> list[Any]:
    """How to print what Go's ``fmt.Sprintf`` prints, given the format and the Go kind of each
    argument as OPA passes them (int, float64, string): the format for the engine's ``sprintf``
    (a missing argument written as ``%!v(MISSING)``, a verb of the wrong kind as
    ``%!d(string=...)`` around a ``%v``), the indexes of the arguments to give it, and the
    extra arguments (index, kind) to print as ``%!(EXTRA kind=value, ...)`` after the text."""
    if not isinstance(text, str) or not isinstance(kinds, list):
        return [text, [], []]
    pieces: list[str] = []
    kept: list[int] = []
    used = 0
    cursor = 0
    for m in _VERB.finditer(text):
        verb = m.group(1)
        if verb is None:  # %% or an explicit argument index, left to the engine
            continue
        pieces.append(text[cursor : m.start()])
        cursor = m.end()
        if used >= len(kinds):
            pieces.append(f"%%!{verb}(MISSING)")
            continue
        kind = str(kinds[used])
        if verb in _VALID.get(kind, frozenset()):
            pieces.append(m.group())
        else:
            pieces.append(f"%%!{verb}({kind}=%v)")
        kept.append(used)
        used += 1
    pieces.append(text[cursor:])
    extras = [[i, str(kinds[i])] for i in range(used, len(kinds))]
    return ["".join(pieces), kept, extras]
