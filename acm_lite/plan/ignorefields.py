"""A sync's ignore rules: fields of some kinds that other controllers own (an autoscaler's
``/spec/replicas``, containers a webhook injects). Each rule names a group and kind and the
fields as JSON pointers (RFC 6901), in the shape of Argo CD's ``ignoreDifferences``:
``{group, kind, jsonPointers: [...]}``. A field a rule names is taken out of what acm-lite applies
(so server-side apply never owns it) and out of the live object before any comparison (so it is
never drift). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from acm_lite import errors, metadata
from acm_lite.errors import AcmError
from acm_lite.objects import ObjectId

MAX_RULES = 256
MAX_POINTERS = 64  # per rule
MAX_POINTER_LENGTH = 512
MAX_NAME_LENGTH = 253
_ESCAPE = re.compile(r"~(?![01])")
_KEYS = frozenset({"group", "kind", "jsonPointers"})

Tokens = tuple[str, ...]


@dataclass(frozen=True)
class IgnoreRule:
    """One rule as given; ``problem`` says what was wrong with its shape (reported, with the
    sync's name, when the rules are compiled)."""

    group: str
    kind: str
    pointers: tuple[str, ...]
    problem: str = ""

    def to_spec(self) -> dict[str, Any]:
        return {"group": self.group, "kind": self.kind, "jsonPointers": list(self.pointers)}


def from_spec(given: Any) -> tuple[IgnoreRule, ...]:
    """The rules of a ``spec.override.ignoreFields`` value (or a file of them) as given. Never
    raises: a malformed entry becomes a rule whose ``problem`` says why."""
    if given is None:
        return ()
    if not isinstance(given, list):
        return (IgnoreRule("", "", (), "ignoreFields must be a list of {group, kind, jsonPointers}"),)
    if len(given) > MAX_RULES:
        return (IgnoreRule("", "", (), f"ignoreFields has {len(given)} rules; at most {MAX_RULES}"),)
    rules = []
    for i, entry in enumerate(given):
        where = f"ignoreFields[{i}]"
        if not isinstance(entry, dict):
            rules.append(IgnoreRule("", "", (), f"{where} is not a mapping"))
            continue
        unknown = sorted(str(k)[:64] for k in entry if k not in _KEYS)
        group, kind, pointers = entry.get("group", ""), entry.get("kind"), entry.get("jsonPointers")
        problem = ""
        if unknown:
            problem = f"{where} has unknown fields {unknown}; allowed: group, kind, jsonPointers"
        elif not isinstance(group, str) or len(group) > MAX_NAME_LENGTH:
            problem = f"{where}.group must be a string (empty for the core group)"
        elif not isinstance(kind, str) or not kind or len(kind) > MAX_NAME_LENGTH:
            problem = f"{where}.kind must be a kind's name"
        elif not isinstance(pointers, list) or not pointers or not all(isinstance(p, str) for p in pointers):
            problem = f"{where}.jsonPointers must be a non-empty list of strings"
        elif len(pointers) > MAX_POINTERS:
            problem = f"{where}.jsonPointers has {len(pointers)} pointers; at most {MAX_POINTERS}"
        if problem:
            rules.append(IgnoreRule("", "", (), problem))
        else:
            rules.append(IgnoreRule(str(group), str(kind), tuple(str(p) for p in pointers or ())))
    return tuple(rules)


def parse_pointer(pointer: str) -> Tokens | str:
    """A JSON pointer's reference tokens (RFC 6901), or why it is not one acm-lite can ignore."""
    if len(pointer) > MAX_POINTER_LENGTH:
        return f"is longer than {MAX_POINTER_LENGTH} characters"
    if not pointer.startswith("/"):
        return "must start with '/' (RFC 6901; the whole object cannot be ignored)"
    if _ESCAPE.search(pointer):
        return "has a '~' not followed by 0 or 1 (RFC 6901 escapes are ~0 and ~1)"
    tokens = tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))
    if any(t == "" for t in tokens):
        return "has an empty reference token"
    if tokens[0] in ("apiVersion", "kind"):
        return "names what identifies the object"
    if tokens[0] == "metadata":
        # one label or annotation another controller sets may be ignored; acm-lite's marks not
        if len(tokens) != 3 or tokens[1] not in ("labels", "annotations"):
            return (
                "names object metadata; only /metadata/labels/KEY or /metadata/annotations/KEY may be ignored"
            )
        if tokens[2] in (*metadata.MARK_LABELS, *metadata.MARK_ANNOTATIONS, metadata.MUTATION):
            return "names a mark acm-lite manages the object by"
    return tokens


@dataclass(frozen=True)
class Rules:
    """Compiled rules: each kind's pointers as reference tokens."""

    by_kind: dict[tuple[str, str], tuple[Tokens, ...]]

    def for_object(self, oid: ObjectId) -> tuple[Tokens, ...]:
        return self.by_kind.get((oid.group, oid.kind), ())


NONE = Rules({})


def compile_rules(rules: Iterable[IgnoreRule], sync: str) -> Rules:
    """Check every rule; the first bad one is ``KNV1061`` naming the sync."""
    by_kind: dict[tuple[str, str], list[Tokens]] = {}
    for i, rule in enumerate(rules):
        if rule.problem:
            raise _invalid(sync, rule.problem)
        for pointer in rule.pointers:
            parsed = parse_pointer(pointer)
            if isinstance(parsed, str):
                raise _invalid(sync, f"ignoreFields[{i}] pointer {errors.shown(pointer)} {parsed}")
            by_kind.setdefault((rule.group, rule.kind), []).append(parsed)
    return Rules({key: tuple(tokens) for key, tokens in by_kind.items()})


def _invalid(sync: str, message: str) -> AcmError:
    return AcmError(
        errors.INVALID_SYNC,
        f"sync {sync!r}: {message}",
        subject=f"RootSync {sync}",
        hint="fix spec.override.ignoreFields (or the --ignore-fields file)",
    )


def strip(body: dict[str, Any], pointers: tuple[Tokens, ...]) -> dict[str, Any]:
    """``body`` without the fields ``pointers`` name; what is not named is shared, not copied.
    A pointer to something absent changes nothing; in a list, a token is an index."""
    for tokens in pointers:
        body = _without(body, tokens)
    return body


def _without(value: Any, tokens: Tokens) -> Any:
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict):
        if head not in value:
            return value
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: _without(value[head], rest)}
    if isinstance(value, list):
        if not head.isdigit() or (len(head) > 1 and head.startswith("0")) or int(head) >= len(value):
            return value
        index = int(head)
        if not rest:
            return value[:index] + value[index + 1 :]
        return [*value[:index], _without(value[index], rest), *value[index + 1 :]]
    return value
