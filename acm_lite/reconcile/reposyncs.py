"""The rights a RepoSync runs under: a ServiceAccount in its namespace, named after its reconciler
(``ns-reconciler-<namespace>``...), which every request about the sync's objects impersonates,
and for each ``spec.override.roleRefs`` entry a RoleBinding in that namespace binding the Role or
ClusterRole to it. Both are labelled with the sync and owned by the RepoSync (when it exists in
the cluster), and deleted once the RepoSync is gone. Without roleRefs nothing is bound: as with
Config Sync, whoever sets the RepoSync up binds rights to the ServiceAccount. Cluster I/O, with
acm-lite's own rights (which need ``bind`` to bind roles it does not hold itself)."""

from __future__ import annotations

import hashlib
from typing import Any

from acm_lite import api, errors, metadata
from acm_lite.apply import writes
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError
from acm_lite.reconcile.model import RoleRef, SyncSpec

RECONCILER_LABEL = f"{api.GROUP}/reconciler"  # the sync name on its ServiceAccount and RoleBindings
SYNC_KIND_LABEL = "configsync.gke.io/sync-kind"  # Config Sync's labels, so its habits carry over
SYNC_NAME_LABEL = "configsync.gke.io/sync-name"
SYNC_NAMESPACE_LABEL = "configsync.gke.io/sync-namespace"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
MAX_NAME = 253


def binding_name(reconciler: str, ref: RoleRef) -> str:
    """The RoleBinding of one roleRef: ``<reconciler>:<role|clusterrole>:<name>``, or with a
    hash of the role's name when that would be too long for a name."""
    name = f"{reconciler}:{ref.kind.lower()}:{ref.name}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(f"{ref.kind}/{ref.name}".encode()).hexdigest()[:16]
    return f"{reconciler}:{ref.kind.lower()}:{digest}"


def _labels(spec: SyncSpec) -> dict[str, str]:
    name, namespace = spec.object_key
    return {
        RECONCILER_LABEL: spec.name,
        SYNC_KIND_LABEL: api.REPO_SYNC,
        SYNC_NAME_LABEL: name,
        SYNC_NAMESPACE_LABEL: str(namespace),
        metadata.PART_OF_LABEL: metadata.PART_OF,
    }


def _owner(owner: dict[str, Any] | None) -> list[dict[str, Any]]:
    """An ownerReference to the RepoSync object, so the garbage collector removes what is left
    once it is deleted (acm-lite deletes them itself too)."""
    meta = owner.get("metadata") if isinstance(owner, dict) else None
    uid = meta.get("uid") if isinstance(meta, dict) else None
    if not isinstance(uid, str) or not uid:
        return []
    return [
        {
            "apiVersion": str(owner.get("apiVersion") or api.API_VERSION) if owner else api.API_VERSION,
            "kind": api.REPO_SYNC,
            "name": str(meta.get("name")) if meta else "",
            "uid": uid,
        }
    ]


def _failed(subject: str, what: str, error: ApiError | AcmError) -> AcmError:
    cause = error.to_acm() if isinstance(error, ApiError) else error
    return AcmError(
        errors.REPO_SYNC_RBAC_FAILED,
        f"{subject} could not be {what}: {cause.code}: {cause.message}",
        hint="acm-lite needs serviceaccounts, rolebindings and bind on the roles named "
        "(the chart's rbac.create grants them); the daemon retries",
    )


def ensure(cluster: Client, spec: SyncSpec, owner: dict[str, Any] | None) -> None:
    """Create or update the ServiceAccount of the RepoSync ``spec`` and the RoleBindings of its
    roleRefs (server-side apply), and delete its RoleBindings no roleRef names any more. A
    refusal is ``ACM2080`` naming the object."""
    namespace = spec.namespace
    if not spec.repo_sync or not namespace:
        return
    labels, owners = _labels(spec), _owner(owner)
    meta: dict[str, Any] = {"name": spec.name, "namespace": namespace, "labels": labels}
    if owners:
        meta["ownerReferences"] = owners
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{spec.name}"
    try:
        writes.send(
            cluster,
            writes.server_side_apply(path, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}),
        )
    except (ApiError, AcmError) as e:
        raise _failed(f"ServiceAccount {namespace}/{spec.name}", "applied", e) from None
    wanted: dict[str, dict[str, Any]] = {}
    for ref in spec.role_refs:
        name = binding_name(spec.name, ref)
        wanted[name] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {**meta, "name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref.kind, "name": ref.name},
            "subjects": [{"kind": "ServiceAccount", "name": spec.name, "namespace": namespace}],
        }
    for name, body in wanted.items():
        try:
            writes.send(
                cluster,
                writes.server_side_apply(f"{RBAC}/namespaces/{namespace}/rolebindings/{name}", body),
            )
        except (ApiError, AcmError) as e:
            raise _failed(f"RoleBinding {namespace}/{name}", "applied", e) from None
    for name in set(_bindings(cluster, namespace, spec.name)) - set(wanted):
        _delete(
            cluster, f"{RBAC}/namespaces/{namespace}/rolebindings/{name}", f"RoleBinding {namespace}/{name}"
        )


def _bindings(cluster: Client, namespace: str, reconciler: str) -> list[str]:
    """The names of the RoleBindings acm-lite made for ``reconciler`` in ``namespace``."""
    try:
        listed = cluster.request(
            "GET",
            f"{RBAC}/namespaces/{namespace}/rolebindings",
            query={"labelSelector": f"{RECONCILER_LABEL}={reconciler}", "limit": 500},
        )
    except (ApiError, AcmError) as e:
        raise _failed(f"the RoleBindings in {namespace}", "listed", e) from None
    items = listed.get("items") if isinstance(listed, dict) else None
    names = []
    for item in items if isinstance(items, list) else []:
        meta = item.get("metadata") if isinstance(item, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            names.append(meta["name"])
    return names


def _delete(cluster: Client, path: str, subject: str) -> None:
    try:
        writes.send(cluster, writes.delete(path))
    except ApiError as e:
        if e.status != 404:
            raise _failed(subject, "deleted", e) from None
    except AcmError as e:
        raise _failed(subject, "deleted", e) from None


def remove(cluster: Client, namespace: str, reconciler: str) -> None:
    """Delete the RoleBindings and the ServiceAccount acm-lite made for a RepoSync that is gone
    (a ServiceAccount of that name it did not make is left alone)."""
    for name in _bindings(cluster, namespace, reconciler):
        _delete(
            cluster, f"{RBAC}/namespaces/{namespace}/rolebindings/{name}", f"RoleBinding {namespace}/{name}"
        )
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{reconciler}"
    try:
        found = cluster.request("GET", path)
    except ApiError as e:
        if e.status == 404:
            return
        raise _failed(f"ServiceAccount {namespace}/{reconciler}", "read", e) from None
    except AcmError as e:
        raise _failed(f"ServiceAccount {namespace}/{reconciler}", "read", e) from None
    labels = (found.get("metadata") or {}).get("labels") if isinstance(found, dict) else None
    if isinstance(labels, dict) and labels.get(RECONCILER_LABEL) == reconciler:
        _delete(cluster, path, f"ServiceAccount {namespace}/{reconciler}")
