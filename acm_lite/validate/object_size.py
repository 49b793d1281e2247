"""ACM1046: an object too large for etcd. etcd refuses a request over 1.5 MiB (its default
``--max-request-bytes``), so an object whose compact JSON is larger cannot be stored, whatever
its kind; the API server answers only once the apply is under way.

Encoding every object as JSON would cost the hot path more than reading it, so the check first
takes the object's ``marshal`` (format 2, which writes every value out, shared or not) size:
no value's compact JSON is more than 6 times its marshal form (a control character, 1 byte,
escapes to 6), so an object whose marshal form is under a sixth of the limit is small enough.
Only larger ones are encoded.
"""

from __future__ import annotations

import json
import marshal
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

MAX_OBJECT_BYTES = 1536 * 1024
JSON_PER_MARSHAL_BYTE = 6
_MARSHAL_VERSION = 2  # no back-references: an aliased value counts each time it is written
_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False, default=str)


def encoded_size(body: dict[str, Any]) -> int:
    """Bytes of the compact JSON the API server would receive."""
    return len(_UTF8.encode(body).encode())


def surely_small(body: dict[str, Any]) -> bool:
    """True when ``body`` cannot encode to more than the limit (a cheap bound, no JSON)."""
    try:
        bound = len(marshal.dumps(body, _MARSHAL_VERSION)) * JSON_PER_MARSHAL_BYTE
    except ValueError:  # a type marshal does not know (a YAML timestamp): measure exactly
        return False
    return bound <= MAX_OBJECT_BYTES


def check(obj: Manifest) -> list[Problem]:
    if surely_small(obj.body):
        return []
    size = encoded_size(obj.body)
    if size <= MAX_OBJECT_BYTES:
        return []
    return [
        Problem.about(
            errors.OBJECT_TOO_LARGE,
            f"the object serialises to {size} bytes, more than the "
            f"{MAX_OBJECT_BYTES} bytes (1.5 MiB) etcd stores",
            obj,
            hint="split it into several objects",
        )
    ]
