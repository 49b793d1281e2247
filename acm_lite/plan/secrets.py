"""Secret values never reach an output. A diff shows ``***`` for every value of a Secret's
``data`` and ``stringData``, and whether it changed (``*** (before)`` / ``*** (after)``), as
``kubectl diff`` does: reviewers see which keys change without the values. No I/O."""

from __future__ import annotations

import base64
from typing import Any

from acm_lite.metadata import LAST_APPLIED

MASK = "***"
BEFORE, AFTER = f"{MASK} (before)", f"{MASK} (after)"
VALUE_FIELDS = ("data", "stringData")


def is_secret(body: Any) -> bool:
    return isinstance(body, dict) and body.get("kind") == "Secret" and (body.get("apiVersion") == "v1")


def as_stored(body: dict[str, Any]) -> dict[str, Any]:
    """A declared Secret as the API server stores it: ``stringData`` encoded into ``data``
    (its keys win), so that it compares with a live Secret key by key."""
    plain = body.get("stringData")
    if not is_secret(body) or not isinstance(plain, dict):
        return body
    stored = body.get("data")
    data: dict[str, Any] = stored if isinstance(stored, dict) else {}
    encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in plain.items()}
    return {**{k: v for k, v in body.items() if k != "stringData"}, "data": {**data, **encoded}}


def _mask_values(before: Any, after: Any) -> tuple[Any, Any]:
    """One value field of both sides, each value replaced by its mask."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return (None if before is None else MASK), (None if after is None else MASK)
    masked_before, masked_after = {}, {}
    for key in before.keys() | after.keys():
        if key in before and key in after and before[key] != after[key]:
            masked_before[key], masked_after[key] = BEFORE, AFTER
            continue
        if key in before:
            masked_before[key] = MASK
        if key in after:
            masked_after[key] = MASK
    return masked_before, masked_after


def _without_last_applied(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return body
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return body
    return {**body, "metadata": {**meta, "annotations": {**annotations, LAST_APPLIED: MASK}}}


def mask_pair(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``before`` and ``after`` with every Secret value masked; anything else as it is."""
    if not (is_secret(before) or is_secret(after)):
        return before, after
    old, new = dict(before or {}), dict(after or {})
    for name in VALUE_FIELDS:
        if name in old or name in new:
            masked_old, masked_new = _mask_values(old.get(name), new.get(name))
            if name in old:
                old[name] = masked_old
            if name in new:
                new[name] = masked_new
    return (
        (_without_last_applied(old) if before is not None else None),
        (_without_last_applied(new) if after is not None else None),
    )
