"""The in-cluster record of what one sync applied: ResourceInventory parts in the system
namespace (``api.system_namespace()``).

Written as the union of old and new before applying, and as the final set after pruning, so a
sync killed halfway never forgets an object it may have created. The record is split into parts
of bounded size (etcd refuses a request over 1.5 MiB); see ``inventory_parts`` for the layout.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from acm_lite import api, errors, metadata
from acm_lite.apply import inventory_parts as parts
from acm_lite.apply import writes
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId

PLURAL = "resourceinventories"
PART_LIMIT = parts.DEFAULT_LIMIT  # what ``write`` uses unless told otherwise
CREATE_WIDTH = 4  # parts created at a time
STARTING_WAIT = 10.0  # seconds a LIST waits out a just-installed CRD's cache starting
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{base}/{name}" if name else base


def _subject(namespace: str, name: str) -> str:
    return f"{api.GROUP}/ResourceInventory {namespace}/{name}"


def encode(oid: ObjectId) -> str:
    return f"{oid.group}/{oid.kind}/{oid.namespace}/{oid.name}"


def decode(entry: str) -> ObjectId:
    group, kind, namespace, name = entry.split("/", 3)
    return ObjectId(group, kind, namespace, name)


def read(cluster: Client, sync: str, namespace: str | None = None) -> set[ObjectId]:
    """The recorded objects (empty when the sync never ran): the union of every part found, and
    of the single object older versions wrote while no complete write of parts supersedes it."""
    namespace = namespace or api.system_namespace()
    found = [parts.parse(item) for item in _list(cluster, namespace, sync)]
    stored = list(parts.entries(found))
    if not parts.complete_generations(found):
        stored += _legacy(cluster, namespace, sync)
    return _decoded(stored, namespace)


def write(
    cluster: Client,
    sync: str,
    objects: set[ObjectId],
    namespace: str | None = None,
    limit: parts.PartLimit | None = None,
) -> Problem | None:
    """Record ``objects`` as a new generation of parts, then delete what it supersedes.

    Nothing recorded before is touched until every new part is stored, so a write that fails or
    is killed partway leaves the previous record whole (plus some new parts, which a reader adds
    to the union). Raises a coded error when the new record could not be stored; returns a
    warning when it was, but what it supersedes could not be deleted."""
    namespace = namespace or api.system_namespace()
    seen = [parts.parse(item) for item in _list(cluster, namespace, sync, metadata_only=True)]
    generation = parts.next_generation(seen)
    layout = parts.split((encode(o) for o in objects), limit or PART_LIMIT)
    _create(cluster, namespace, sync, generation, layout)
    return _remove(cluster, namespace, sync, seen)


def _list(cluster: Client, namespace: str, sync: str, metadata_only: bool = False) -> list[dict[str, Any]]:
    """Every part of the sync's inventory, in one labelled LIST (bodies or only metadata)."""
    accept = _METADATA_ONLY if metadata_only else "application/json"
    try:
        listed = _listing(cluster, namespace, accept, parts.selector(sync))
    except ApiError as e:
        if e.status == 404:  # the CRD is not installed yet: nothing was ever recorded
            return []
        raise _read_failed(sync, e.to_acm(), namespace) from e
    except AcmError as e:
        raise _read_failed(sync, e, namespace) from e
    items = listed.get("items") if isinstance(listed, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _listing(cluster: Client, namespace: str, accept: str, selector: str) -> Any:
    """One LIST; while the API server's cache of a just-installed CRD is still starting, it
    answers 429 for a moment, so that answer is retried for a few seconds."""
    deadline = time.monotonic() + STARTING_WAIT
    while True:
        try:
            return cluster.request("GET", _path(namespace), accept=accept, query={"labelSelector": selector})
        except ApiError as e:
            if e.status != 429 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _legacy(cluster: Client, namespace: str, sync: str) -> list[tuple[str, object]]:
    """The entries of the single object (named after the sync) that older versions wrote."""
    try:
        doc = cluster.request("GET", _path(namespace, sync))
    except ApiError as e:
        if e.status == 404:
            return []
        raise _read_failed(sync, e.to_acm(), namespace) from e
    except AcmError as e:
        raise _read_failed(sync, e, namespace) from e
    return list(parts.entries([parts.parse(doc)])) if _is_legacy(doc) else []


def _is_legacy(doc: object) -> bool:
    """An object older versions wrote: it carries no part label. A sync named like another
    sync's part (``foo.g1.0``) must never read or delete that part as its own old record."""
    if not isinstance(doc, dict):
        return False
    labels = (doc.get("metadata") or {}).get("labels")
    return not (isinstance(labels, dict) and metadata.INVENTORY_SYNC_LABEL in labels)


def _decoded(stored: Iterable[tuple[str, object]], namespace: str) -> set[ObjectId]:
    """Each stored entry as an object id; an entry that is not one stops the sync, as pruning
    from a record that cannot be read could forget or misread what the sync owns."""
    out: set[ObjectId] = set()
    for name, entry in stored:
        try:
            if not isinstance(entry, str):
                raise TypeError(f"not a string: {entry!r:.80}")
            out.add(decode(entry))
        except (ValueError, TypeError) as e:
            raise AcmError(
                errors.INVENTORY_CORRUPT,
                f"{_subject(namespace, name)}: entry {str(entry)[:120]!r} cannot be read: {e}",
                subject=_subject(namespace, name),
                hint="delete that ResourceInventory; the next pass records the sync's "
                "objects again, and objects it no longer declares are then not "
                "pruned",
            ) from e
    return out


def _create(cluster: Client, namespace: str, sync: str, generation: int, layout: list[list[str]]) -> None:
    """Create every part of the new generation (a create, never an overwrite: a name already
    taken means another write of the same sync raced this one, which is refused)."""
    calls = [
        writes.create(_path(namespace), parts.body(sync, namespace, generation, index, layout))
        for index in range(len(layout))
    ]
    for index, outcome in enumerate(cluster.request_many(calls, width=CREATE_WIDTH)):
        if outcome is None:
            continue
        cause = outcome.to_acm() if isinstance(outcome, ApiError) else outcome
        name = parts.part_name(sync, generation, index)
        raise AcmError(
            errors.INVENTORY_WRITE_FAILED,
            f"the inventory of sync {sync!r} ({sum(map(len, layout))} objects in "
            f"{len(layout)} parts) was not recorded: creating {_subject(namespace, name)} failed: "
            f"{cause.code}: {cause.message}",
            subject=_subject(namespace, name),
            hint="the previous record is kept; the next pass writes it again",
        )


def _remove(cluster: Client, namespace: str, sync: str, seen: list[parts.Part]) -> Problem | None:
    """Delete the parts the new generation supersedes, and the single object of older versions
    (which no label finds; usually long gone, so its DELETE answers 404). A failure here does
    not undo the write: the new record is complete and leftovers only add to a reader's union;
    but each write that cannot delete leaves one more copy, so it is reported (not blocking)."""
    generations = sorted({p.generation for p in seen if p.generation is not None})
    targets = [_path(namespace, p.name) for p in seen if p.generation is None]
    try:
        if generations:
            selector = (
                f"{parts.selector(sync)},{metadata.INVENTORY_GENERATION_LABEL} in "
                f"({','.join(map(str, generations))})"
            )
            writes.send(cluster, writes.delete(_path(namespace), selector=selector))
        for target in targets:
            _delete(cluster, target)
        _delete_legacy(cluster, namespace, sync)
    except (ApiError, AcmError) as e:
        cause = e.to_acm() if isinstance(e, ApiError) else e
        return Problem(
            errors.INVENTORY_CLEANUP_FAILED,
            f"the inventory of sync {sync!r} was recorded, but the ResourceInventories "
            f"it replaces in {namespace} could not be deleted: {cause.code}: "
            f"{cause.message}",
            hint="allow acm-lite to delete and deletecollection "
            "resourceinventories (the Helm chart's Role does)",
        )
    return None


def _delete_legacy(cluster: Client, namespace: str, sync: str) -> None:
    """Delete the single object of older versions, if there is one (and only that: the UID
    precondition keeps a part that took its name in between)."""
    try:
        doc = cluster.request("GET", _path(namespace, sync))
    except ApiError as e:
        if e.status == 404:
            return
        raise
    uid = (doc.get("metadata") or {}).get("uid") if isinstance(doc, dict) else None
    if _is_legacy(doc) and uid:
        try:
            writes.send(cluster, writes.delete(_path(namespace, sync), uid=uid))
        except ApiError as e:
            if e.status not in (404, 409):  # gone, or replaced: either way not ours to delete
                raise


def _delete(cluster: Client, path: str) -> None:
    try:
        writes.send(cluster, writes.delete(path))
    except ApiError as e:
        if e.status != 404:
            raise


def _read_failed(sync: str, cause: AcmError, namespace: str) -> AcmError:
    return AcmError(
        errors.INVENTORY_READ_FAILED,
        f"the inventory of sync {sync!r} (ResourceInventories in {namespace} "
        f"labelled {parts.selector(sync)}) could not be read: {cause.code}: "
        f"{cause.message}",
        subject=_subject(namespace, sync),
        hint="nothing is applied or pruned until it can be read",
    )
