"""What a parsed document may hold: JSON's data model, bounded in depth and expanded size.

YAML can build more than a Kubernetes object can carry (integer or null keys, bytes, sets, dates, a
node holding itself) and aliases can multiply a small file into a huge request; JSON escapes can
make strings UTF-8 cannot encode. Each is a coded finding here rather than an exception later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.objects import field_path

_SCALARS = (str, bool, int, float, type(None))
MAX_INT_DIGITS = 4000  # below Python's int-string limit (4300), far beyond an int64's 19 digits


@dataclass(frozen=True)
class ShapeLimits:
    max_depth: int
    max_nodes: int
    max_chars: int  # string characters after alias expansion (keys included)


class ShapeError(AcmError):
    """A document (or a scalar in it) that cannot become a Kubernetes object."""


def check(doc: Any, limits: ShapeLimits) -> ShapeLimits:
    """Raise ShapeError for the first thing in ``doc`` a Kubernetes object cannot hold. Aliased
    (shared) nodes are counted at every place they appear, as a JSON encoder would write them.
    Returns the limits left for the next document of the same file (its characters spent)."""
    nodes = chars = 0
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(doc, 0, ())]
    while stack:
        value, depth, path = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise ShapeError(
                errors.ALIAS_EXPANSION, f"the document expands to more than {limits.max_nodes} nodes"
            )
        if isinstance(value, dict):
            if depth >= limits.max_depth:
                raise _too_deep(limits, path)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise non_string_key(key, field_path(path))
                chars += len(key)
                _check_text(key, path)
                stack.append((item, depth + 1, (*path, key)))
        elif isinstance(value, list):
            if depth >= limits.max_depth:
                raise _too_deep(limits, path)
            stack.extend((item, depth + 1, (*path, i)) for i, item in enumerate(value))
        elif isinstance(value, str):
            chars += len(value)
            _check_text(value, path)
        elif not isinstance(value, _SCALARS):
            raise ShapeError(
                errors.UNSUPPORTED_VALUE,
                f"{field_path(path)} is a {type(value).__name__} (from a YAML tag), which JSON cannot carry",
            )
        if chars > limits.max_chars:
            raise ShapeError(
                errors.ALIAS_EXPANSION,
                f"the document expands to more than {limits.max_chars} characters "
                "of strings (YAML aliases repeat what they point at)",
            )
    return ShapeLimits(limits.max_depth, limits.max_nodes, limits.max_chars - chars)


def non_string_key(key: Any, at: str) -> ShapeError:
    shown = "null" if key is None else repr(key).lower() if isinstance(key, bool) else repr(key)
    return ShapeError(
        errors.NON_STRING_KEY,
        f"key {shown} in {at} is a {type(key).__name__}, not a string; "
        f'quote it ("{"null" if key is None else key}": ...)',
    )


def _too_deep(limits: ShapeLimits, path: tuple[Any, ...]) -> ShapeError:
    return ShapeError(
        errors.NESTING_TOO_DEEP, f"{field_path(path[:8])}... nests deeper than {limits.max_depth} levels"
    )


def _check_text(text: str, path: tuple[Any, ...]) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ShapeError(
            errors.UNSUPPORTED_VALUE,
            f"{field_path(path)} holds a lone surrogate "
            "(an escape such as \\ud800), which UTF-8 cannot encode",
        ) from None


def int_or_error(text: str) -> int:
    """``int(text)`` for a JSON or YAML integer, refusing one too long to convert (Python raises a
    ValueError past 4300 digits)."""
    if len(text) > MAX_INT_DIGITS:
        raise ShapeError(
            errors.UNSUPPORTED_VALUE,
            f"an integer of {len(text)} digits (Kubernetes integers have at most 19)",
        )
    return int(text)
