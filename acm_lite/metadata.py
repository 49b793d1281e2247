"""Every label and annotation key acm-lite reads or writes, and the readers of their values.

Three vocabularies: the annotations a source sets to steer Config Sync (selectors, management,
depends-on, lifecycle), the marks acm-lite puts on the objects it manages and on its own records,
and other tools' keys it honours (kpt's local-config, kubectl's last-applied configuration).
Readers here only read: a rule reporting a malformed value is a validation rule, not vocabulary.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from acm_lite import api
from acm_lite.objects import Manifest, ObjectId

# Config Sync's prefixes: reserved for the syncer, except the annotations a source sets on purpose.
CONFIG_SYNC_PREFIXES = ("configmanagement.gke.io/", "configsync.gke.io/")
NAMESPACE_SELECTOR_ANNOTATION = "configmanagement.gke.io/namespace-selector"
CLUSTER_SELECTOR_ANNOTATION = "configmanagement.gke.io/cluster-selector"
CLUSTER_NAME_SELECTOR_ANNOTATION = "configsync.gke.io/cluster-name-selector"
MANAGED = "configmanagement.gke.io/managed"  # "disabled": acm-lite leaves the object alone
DISABLED = "disabled"
MUTATION = "client.lifecycle.config.k8s.io/mutation"  # "ignore": created if missing, never changed
IGNORE_MUTATION = "ignore"
DELETION_PROPAGATION_POLICY = "configsync.gke.io/deletion-propagation-policy"
SOURCE_ANNOTATIONS = frozenset(
    {
        NAMESPACE_SELECTOR_ANNOTATION,
        CLUSTER_SELECTOR_ANNOTATION,
        CLUSTER_NAME_SELECTOR_ANNOTATION,
        MANAGED,
        MUTATION,
        DELETION_PROPAGATION_POLICY,
    }
)

# kpt's and cli-utils' keys.
DEPENDS_ON = "config.kubernetes.io/depends-on"
DELETION = "client.lifecycle.config.k8s.io/deletion"  # "detach": never delete on removal
DETACH = "detach"
LOCAL_CONFIG = "config.kubernetes.io/local-config"  # a file for tools, never applied

# kubectl apply keeps a copy of the whole object, values included, in this annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# acm-lite's marks on the objects it manages. Labels are selectable, so watches and lists can
# filter by them; the annotations record the source path, the commit last applied and a hash of
# the declared object.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "acm-lite"
SYNC_LABEL = f"{api.GROUP}/sync"
SOURCE_PATH = f"{api.GROUP}/source-path"
COMMIT = f"{api.GROUP}/commit"
DECLARED_HASH = f"{api.GROUP}/declared-hash"
MARK_LABELS = (MANAGED_BY_LABEL, SYNC_LABEL)
MARK_ANNOTATIONS = (SOURCE_PATH, COMMIT, DECLARED_HASH)

# acm-lite's own records: the parts of a sync's inventory, and what it installs (its namespace).
INVENTORY_SYNC_LABEL = f"{api.GROUP}/inventory"
INVENTORY_GENERATION_LABEL = f"{api.GROUP}/inventory-generation"
INVENTORY_PART_ANNOTATION = f"{api.GROUP}/inventory-part"
INVENTORY_PARTS_ANNOTATION = f"{api.GROUP}/inventory-parts"
RESOURCE_STATUS_SYNC_LABEL = f"{api.GROUP}/resource-status"  # the parts of a sync's health record
PART_OF_LABEL = "app.kubernetes.io/part-of"
PART_OF = "acm-lite"

# A fleet member's label naming where the cluster runs (shown by `fleet list` and `sync`).
PROVIDER_LABEL = "provider"


def is_disabled(obj: Manifest) -> bool:
    """Whether the source declares ``obj`` but asks that it not be managed."""
    return obj.annotations.get(MANAGED) == DISABLED


def ignores_mutation(obj: Manifest) -> bool:
    """Whether the source asks that ``obj`` be created when missing but never changed after:
    Config Sync's ``client.lifecycle.config.k8s.io/mutation: ignore``."""
    return obj.annotations.get(MUTATION) == IGNORE_MUTATION


def is_local_config(obj: Manifest) -> bool:
    """Whether ``obj`` is only for local tools: local-config set to anything but "false"."""
    local = obj.annotations.get(LOCAL_CONFIG)
    return local is not None and local != "false"


def cluster_name_selector(obj: Manifest) -> list[str]:
    """The non-empty entries of the object's cluster-name-selector."""
    value = obj.annotations.get(CLUSTER_NAME_SELECTOR_ANNOTATION)
    if not isinstance(value, str):
        return []
    return [n.strip() for n in value.split(",") if n.strip()]


def parse_reference(ref: str) -> ObjectId:
    """One depends-on entry → ObjectId; ValueError when malformed.

    The format is cli-utils': ``GROUP/namespaces/NAMESPACE/KIND/NAME`` for namespaced objects and
    ``GROUP/KIND/NAME`` for cluster-scoped ones (GROUP empty for the core group), comma-separated.
    """
    parts = ref.strip().split("/")
    if len(parts) == 5 and parts[1] == "namespaces":
        group, _, namespace, kind, name = parts
    elif len(parts) == 3:
        group, kind, name = parts
        namespace = ""
    else:
        raise ValueError(
            f"{ref.strip()!r} is neither GROUP/KIND/NAME nor GROUP/namespaces/NAMESPACE/KIND/NAME"
        )
    if not kind or not name or (len(parts) == 5 and not namespace):
        raise ValueError(f"{ref.strip()!r} has an empty kind, name or namespace")
    return ObjectId(group, kind, namespace, name)


def dependencies(obj: Manifest) -> list[ObjectId]:
    """The objects ``obj`` depends on; malformed entries are skipped (a validation rule reports
    them)."""
    out = []
    for ref in obj.annotations.get(DEPENDS_ON, "").split(","):
        if ref.strip():
            try:
                out.append(parse_reference(ref))
            except ValueError:
                continue
    return out


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
    """One annotation of a live object's body, as a string; None when absent."""
    value = ((live.get("metadata") or {}).get("annotations") or {}).get(key)
    return str(value) if value is not None else None
