"""ACM1043-ACM1045: ConfigMap and Secret data the API server refuses — keys that are not config
keys, Secret ``data`` and ConfigMap ``binaryData`` that are not base64, and data over 1 MiB.

Config keys are ``[-._a-zA-Z0-9]+``, at most 253 characters, neither ``.`` nor ``..`` nor
starting with ``..``. Secret ``stringData`` is merged into ``data`` by the API server, so its keys
are data keys too. Base64 is Go's standard encoding as its JSON decoder reads ``[]byte``: the
standard alphabet, ``=`` padding required, carriage returns and line feeds ignored anywhere.
The 1 MiB limit counts decoded bytes: ConfigMap ``data`` (UTF-8) plus ``binaryData``, Secret
``data`` merged with ``stringData``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem, shown
from acm_lite.objects import GroupKind, Manifest

MAX_DATA_BYTES = 1024 * 1024
KEY_MAX = 253
_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_LINE_BREAKS = str.maketrans("", "", "\r\n")
CONFIG_MAP = GroupKind("", "ConfigMap")
SECRET = GroupKind("", "Secret")


# Values in messages are cut short: a hostile key or value can be megabytes long.
@lru_cache(maxsize=8192)
def key_error(key: str) -> str | None:
    """Why ``key`` is not a valid config key, or None."""
    if len(key) > KEY_MAX:
        return f"is longer than {KEY_MAX} characters"
    if not _KEY.fullmatch(key):
        return "must consist of alphanumeric characters, '-', '_' or '.'"
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..' or start with '..'"
    return None


def decoded_size(text: str) -> int | None:
    """The byte length ``text`` decodes to as base64, or None when it is not base64."""
    if "\r" in text or "\n" in text:
        text = text.translate(_LINE_BREAKS)
    if not _BASE64.fullmatch(text):
        return None
    return len(text) // 4 * 3 - len(text) + len(text.rstrip("="))


def _keys(obj: Manifest, field: str, values: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    if not values:
        return problems
    for key in values:
        reason = key_error(key) if isinstance(key, str) else None
        if reason:
            problems.append(Problem.about(errors.INVALID_DATA_KEY, f"{field} key {shown(key)} {reason}", obj))
    return problems


def _base64(obj: Manifest, field: str, values: dict[str, Any]) -> tuple[list[Problem], dict[str, int]]:
    """Problems with the values of a base64 field, and the decoded size of each valid value."""
    problems, sizes = [], {}
    for key, value in values.items():
        if not isinstance(value, str):
            continue  # a wrong type is the schema check's business
        size = decoded_size(value)
        if size is None:
            problems.append(
                Problem.about(
                    errors.INVALID_BASE64,
                    f"{field}[{shown(key)}] is not valid base64",
                    obj,
                    hint="encode with `base64 -w0`, or put plain text under stringData (Secret) "
                    "or data (ConfigMap)",
                )
            )
        else:
            sizes[key] = size
    return problems, sizes


def _too_large(obj: Manifest, total: int, fields: str) -> list[Problem]:
    if total <= MAX_DATA_BYTES:
        return []
    return [
        Problem.about(
            errors.DATA_TOO_LARGE,
            f"{fields} hold {total} bytes, more than the {MAX_DATA_BYTES} bytes "
            "(1 MiB) the API server accepts",
            obj,
            hint="split the data over several objects",
        )
    ]


def _text_size(values: dict[str, Any]) -> dict[str, int]:
    return {k: len(v) if v.isascii() else len(v.encode()) for k, v in values.items() if isinstance(v, str)}


def _surely_small(*fields: dict[str, Any]) -> bool:
    """A UTF-8 character is at most 4 bytes and base64 decodes to less than it encodes: under a
    quarter of the limit in characters, data cannot be too large, so nothing is encoded."""
    return sum(len(v) for f in fields for v in f.values() if isinstance(v, str)) * 4 <= MAX_DATA_BYTES


def _config_map(obj: Manifest) -> list[Problem]:
    data, binary = obj.mapping("data"), obj.mapping("binaryData")
    problems = _keys(obj, "data", data) + _keys(obj, "binaryData", binary)
    if binary:
        problems += [
            Problem.about(errors.INVALID_DATA_KEY, f"data key {shown(key)} is also a binaryData key", obj)
            for key in data
            if key in binary
        ]
    found, sizes = _base64(obj, "binaryData", binary) if binary else ([], {})
    if _surely_small(data, binary):
        return problems + found
    total = sum(_text_size(data).values()) + sum(sizes.values())
    return problems + found + _too_large(obj, total, "data and binaryData")


def _secret(obj: Manifest) -> list[Problem]:
    data, plain = obj.mapping("data"), obj.mapping("stringData")
    problems = _keys(obj, "data", data) + _keys(obj, "stringData", plain)
    found, sizes = _base64(obj, "data", data)
    if _surely_small(data, plain):
        return problems + found
    merged = {**sizes, **_text_size(plain)}
    return problems + found + _too_large(obj, sum(merged.values()), "data and stringData")


def check(obj: Manifest) -> list[Problem]:
    kind = obj.group_kind
    if kind == CONFIG_MAP:
        return _config_map(obj)
    if kind == SECRET:
        return _secret(obj)
    return []
