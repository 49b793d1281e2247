"""Unified diffs of what a change set would do, object by object, Secret values masked. No I/O."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from acm_lite import metadata
from acm_lite.plan import ignorefields, ownership, secrets
from acm_lite.plan.changeset import Action, Change

_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


def project(live: Any, shape: Any) -> Any:
    """``live`` cut down to the fields ``shape`` declares, so defaulted fields do not show."""
    if isinstance(shape, dict) and isinstance(live, dict):
        return {k: project(live[k], v) for k, v in shape.items() if k in live}
    if isinstance(shape, list) and isinstance(live, list) and len(shape) == len(live):
        return [project(item, s) for item, s in zip(live, shape, strict=True)]
    return live


def _clean(live: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (live.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    return {**{k: v for k, v in live.items() if k != "status"}, "metadata": meta}


def _yaml(body: dict[str, Any] | None) -> list[str]:
    if body is None:
        return []
    return yaml.safe_dump(body, sort_keys=True).splitlines(keepends=True)


def before_after(change: Change) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The live and the desired object of ``change``, as a diff shows them: Secrets masked."""
    return secrets.mask_pair(*_bodies(change))


def _bodies(change: Change) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if change.action is Action.PRUNE:
        return (_clean(change.live) if change.live else None), None
    if change.action is Action.UNMANAGE and change.live:
        before = _clean(change.live)
        meta = dict(before["metadata"])
        meta["labels"] = {
            k: v for k, v in (meta.get("labels") or {}).items() if k not in metadata.MARK_LABELS
        }
        meta["annotations"] = {
            k: v for k, v in (meta.get("annotations") or {}).items() if k not in metadata.MARK_ANNOTATIONS
        }
        return before, {**before, "metadata": meta}
    desired = secrets.as_stored(ownership.without_commit(change.desired)) if change.desired else None
    if change.live and desired:
        live = project(ignorefields.strip(_clean(change.live), change.ignored), desired)
    else:
        live = None
    return live, desired


def unified(change: Change) -> str:
    before, after = before_after(change)
    name = change.subject.replace(" ", "/")
    lines = difflib.unified_diff(
        _yaml(before), _yaml(after), fromfile=f"live/{name}", tofile=f"desired/{name}"
    )
    return "".join(lines)
