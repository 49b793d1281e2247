"""acm-lite's marks on the objects it manages: who owns them, from where, in which state.

Labels (selectable, so watches and lists can filter): ``app.kubernetes.io/managed-by: acm-lite``
and ``acm-lite.io/sync: <sync>``. Annotations: source path, the commit last applied, and a hash of
the declared object. No I/O.
"""

from __future__ import annotations

from typing import Any

from acm_lite.objects import Manifest

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "acm-lite"
SYNC_LABEL = "acm-lite.io/sync"
SOURCE_PATH = "acm-lite.io/source-path"
COMMIT = "acm-lite.io/commit"
DECLARED_HASH = "acm-lite.io/declared-hash"
LABELS = (MANAGED_BY_LABEL, SYNC_LABEL)
ANNOTATIONS = (SOURCE_PATH, COMMIT, DECLARED_HASH)
DELETION = "client.lifecycle.config.k8s.io/deletion"  # "detach": never delete on removal
DETACH = "detach"


def stamp(manifest: Manifest, sync: str, commit: str | None) -> dict[str, Any]:
    """The body acm-lite applies: the declared object plus its management marks.

    Only the metadata is new; the rest is shared with the declared body, which nobody mutates.
    """
    meta = manifest.metadata
    labels = {**(meta.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY, SYNC_LABEL: sync}
    annotations = {**(meta.get("annotations") or {}), SOURCE_PATH: manifest.source,
                   DECLARED_HASH: manifest.digest}
    if commit:
        annotations[COMMIT] = commit
    return {**manifest.body, "metadata": {**meta, "labels": labels, "annotations": annotations}}


def without_commit(stamped: dict[str, Any]) -> dict[str, Any]:
    """A stamped body without the commit mark, which alone never warrants a write: what live
    objects are compared with (planning, drift repair, diffs)."""
    meta = dict(stamped.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items()
                           if k != COMMIT}
    return {**stamped, "metadata": meta}


def owner(live: dict[str, Any] | None) -> str | None:
    """The sync that manages ``live``, or None for an object acm-lite does not manage."""
    if not live:
        return None
    labels = (live.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return None
    value = labels.get(SYNC_LABEL)
    return str(value) if value else None


def live_annotation(live: dict[str, Any], key: str) -> str | None:
    value = ((live.get("metadata") or {}).get("annotations") or {}).get(key)
    return str(value) if value is not None else None


def unmanage_patch() -> dict[str, Any]:
    """A merge patch removing every management mark and nothing else."""
    return {"metadata": {"labels": dict.fromkeys(LABELS),
                         "annotations": dict.fromkeys(ANNOTATIONS)}}
