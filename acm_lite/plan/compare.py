"""Does the live object already hold every declared field? Conservative: when unsure, no.

Kubernetes normalises some values: quantities ("1000m" is "1"), defaulted empty values (a
declared ``{}`` may be absent live), Secret ``stringData`` (stored base64 in ``data``). Those are
accepted as equal; so is a declared zero value (``false``, ``0``, ``""``) the API server omits.
Anything else must match exactly. No I/O.
"""

from __future__ import annotations

import base64
import re
from fractions import Fraction
from typing import Any

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Keys whose values are resource quantities in the built-in APIs.
QUANTITY_PARENTS = frozenset(
    {
        "limits",
        "requests",
        "hard",
        "used",
        "capacity",
        "allocatable",
        "default",
        "defaultRequest",
        "max",
        "min",
        "maxLimitRequestRatio",
    }
)
QUANTITY_KEYS = frozenset({"storage", "sizeLimit"})


def parse_quantity(text: str) -> Fraction | None:
    match = _QUANTITY.match(text.strip())
    if not match:
        return None
    try:
        number = Fraction(match.group(1))
    except (ValueError, ZeroDivisionError):
        return None
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    return number * (Fraction(10**exponent) if exponent >= 0 else Fraction(1, 10**-exponent))


def _same_quantity(declared: Any, live: Any) -> bool:
    a = parse_quantity(str(declared)) if isinstance(declared, str | int | float) else None
    b = parse_quantity(str(live)) if isinstance(live, str | int | float) else None
    return a is not None and a == b


def _empty(value: Any) -> bool:
    """Values the API server drops (Go's omitempty zero values), so absent live means equal."""
    return value is None or value in ({}, [], "") or (type(value) in (bool, int) and not value)


def first_difference(declared: Any, live: Any) -> str | None:
    """The path of the first declared field whose live value differs; None when all match."""
    found = _difference(declared, live, "", quantity=False)
    if found is None:
        return None
    path = ""
    for step in reversed(found):
        path = f"{path}[{step}]" if isinstance(step, int) else (f"{path}.{step}" if path else str(step))
    return path or "(root)"


def _difference(declared: Any, live: Any, key: str, *, quantity: bool) -> list[str | int] | None:
    """The steps (keys and indexes, innermost first) to the first difference; the path is only
    spelt out when there is one, since almost every comparison finds none. ``key`` is the field
    holding these values; ``quantity`` says a differing scalar may be an equal quantity."""
    if isinstance(declared, dict):
        return _dict_difference(declared, live, key) if isinstance(live, dict) else []
    if isinstance(declared, list):
        if not isinstance(live, list) or len(declared) != len(live):
            return []
        for i, (d, v) in enumerate(zip(declared, live, strict=True)):
            found = _difference(d, v, key, quantity=quantity)
            if found is not None:
                found.append(i)
                return found
        return None
    if declared == live and type(declared) is type(live):
        return None
    if quantity and _same_quantity(declared, live):
        return None
    return []


def _dict_difference(declared: dict[Any, Any], live: dict[Any, Any], holder: str) -> list[str | int] | None:
    quantities = holder in QUANTITY_PARENTS  # requests: {cpu: ...}, hard: {...}, max: {...}
    for key, value in declared.items():
        if key not in live:
            if _empty(value):
                continue
            return [str(key)]
        other = live[key]
        if other is None and _empty(value):
            continue  # a declared empty list or map the API server returns as null (rules: [])
        if type(value) is type(other) and type(value) in _SCALARS and value == other:
            continue  # the common case, without a call
        found = _difference(value, other, str(key), quantity=quantities or key in QUANTITY_KEYS)
        if found is not None:
            found.append(str(key))
            return found
    return None


_SCALARS = (str, int, bool, float)


def secret_string_data_matches(declared: dict[str, Any], live: dict[str, Any]) -> bool:
    """``stringData`` is write-only: compare it with the base64 ``data`` the API server keeps."""
    wanted = declared.get("stringData") or {}
    stored = live.get("data") or {}
    for key, value in wanted.items():
        try:
            if base64.b64decode(stored.get(key, "")).decode() != value:
                return False
        except (ValueError, UnicodeDecodeError):
            return False
    return True


def difference(declared: dict[str, Any], live: dict[str, Any]) -> str | None:
    """First differing path of a whole object (Secret stringData handled)."""
    if declared.get("kind") == "Secret" and declared.get("apiVersion") == "v1" and ("stringData" in declared):
        if not secret_string_data_matches(declared, live):
            return "stringData"
        declared = {k: v for k, v in declared.items() if k != "stringData"}
    return first_difference(declared, live)
