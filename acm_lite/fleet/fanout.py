"""Drive many clusters at once: one pipeline pass (or status read) per cluster, concurrently; a
cluster that cannot be reached or fails never holds up the others."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from acm_lite import api, declare, errors
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.errors import AcmError, Problem
from acm_lite.fleet import registry
from acm_lite.fleet.registry import FleetCluster
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncResult, SyncSpec
from acm_lite.status import store
from acm_lite.status.model import SyncStatus


@dataclass
class ClusterResult:
    """What the pass on one cluster of the fleet did, or the problem that stopped it."""

    cluster: FleetCluster
    result: SyncResult | None = None
    problem: Problem | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problem is None and self.result is not None and self.result.ok

    @property
    def problems(self) -> list[Problem]:
        return ([self.problem] if self.problem else []) + (self.result.problems if self.result else [])


def _secret_kubeconfig(ref: dict[str, str]) -> tuple[bytes, str]:
    """A kubeconfig kept in a Secret of the cluster acm-lite runs in (in-cluster mode), and the
    Secret's name for errors. It is read on every connect (credentials may have been rotated)
    and kept in memory only: no file of it is left behind."""
    home = Cluster.connect()
    namespace = ref.get("namespace") or api.system_namespace()
    try:
        secret = home.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
    except ApiError as e:
        raise e.to_acm(f"Secret {namespace}/{ref['name']}") from e
    data = (secret.get("data") or {}).get(ref.get("key") or "kubeconfig")
    if not data:
        raise AcmError(
            errors.KUBECONFIG_ERROR,
            f"Secret {namespace}/{ref['name']} has no key {ref.get('key', 'kubeconfig')}",
        )
    return base64.b64decode(data), f"Secret {namespace}/{ref['name']}"


def connect(member: FleetCluster) -> Cluster:
    if member.secret_ref:
        content, origin = _secret_kubeconfig(member.secret_ref)
        return Cluster.connect(None, member.context, name=member.name, content=content, origin=origin)
    return Cluster.connect(member.kubeconfig, member.context, name=member.name)


def spec_for(member: FleetCluster) -> SyncSpec:
    """The sync of one member, its fleet labels feeding cluster selectors: a Git repository, or
    the Helm chart or OCI image its ``sourceType`` names."""
    sync = member.sync
    common: dict[str, Any] = {
        "name": sync.name,
        "cluster_name": member.name,
        "cluster_labels": member.labels,
        "ignore_fields": sync.ignore_fields,
    }
    if sync.source_type == registry.HELM and sync.helm is not None:
        # a chart renders to plain manifests: read unstructured, as Config Sync does
        return SyncSpec(
            repo=sync.helm.display,
            source_format=declare.UNSTRUCTURED,
            source_type=registry.HELM,
            helm=sync.helm,
            **common,
        )
    if sync.source_type == registry.OCI and sync.oci is not None:
        return SyncSpec(
            repo=sync.oci.image,
            dir=sync.oci.dir,
            source_format=sync.source_format,
            source_type=registry.OCI,
            oci=sync.oci,
            **common,
        )
    return SyncSpec(
        repo=sync.repo or "",
        revision=sync.revision,
        dir=sync.dir,
        source_format=sync.source_format,
        **common,
    )


def _problem(member: FleetCluster, error: AcmError) -> Problem:
    return error.to_problem(message=f"{member.name}: {error.message}")


def sync_all(
    members: list[FleetCluster],
    options: SyncOptions,
    *,
    parallel: int = 4,
    overrides: Callable[[SyncSpec], SyncSpec] = lambda s: s,
) -> list[ClusterResult]:
    """One pass per cluster, ``parallel`` at a time; outcomes in fleet order."""

    def one(member: FleetCluster) -> ClusterResult:
        started = time.monotonic()
        try:
            spec = overrides(spec_for(member))
            if not spec.repo:
                raise AcmError(
                    errors.INVALID_FLEET,
                    "no repository to sync",
                    hint="set spec.sync.repo (or sourceType helm|oci with helm: or oci:) in the "
                    "fleet file, or pass --repo",
                )
            result = pipeline.run(spec, connect(member), options)
            return ClusterResult(member, result, seconds=time.monotonic() - started)
        except AcmError as e:
            return ClusterResult(member, problem=_problem(member, e), seconds=time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, members))


@dataclass
class ClusterState:
    """What ``fleet status`` shows for one cluster."""

    cluster: FleetCluster
    reachable: bool = False
    version: str = ""
    status: SyncStatus | None = None
    problem: Problem | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status = self.status
        errors_found = len(status.errors) if status else 0
        return {
            "name": self.cluster.name,
            "provider": self.cluster.provider,
            "labels": self.cluster.labels,
            "reachable": self.reachable,
            "version": self.version,
            "state": status.state.value if status else ("PENDING" if self.reachable else "ERROR"),
            "commit": status.commit if status else None,
            "lastSyncedCommit": status.synced_commit if status else None,
            "errors": errors_found + (1 if self.problem else 0),
            "managedObjects": status.managed if status else 0,
            # managed objects not Current (kstatus), as the daemon last recorded them
            "unhealthyObjects": _unhealthy(status),
            "lastUpdate": status.last_update if status else None,
            "message": self.problem.message if self.problem else "",
        }


def _unhealthy(status: SyncStatus | None) -> int:
    health = status.health if status is not None else None
    return sum(v for k, v in (health or {}).items() if k != "Current")


def states(members: list[FleetCluster], parallel: int = 8) -> list[ClusterState]:
    def one(member: FleetCluster) -> ClusterState:
        state = ClusterState(member)
        try:
            cluster = connect(member)
            state.version = str(cluster.request("GET", "/version").get("gitVersion", ""))
            state.reachable = True
            found = store.read(cluster, member.sync.name) if store.installed(cluster) else None
            if found is not None:
                state.status = SyncStatus.from_status(found.get("status"))
        except AcmError as e:
            state.problem = _problem(member, e)
        except ApiError as e:
            state.problem = _problem(member, e.to_acm())
        return state

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, members))
