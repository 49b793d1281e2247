"""Kinds that may not be synced: KNV1043 (unsupported), KNV1032 (hierarchical-only kinds in an
unstructured repo) and KNV1050 (kinds of removed API groups)."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import GroupKind, Manifest

DEPRECATED = {
    GroupKind("extensions", "DaemonSet"): "apps/v1",
    GroupKind("extensions", "Deployment"): "apps/v1",
    GroupKind("extensions", "Ingress"): "networking.k8s.io/v1",
    GroupKind("extensions", "ReplicaSet"): "apps/v1",
    GroupKind("extensions", "NetworkPolicy"): "networking.k8s.io/v1",
    GroupKind("extensions", "PodSecurityPolicy"): "policy/v1beta1 (removed in 1.25)",
    GroupKind("extensions", "StatefulSet"): "apps/v1",
}


def check(obj: Manifest, *, hierarchical: bool) -> list[Problem]:
    gk = obj.group_kind
    if gk == kinds.SYNC:
        return [Problem.about(errors.UNSUPPORTED_OBJECT, "the Sync kind is not supported", obj)]
    if not hierarchical and gk in (kinds.REPO, kinds.HIERARCHY_CONFIG):
        return [
            Problem.about(
                errors.ILLEGAL_HIERARCHICAL_KIND,
                f"{gk.kind} may only be declared in a hierarchical repo",
                obj,
                hint="remove it, or use --source-format hierarchy",
            )
        ]
    if gk in DEPRECATED:
        return [
            Problem.about(
                errors.DEPRECATED_GROUP_KIND,
                f"{gk} is served by no current Kubernetes; use {DEPRECATED[gk]}",
                obj,
            )
        ]
    return []
