"""acm-lite's marks on the objects it manages: who owns them, from where, in which state.

Labels (selectable, so watches and lists can filter): ``app.kubernetes.io/managed-by: acm-lite``
and ``acm-lite.io/sync: <sync>``. Annotations: source path, the commit last applied, and a hash of
the declared object. The keys, and the reader of a live object's owner, are in ``metadata``; here
the marks are put on, compared without the commit, and taken off. No I/O.
"""

from __future__ import annotations

from typing import Any

from acm_lite.metadata import (
    COMMIT,
    DECLARED_HASH,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MARK_ANNOTATIONS,
    MARK_LABELS,
    MUTATION,
    SOURCE_PATH,
    SYNC_LABEL,
)
from acm_lite.objects import Manifest


def stamp(manifest: Manifest, sync: str, commit: str | None) -> dict[str, Any]:
    """The body acm-lite applies: the declared object plus its management marks.

    Only the metadata is new; the rest is shared with the declared body, which nobody mutates.
    """
    meta = manifest.metadata
    labels = {**(meta.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY, SYNC_LABEL: sync}
    annotations = {
        **(meta.get("annotations") or {}),
        SOURCE_PATH: manifest.source,
        DECLARED_HASH: manifest.digest,
    }
    if commit:
        annotations[COMMIT] = commit
    return {**manifest.body, "metadata": {**meta, "labels": labels, "annotations": annotations}}


def marks_only(stamped: dict[str, Any]) -> dict[str, Any]:
    """Of a stamped body, only what names the object and acm-lite's marks (with the mutation
    annotation): what adopting an object whose mutation is ignored applies, so that it is owned,
    listed and pruned like any other while every field it holds stays as it is."""
    meta = stamped.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    kept = {key: meta[key] for key in ("name", "namespace") if key in meta}
    kept["labels"] = {k: labels[k] for k in MARK_LABELS if k in labels}
    kept["annotations"] = {k: annotations[k] for k in (*MARK_ANNOTATIONS, MUTATION) if k in annotations}
    return {"apiVersion": stamped.get("apiVersion"), "kind": stamped.get("kind"), "metadata": kept}


def without_commit(stamped: dict[str, Any]) -> dict[str, Any]:
    """A stamped body without the commit mark, which alone never warrants a write: what live
    objects are compared with (planning, drift repair, diffs)."""
    meta = dict(stamped.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != COMMIT}
    return {**stamped, "metadata": meta}


def unmanage_patch() -> dict[str, Any]:
    """A merge patch removing every management mark and nothing else."""
    return {
        "metadata": {"labels": dict.fromkeys(MARK_LABELS), "annotations": dict.fromkeys(MARK_ANNOTATIONS)}
    }
