"""acm-lite's objects in the cluster: its CRDs and namespace, and each RootSync's (and
RepoSync's) spec and status.
Cluster I/O; the write requests themselves are built by ``apply.writes``."""

from __future__ import annotations

import logging
import time
from typing import Any

from acm_lite import api, metadata
from acm_lite.apply import wait, writes
from acm_lite.cluster.client import ApiError, Client
from acm_lite.status.model import State, SyncStatus, conditions

ROOTSYNCS = "rootsyncs"
STARTING_WAIT = 10.0  # seconds a just-installed CRD's storage may answer 429 while it starts
log = logging.getLogger("acm_lite.install")


def _path(namespace: str, name: str = "", status: bool = False, kind: str = api.ROOT_SYNC) -> str:
    base = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{api.PLURALS[kind]}"
    return base + (f"/{name}" if name else "") + ("/status" if status else "")


def path_of(kind: str, namespace: str, name: str) -> str:
    """Where the sync object ``kind`` (RootSync, RepoSync) ``namespace/name`` lives."""
    return _path(namespace, name, kind=kind)


# What reading a sync needs; the health record (resourcestatuses) came later, and an installation
# without it yet is still read (a pass that writes installs it).
_READ_NEEDS = ("rootsyncs.acm-lite.io", "resourceinventories.acm-lite.io")


def installed(cluster: Client) -> bool:
    """Whether acm-lite's CRDs are in place (nothing to read before they are)."""
    return all(wait.established(cluster, name) for name in _READ_NEEDS)


def install(cluster: Client) -> bool:
    """Make sure acm-lite's current CRDs and the system namespace exist; True if anything was written.

    Reads first, so a running installation (or the Helm chart's) costs no write. A CRD is written
    when it is missing or its ``crd-hash`` annotation is not that of acm-lite's (an installation
    upgraded from an older acm-lite, whose RootSync schema may refuse what this one writes). A
    service account that may not write CRDs (403) still works on a CRD the chart installed: the
    installed one is used, with a warning once per process.
    """
    wrote = False
    pending = []
    for crd in api.crds():
        name = crd["metadata"]["name"]
        live = _read_crd(cluster, name)
        if live is not None and _current(live, crd):
            if not wait.is_established(live):
                pending.append(name)
            continue
        try:
            writes.send(cluster, writes.server_side_apply(wait.CRD_PATH + name, _stamped(crd)))
        except ApiError as e:
            if e.status == 403 and live is not None:
                _warn_outdated(name, live, crd)
                continue
            raise e.to_acm(f"CustomResourceDefinition {name}") from e
        wrote = True
        pending.append(name)
    if pending:
        wait.crds_established(cluster, pending)
    try:
        cluster.request("GET", f"/api/v1/namespaces/{api.system_namespace()}")
    except ApiError as e:
        if e.status != 404:
            raise e.to_acm(f"Namespace {api.system_namespace()}") from e
        writes.send(
            cluster,
            writes.server_side_apply(
                f"/api/v1/namespaces/{api.system_namespace()}",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": api.system_namespace(),
                        "labels": {metadata.PART_OF_LABEL: metadata.PART_OF},
                    },
                },
            ),
        )
        wrote = True
    return wrote


def _read_crd(cluster: Client, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cluster.request("GET", wait.CRD_PATH + name)
        return found
    except ApiError as e:
        if e.status == 404:
            return None
        raise e.to_acm(f"CustomResourceDefinition {name}") from e


def _hash(crd: dict[str, Any]) -> str:
    return str(((crd.get("metadata") or {}).get("annotations") or {}).get(api.CRD_HASH_ANNOTATION, ""))


def _stamped(crd: dict[str, Any]) -> dict[str, Any]:
    """``crd`` with the hash of its spec as written, whatever the shipped file's annotation says."""
    metadata = dict(crd["metadata"])
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        api.CRD_HASH_ANNOTATION: api.crd_hash(crd),
    }
    return {**crd, "metadata": metadata}


def _current(live: dict[str, Any], ours: dict[str, Any]) -> bool:
    """Whether the live CRD is the one acm-lite ships (by the hash its annotation records)."""
    return _hash(live) == api.crd_hash(ours)


_warned: set[tuple[str, str]] = set()


def _warn_outdated(name: str, live: dict[str, Any], ours: dict[str, Any]) -> None:
    key = (name, _hash(live))
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "CustomResourceDefinition %s is not the one this acm-lite ships (crd-hash %s, not %s) and this "
        "account may not update it (403); using the installed one. Upgrade it with the chart's crds/ "
        "(helm does not upgrade CRDs) or kubectl apply.",
        name,
        _hash(live) or "(none)",
        api.crd_hash(ours),
        extra={"fields": {"crd": name}},
    )


