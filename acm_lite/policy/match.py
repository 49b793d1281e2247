"""Gatekeeper's ``spec.match``: every given matcher must pass. No I/O.

Kinds (``*`` wildcards), scope, namespaces and excludedNamespaces (globs with a leading and/or
trailing ``*``), labelSelector, namespaceSelector (against the Namespace object), name (glob), and
source (All, Original, Generated) for expanded objects.
"""

from __future__ import annotations

from typing import Any

from acm_lite.parse import selectors


class MatchError(ValueError):
    """A match that cannot be decided (a malformed selector, a missing Namespace)."""


def glob(pattern: str, candidate: str) -> bool:
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
        return pattern.strip("*") in candidate
    if pattern.startswith("*"):
        return candidate.endswith(pattern[1:])
    if pattern.endswith("*"):
        return candidate.startswith(pattern[:-1])
    return pattern == candidate


def _is_namespace(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1"


def _group(obj: dict[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def _kinds(match: dict[str, Any], obj: dict[str, Any]) -> bool:
    entries = match.get("kinds") or []
    if not entries:
        return True
    kind, group = obj.get("kind"), _group(obj)
    for entry in entries:
        kinds, groups = entry.get("kinds") or [], entry.get("apiGroups") or []
        if (not kinds or "*" in kinds or kind in kinds) and (not groups or "*" in groups or group in groups):
            return True
    return False


def _namespace_of(obj: dict[str, Any]) -> str | None:
    if _is_namespace(obj):
        return str((obj.get("metadata") or {}).get("name", ""))
    return (obj.get("metadata") or {}).get("namespace") or None


def _scope(match: dict[str, Any], obj: dict[str, Any]) -> bool:
    scope = match.get("scope") or "*"
    namespaced = bool((obj.get("metadata") or {}).get("namespace"))
    if scope == "Cluster":
        return _is_namespace(obj) or not namespaced
    if scope == "Namespaced":
        return not _is_namespace(obj) and namespaced
    return True


def _namespaces(match: dict[str, Any], obj: dict[str, Any]) -> bool:
    namespace = _namespace_of(obj)
    wanted = match.get("namespaces") or []
    excluded = match.get("excludedNamespaces") or []
    if namespace is None:
        return True  # an object with no namespace cannot be excluded by namespace
    if wanted and not any(glob(str(p), namespace) for p in wanted):
        return False
    return not any(glob(str(p), namespace) for p in excluded)


def _selector(spec: Any, labels: dict[str, str]) -> bool:
    try:
        return selectors.parse(spec).matches(labels)
    except selectors.SelectorError as e:
        raise MatchError(str(e)) from e


def matches(
    match: dict[str, Any], obj: dict[str, Any], namespace: dict[str, Any] | None, source: str = "Original"
) -> bool:
    """Does ``obj`` (with its Namespace object, when namespaced) fall under ``match``?"""
    if not (_kinds(match, obj) and _scope(match, obj) and _namespaces(match, obj)):
        return False
    meta = obj.get("metadata") or {}
    if match.get("labelSelector") is not None and not _selector(
        match["labelSelector"], meta.get("labels") or {}
    ):
        return False
    if match.get("namespaceSelector") is not None:
        if _is_namespace(obj):
            ns_labels = meta.get("labels") or {}
        elif meta.get("namespace"):
            if namespace is None:
                raise MatchError(
                    f"namespaceSelector needs Namespace {meta['namespace']!r}, which "
                    "is neither declared nor on the cluster"
                )
            ns_labels = (namespace.get("metadata") or {}).get("labels") or {}
        else:
            ns_labels = None
        if ns_labels is not None and not _selector(match["namespaceSelector"], ns_labels):
            return False
    name = match.get("name")
    if name and not glob(str(name), str(meta.get("name", ""))):
        return False
    wanted_source = match.get("source") or "All"  # Gatekeeper's default
    return wanted_source in ("All", source)
