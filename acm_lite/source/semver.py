"""Semantic versions and the version constraints Helm accepts for a chart (Masterminds/semver):
an exact version, ``*``/``x``/empty (any), comparisons (``>=1.2 <2``, also comma-separated),
``~1.2`` (patch releases), ``^1.2`` (minor releases), wildcards (``1.2.x``), hyphen ranges
(``1.0 - 1.6.5``) and ``||`` alternatives. As in Helm, a pre-release matches only a constraint
that names a pre-release itself. Pure functions, no I/O."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)
_PART = re.compile(
    r"^v?(?P<nums>(?:[0-9]+|[xX*])(?:\.(?:[0-9]+|[xX*])){0,2})(?P<pre>-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
_OPS = ("!=", ">=", "<=", "=>", "=<", ">", "<", "=", "~>", "~", "^")


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[tuple[int, int | str], ...] = ()  # empty: a release, which sorts after its pre-releases

    @classmethod
    def parse(cls, text: str) -> Version | None:
        m = _VERSION.fullmatch(text.strip())
        if not m:
            return None
        pre = m["pre"]
        return cls(int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0), _pre_key(pre) if pre else ())

    @property
    def release(self) -> Version:
        return Version(self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def _key(self) -> tuple[object, ...]:
        return (self.major, self.minor, self.patch, (1,) if not self.pre else (0, self.pre))


def _pre_key(pre: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))


def is_exact(text: str) -> bool:
    """A plain version (not a range): Helm asks for that version and no other."""
    return bool(text.strip()) and Version.parse(text) is not None and not text.strip().startswith("=")


Predicate = Callable[[Version], bool]


def constraint(text: str) -> Predicate | None:
    """A predicate for ``text``, or None when it is not a constraint Helm would accept."""
    alternatives = [a.strip() for a in text.split("||")]
    parsed: list[tuple[list[Predicate], bool]] = []
    for alternative in alternatives:
        terms = _terms(alternative)
        if terms is None:
            return None
        parsed.append(terms)

    def matches(v: Version) -> bool:
        for predicates, allows_pre in parsed:
            if v.pre and not allows_pre:
                continue
            if all(p(v) for p in predicates):
                return True
        return False

    return matches


def _terms(text: str) -> tuple[list[Predicate], bool] | None:
    text = re.sub(r"(?<=[<>=~^])\s+", "", text.replace(",", " "))
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text.strip())
    if hyphen:
        low, high = _bound(hyphen[1]), _bound(hyphen[2])
        if low is None or high is None:
            return None
        return [_at_least(low[0]), _upper(high)], bool(low[0].pre or high[0].pre)
    predicates: list[Predicate] = []
    allows_pre = False
    for word in text.split() or ["*"]:
        op = next((o for o in _OPS if word.startswith(o)), "")
        bound = _bound(word[len(op) :])
        if bound is None:
            return None
        v, wild = bound
        allows_pre = allows_pre or bool(v.pre)
        predicate = _predicate(op, v, wild)
        if predicate is None:
            return None
        predicates.append(predicate)
    return predicates, allows_pre


def _bound(text: str) -> tuple[Version, int] | None:
    """A version with the count of its parts that were given (3: exact; 0: ``*``)."""
    m = _PART.fullmatch(text)
    if not m:
        return None
    nums = m["nums"].split(".")
    given = 0
    for n in nums:
        if n in ("x", "X", "*"):
            break
        given += 1
    values = [int(n) for n in nums[:given]] + [0] * (3 - given)
    pre = _pre_key(m["pre"][1:]) if m["pre"] and given == 3 else ()
    return Version(values[0], values[1], values[2], pre), given


def _next(v: Version, given: int) -> Version:
    """The first version past what ``v`` with ``given`` parts covers."""
    if given == 0:
        return Version(1 << 62, 0, 0)
    if given == 1:
        return Version(v.major + 1, 0, 0)
    if given == 2:
        return Version(v.major, v.minor + 1, 0)
    return v


def _at_least(low: Version) -> Predicate:
    return lambda x: x >= low


def _upper(bound: tuple[Version, int]) -> Predicate:
    v, given = bound
    if given == 3:
        return lambda x: x <= v
    nxt = _next(v, given)
    return lambda x: x < nxt


def _predicate(op: str, v: Version, given: int) -> Predicate | None:
    nxt = _next(v, given)
    if op in ("", "="):
        if given == 3:
            return lambda x: x == v
        return lambda x: v <= x < nxt
    if op == "!=":
        return (lambda x: x != v) if given == 3 else (lambda x: not (v <= x < nxt))
    if op == ">":
        return (lambda x: x > v) if given == 3 else (lambda x: x >= nxt)
    if op in (">=", "=>"):
        return lambda x: x >= v
    if op == "<":
        return lambda x: x < v
    if op in ("<=", "=<"):
        return (lambda x: x <= v) if given == 3 else (lambda x: x < nxt)
    if op in ("~", "~>"):
        end = Version(v.major + 1, 0, 0) if given == 1 else Version(v.major, v.minor + 1, 0)
        return lambda x: v <= x < end
    if op == "^":
        if v.major > 0 or given == 1:
            end = Version(v.major + 1, 0, 0)
        elif v.minor > 0 or given == 2:
            end = Version(0, v.minor + 1, 0)
        else:
            end = Version(0, 0, v.patch + 1)
        return lambda x: v <= x < end
    return None


def newest(candidates: Iterable[str], wanted: str) -> str | None:
    """The newest of ``candidates`` ``wanted`` accepts (an exact version matches itself only);
    None when none does. Candidates that are not versions are ignored."""
    wanted = wanted.strip()
    if is_exact(wanted):
        target = Version.parse(wanted)
        exact = [c for c in candidates if Version.parse(c) == target]
        return exact[0] if exact else None
    accepts = constraint(wanted)
    if accepts is None:
        return None
    best: tuple[Version, str] | None = None
    for c in candidates:
        v = Version.parse(c)
        if v is not None and accepts(v) and (best is None or v > best[0]):
            best = (v, c)
    return best[1] if best else None