def read(
    cluster: Client, name: str, namespace: str | None = None, *, kind: str = api.ROOT_SYNC
) -> dict[str, Any] | None:
    namespace = namespace or api.system_namespace()
    try:
        found: dict[str, Any] = cluster.request("GET", _path(namespace, name, kind=kind))
        return found
    except ApiError as e:
        if e.status == 404:
            return None
        raise e.to_acm(f"{kind} {namespace}/{name}") from e


def list_repo_syncs(cluster: Client) -> list[dict[str, Any]]:
    """acm-lite's RepoSyncs in every namespace (none when the kind is not installed). While the
    API server's cache of a just-installed CRD is still starting it answers 429 for a moment:
    that answer is retried for a few seconds."""
    deadline = time.monotonic() + STARTING_WAIT
    while True:
        try:
            listed = cluster.request("GET", f"/apis/{api.GROUP}/{api.VERSION}/{api.PLURALS[api.REPO_SYNC]}")
            break
        except ApiError as e:
            if e.status == 404:
                return []
            if e.status != 429 or time.monotonic() > deadline:
                raise e.to_acm("RepoSyncs") from e
        time.sleep(0.2)
    items = listed.get("items") if isinstance(listed, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def list_syncs(cluster: Client, namespace: str | None = None) -> list[dict[str, Any]]:
    namespace = namespace or api.system_namespace()
    try:
        return list(cluster.request("GET", _path(namespace)).get("items") or [])
    except ApiError as e:
        if e.status == 404:
            return []
        raise e.to_acm(f"RootSyncs in {namespace}") from e


def write_spec(
    cluster: Client,
    name: str,
    spec: dict[str, Any],
    existing: dict[str, Any] | None,
    namespace: str | None = None,
    *,
    kind: str = api.ROOT_SYNC,
) -> int:
    """Record how the sync is configured (skipped when nothing changed); the RootSync's
    ``metadata.generation`` afterwards (0 when it cannot be told), which its status answers."""
    namespace = namespace or api.system_namespace()
    if existing is not None and existing.get("spec") == spec:
        return _generation(existing)
    call = writes.server_side_apply(
        _path(namespace, name, kind=kind),
        {
            "apiVersion": api.API_VERSION,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
    )
    try:
        answer = cluster.request(
            call.method, call.path, query=call.query, body=call.body, content_type=call.content_type
        )
    except ApiError as e:
        raise e.to_acm(f"{kind} {namespace}/{name}") from e
    return _generation(answer)


def generation_of(obj: object) -> int:
    """The sync object's ``metadata.generation`` (0 when it cannot be told)."""
    return _generation(obj)


def _generation(obj: object) -> int:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    found = meta.get("generation") if isinstance(meta, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) and found > 0 else 0


def write_status(
    cluster: Client,
    name: str,
    status: SyncStatus,
    existing: dict[str, Any] | None,
    namespace: str | None = None,
    *,
    kind: str = api.ROOT_SYNC,
) -> bool:
    """Record the outcome; skipped (False) when it says nothing new, so a no-op sync writes nothing."""
    namespace = namespace or api.system_namespace()
    if existing is not None and SyncStatus.from_status(existing.get("status")).same_outcome(status):
        return False
    body = status.to_status()
    before = (existing or {}).get("status") or {}
    if "rendering" not in body and before.get("rendering"):
        body["rendering"] = None  # a merge patch leaves a key it does not name
    for field in ("durationSeconds", "counts"):  # maps of this pass: another pass's keys go
        old, new = before.get(field), body.get(field)
        if isinstance(old, dict) and isinstance(new, dict):
            body[field] = {**dict.fromkeys(old), **new}
    try:
        writes.send(
            cluster, writes.merge_patch(_path(namespace, name, status=True, kind=kind), {"status": body})
        )
    except ApiError as e:
        raise e.to_acm(f"{kind} {namespace}/{name} status") from e
    return True


def add_error(
    cluster: Client,
    name: str,
    problem: dict[str, Any],
    namespace: str | None = None,
    *,
    kind: str = api.ROOT_SYNC,
) -> None:
    """Record an error found between passes (a fight) on the sync's status, once."""
    namespace = namespace or api.system_namespace()
    found = read(cluster, name, namespace, kind=kind)
    if found is None:
        return
    status = SyncStatus.from_status(found.get("status"))
    if any(
        e.get("code") == problem["code"] and e.get("object") == problem.get("object") for e in status.errors
    ):
        return
    status.errors.append(problem)
    status.state = State.ERROR
    status.conditions = conditions(status, status.conditions)
    write_status(cluster, name, status, found, namespace, kind=kind)
