"""The fields every later stage relies on, checked once as a document becomes an object:
``apiVersion`` and ``kind`` are identifiers (they end up in file names and URLs), ``metadata`` is a
map, its name and namespace are strings, its labels and annotations maps of strings."""

from __future__ import annotations

import re
from typing import Any

from acm_lite import errors
from acm_lite.errors import Code, shown

# a kind is a DNS-1035 label once lower-cased (as the API server checks CRD names.kind)
_KIND = re.compile(r"^[A-Za-z]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$")
# an optional group (a DNS-1123 subdomain) and a version (a DNS-1123 label)
_API_VERSION = re.compile(
    r"^(?:(?=[^/]{1,253}/)[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    r"(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
)
_VALID: dict[tuple[str, str], bool] = {}  # (apiVersion, kind) pairs repeat across thousands of objects
_VALID_MAX = 1 << 12


def problem(doc: dict[str, Any]) -> tuple[Code, str, str | None] | None:
    """The code, message and hint of the first malformed identity field of ``doc``, if any."""
    missing = [f for f in ("apiVersion", "kind") if not isinstance(doc.get(f), str) or not doc[f]]
    if missing:
        return errors.OBJECT_PARSE, f"missing or non-string field(s) {', '.join(missing)}", None
    api_version, kind = doc["apiVersion"], doc["kind"]
    if not _identifiers_ok(api_version, kind):
        return (
            errors.OBJECT_PARSE,
            f"apiVersion {shown(api_version)} with kind {shown(kind)} is not a valid group/version and kind",
            "e.g. apiVersion: apps/v1, kind: Deployment",
        )
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return errors.OBJECT_PARSE, f"{kind} has no metadata map", None
    wrong = [f for f in ("name", "namespace") if f in meta and not isinstance(meta[f], str)]
    if wrong:
        return (
            errors.OBJECT_PARSE,
            f"{kind}: metadata.{' and metadata.'.join(wrong)} must be a string",
            None,
        )
    for field in ("labels", "annotations"):
        found = _string_map_problem(meta.get(field), field)
        if found:
            return found
    return None


def _identifiers_ok(api_version: str, kind: str) -> bool:
    known = _VALID.get((api_version, kind))
    if known is None:
        known = bool(_KIND.fullmatch(kind)) and bool(_API_VERSION.fullmatch(api_version))
        if len(_VALID) < _VALID_MAX:
            _VALID[api_version, kind] = known
    return known


def _string_map_problem(value: Any, field: str) -> tuple[Code, str, str | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return (
            errors.INVALID_ANNOTATION_VALUE,
            f"metadata.{field} must be a map of strings, not a {type(value).__name__}",
            "write it as key: value lines",
        )
    bad = sorted(str(k) for k, v in value.items() if not isinstance(v, str))
    if bad:
        return (
            errors.INVALID_ANNOTATION_VALUE,
            f"values of metadata.{field} {', '.join(shown(k) for k in bad[:10])} are not strings",
            'quote them, e.g. "true" or "8080"',
        )
    return None
