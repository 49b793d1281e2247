"""acm-lite's objects in the cluster: its CRDs and namespace, and each RootSync's spec and status.
Cluster I/O; the write requests themselves are built by ``apply.writes``."""

from __future__ import annotations

from typing import Any

from acm_lite import api, metadata
from acm_lite.apply import wait, writes
from acm_lite.cluster.client import ApiError, Client
from acm_lite.status.model import State, SyncStatus, conditions

ROOTSYNCS = "rootsyncs"


def _path(namespace: str, name: str = "", status: bool = False) -> str:
    base = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{namespace}/{ROOTSYNCS}"
    return base + (f"/{name}" if name else "") + ("/status" if status else "")


# What reading a sync needs; the health record (resourcestatuses) came later, and an installation
# without it yet is still read (a pass that writes installs it).
_READ_NEEDS = ("rootsyncs.acm-lite.io", "resourceinventories.acm-lite.io")


def installed(cluster: Client) -> bool:
    """Whether acm-lite's CRDs are in place (nothing to read before they are)."""
    return all(wait.established(cluster, name) for name in _READ_NEEDS)


def install(cluster: Client) -> bool:
    """Make sure the CRDs and the system namespace exist; True if anything was written.

    Reads first, so a running installation (or the Helm chart's) costs no write, and a service
    account that may not write CRDs still works once the chart installed them.
    """
    wrote = False
    for crd in api.crds():
        name = crd["metadata"]["name"]
        if not wait.established(cluster, name):
            writes.send(cluster, writes.server_side_apply(wait.CRD_PATH + name, crd))
            wrote = True
    if wrote:
        wait.crds_established(cluster, [c["metadata"]["name"] for c in api.crds()])
    try:
        cluster.request("GET", f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}")
    except ApiError as e:
        if e.status != 404:
            raise e.to_acm(f"Namespace {api.SYSTEM_NAMESPACE}") from e
        writes.send(
            cluster,
            writes.server_side_apply(
                f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": api.SYSTEM_NAMESPACE,
                        "labels": {metadata.PART_OF_LABEL: metadata.PART_OF},
                    },
                },
            ),
        )
        wrote = True
    return wrote


def read(cluster: Client, name: str, namespace: str = api.SYSTEM_NAMESPACE) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cluster.request("GET", _path(namespace, name))
        return found
    except ApiError as e:
        if e.status == 404:
            return None
        raise e.to_acm(f"RootSync {namespace}/{name}") from e


def list_syncs(cluster: Client, namespace: str = api.SYSTEM_NAMESPACE) -> list[dict[str, Any]]:
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
    namespace: str = api.SYSTEM_NAMESPACE,
) -> int:
    """Record how the sync is configured (skipped when nothing changed); the RootSync's
    ``metadata.generation`` afterwards (0 when it cannot be told), which its status answers."""
    if existing is not None and existing.get("spec") == spec:
        return _generation(existing)
    call = writes.server_side_apply(
        _path(namespace, name),
        {
            "apiVersion": api.API_VERSION,
            "kind": "RootSync",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
    )
    try:
        answer = cluster.request(
            call.method, call.path, query=call.query, body=call.body, content_type=call.content_type
        )
    except ApiError as e:
        raise e.to_acm(f"RootSync {namespace}/{name}") from e
    return _generation(answer)


def _generation(obj: object) -> int:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    found = meta.get("generation") if isinstance(meta, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) and found > 0 else 0


def write_status(
    cluster: Client,
    name: str,
    status: SyncStatus,
    existing: dict[str, Any] | None,
    namespace: str = api.SYSTEM_NAMESPACE,
) -> bool:
    """Record the outcome; skipped (False) when it says nothing new, so a no-op sync writes nothing."""
    if existing is not None and SyncStatus.from_status(existing.get("status")).same_outcome(status):
        return False
    body = status.to_status()
    if "rendering" not in body and ((existing or {}).get("status") or {}).get("rendering"):
        body["rendering"] = None  # a merge patch leaves a key it does not name
    try:
        writes.send(cluster, writes.merge_patch(_path(namespace, name, status=True), {"status": body}))
    except ApiError as e:
        raise e.to_acm(f"RootSync {namespace}/{name} status") from e
    return True


def add_error(
    cluster: Client, name: str, problem: dict[str, Any], namespace: str = api.SYSTEM_NAMESPACE
) -> None:
    """Record an error found between passes (a fight) on the sync's status, once."""
    found = read(cluster, name, namespace)
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
    write_status(cluster, name, status, found, namespace)
