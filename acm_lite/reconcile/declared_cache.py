"""Declared sets kept for reuse by the passes of this process: a commit already read (or rendered
with the same options) the same way is not read again (snapshots of a commit never change, and a
declared set is never mutated) unless dynamic NamespaceSelectors select from live Namespaces that
have changed since. A sync's declared set replaces the one of its earlier commit, so a daemon
holds one declared set per sync. I/O: reads the snapshot's files, and lists the cluster's
Namespaces when a dynamic selector needs them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from acm_lite import declare
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.parse import namespace_selection, reader
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.parse.namespace_selection import LiveNamespaces
from acm_lite.source.snapshot import Snapshot


@dataclass(frozen=True)
class _Rendered:
    """A declared set kept for reuse; with the live Namespaces it was made for, and the source
    read, when dynamic NamespaceSelectors made it depend on them."""

    result: declare.Declared
    live: LiveNamespaces | None = None
    loaded: reader.ReadResult | None = None


_DECLARED: OrderedDict[tuple[object, ...], _Rendered] = OrderedDict()
_DECLARED_LOCK = threading.Lock()
_DECLARED_KEEP = 8


def declared(
    snapshot: Snapshot,
    cluster: Cluster,
    *,
    source_format: str,
    cluster_name: str | None,
    cluster_labels: Mapping[str, str] | None,
    schema: bool,
    namespace: str | None,
    rendered: reader.ReadResult | None = None,
    render_options: Hashable = None,
) -> declare.Declared:
    """Parse and validate a snapshot for one cluster (``namespace``: a tenant sync's), or return
    the declared set kept from an earlier pass that did the same. ``rendered``: what the render
    stage made of the snapshot (read instead of its files), with the options it was made with."""
    labels = tuple(sorted((cluster_labels or {}).items()))
    key = (
        snapshot.repo,
        snapshot.commit,
        snapshot.dir,
        source_format,
        cluster_name,
        labels,
        schema,
        namespace,
        rendered is not None,
        render_options,
    )
    cached = None
    if snapshot.commit is not None:
        with _DECLARED_LOCK:
            cached = _DECLARED.get(key)
            if cached is not None:
                _DECLARED.move_to_end(key)
    if cached is not None and cached.live is None:
        return cached.result
    if cached is not None and cached.loaded is not None:
        loaded = cached.loaded
    elif rendered is not None:
        loaded = declare.from_render(rendered)
    else:
        loaded = declare.load(snapshot.root, source_format)
    selectable = live_namespaces(cluster) if declare.needs_live_namespaces(loaded, source_format) else None
    if cached is not None and cached.live == selectable:
        return cached.result
    result = declare.declare(
        loaded,
        ClusterTarget(cluster_name, cluster_labels),
        declare.Options(
            source_format=source_format, schema=schema, tenant_namespace=namespace, live_namespaces=selectable
        ),
    )
    if snapshot.commit is not None:
        with _DECLARED_LOCK:
            for older in [k for k in _DECLARED if _same_sync(k, key) and k != key]:
                del _DECLARED[older]  # an earlier commit of the same sync: not read again
            _DECLARED[key] = _Rendered(result, selectable, loaded if selectable is not None else None)
            while len(_DECLARED) > _DECLARED_KEEP:
                _DECLARED.popitem(last=False)
    return result


def _same_sync(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Whether two keys differ by at most the commit: the same sync's declared sets, of which only
    the latest is kept (each holds every declared object of its commit)."""
    return a[:1] == b[:1] and a[2:] == b[2:]


def live_namespaces(cluster: Cluster) -> LiveNamespaces:
    """The cluster's Namespaces and their labels, for dynamic NamespaceSelectors (one LIST)."""
    try:
        listed = cluster.request("GET", "/api/v1/namespaces")
    except ApiError as e:
        raise e.to_acm("Namespaces, listed for dynamic NamespaceSelectors") from e
    return namespace_selection.live(listed.get("items") or [])
