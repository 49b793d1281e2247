"""Objects a sync never deletes, whatever its source says: the cluster's own namespaces
(``default`` and ``kube-*``), acm-lite's namespaces, which hold every sync's status and inventory,
and acm-lite's own kinds. Once adopted and then removed from the source they are unmanaged
(acm-lite's marks stripped), as Config Sync abandons its special namespaces. No I/O."""

from __future__ import annotations

from acm_lite import api, kinds
from acm_lite.objects import ObjectId

CLUSTER_NAMESPACES = frozenset({"default"})
CLUSTER_PREFIX = "kube-"  # kube-system, kube-public, kube-node-lease and any future one


def protected_namespace(name: str) -> bool:
    """Deleting this namespace breaks the cluster or acm-lite itself."""
    return name in CLUSTER_NAMESPACES or name.startswith(CLUSTER_PREFIX) or name in api.own_namespaces()


def never_delete(oid: ObjectId) -> bool:
    """True for an object a prune must leave on the cluster (it is unmanaged instead)."""
    if oid.group == api.GROUP:
        return oid.kind != api.REPO_SYNC  # a RepoSync a repository declared goes when it leaves

    return oid.group_kind == kinds.NAMESPACE and protected_namespace(oid.name)
