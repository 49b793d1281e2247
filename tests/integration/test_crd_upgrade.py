"""An installation upgraded from an older acm-lite: its RootSync CRD, whose ``sourceType`` enum
refuses ``helm`` and ``oci``, is replaced by the current one on the next pass, in a real API
server of its own; a pass with nothing to change sends no write; an account that may not write
CRDs keeps the installed one (with a warning) rather than failing."""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite import api, errors
from acm_lite.apply import wait, writes
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import controlplane
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.source.helm import HelmSpec
from acm_lite.status import store
from tests.support import helmrepo
from tests.support.helmrepo import HelmRepository

ROOTSYNCS = "rootsyncs.acm-lite.io"
READS = ("GET", "LIST", "WATCH")


@pytest.fixture(scope="module")
def server(control_plane_binaries: dict[str, Path]) -> Iterator[APIServer]:
    """An API server of its own: the test replaces acm-lite's CRDs, which others rely on."""
    env = controlplane.start(
        ["crd-upgrade"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    yield env.clusters[0]
    controlplane.stop(env)


def counted(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every request ``cluster`` sends from now on that is not a read, as (method, path)."""
    sent: list[tuple[str, str]] = []
    request: Callable[..., Any] = cluster.request

    def recording(method: str, path: str, **kwargs: Any) -> Any:
        if method not in READS:
            sent.append((method, path))
        return request(method, path, **kwargs)

    monkeypatch.setattr(cluster, "request", recording)
    return sent


def old_rootsync_crd() -> dict[str, Any]:
    """The RootSync CRD as an acm-lite before Helm and OCI sources shipped it: Git only, no hash."""
    crd = copy.deepcopy(next(c for c in api.crds() if c["metadata"]["name"] == ROOTSYNCS))
    del crd["metadata"]["annotations"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec["sourceType"]["enum"] = ["git"]
    del spec["helm"], spec["oci"]
    return crd


def install_old(cluster: Cluster) -> None:
    writes.send(cluster, writes.server_side_apply(wait.CRD_PATH + ROOTSYNCS, old_rootsync_crd()))
    wait.crds_established(cluster, [ROOTSYNCS])
    live = cluster.request("GET", wait.CRD_PATH + ROOTSYNCS)
    schema = live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert schema["sourceType"]["enum"] == ["git"]


def enum_of(cluster: Cluster) -> list[str]:
    live = cluster.request("GET", wait.CRD_PATH + ROOTSYNCS)
    return live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "sourceType"
    ]["enum"]


def test_an_old_rootsync_crd_is_replaced_and_a_helm_sync_runs(
    server: APIServer,
    helm_binary: Path,
    helm_repository: HelmRepository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = Cluster.connect(server.kubeconfig)
    store.install(cluster)
    install_old(cluster)
    name = f"helm-{uuid.uuid4().hex[:8]}"
    helm_rootsync = {
        "apiVersion": api.API_VERSION,
        "kind": "RootSync",
        "metadata": {"name": name, "namespace": api.SYSTEM_NAMESPACE},
        "spec": {"sourceType": "helm", "sourceFormat": "unstructured"},
    }
    with pytest.raises(ApiError) as refused:  # what an upgraded installation ran into
        writes.send(cluster, writes.server_side_apply(store._path(api.SYSTEM_NAMESPACE, name), helm_rootsync))
    assert refused.value.status == 422 and "sourceType" in refused.value.message

    sent = counted(cluster, monkeypatch)
    assert store.install(cluster) is True
    assert sent == [("PATCH", wait.CRD_PATH + ROOTSYNCS)]  # the outdated CRD only
    assert enum_of(cluster) == ["git", "helm", "oci"]
    live = cluster.request("GET", wait.CRD_PATH + ROOTSYNCS)
    current = next(api.crd_hash(c) for c in api.crds() if c["metadata"]["name"] == ROOTSYNCS)
    assert live["metadata"]["annotations"][api.CRD_HASH_ANNOTATION] == current

    sent.clear()
    assert store.install(cluster) is False
    assert sent == []  # nothing changed: no write

    templates = {
        "configmap.yaml": helmrepo.CONFIGMAP,
        "namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Values.namespace }}\n",
    }
    chart = helmrepo.make_chart(tmp_path / "charts", "web", "1.0.0", templates)
    helmrepo.package(helm_binary, chart, helm_repository.directory)
    helmrepo.index(helm_binary, helm_repository.directory)
    source = HelmSpec(repo=helm_repository.url, chart="web", values=f"namespace: {name}\n")
    spec = SyncSpec(
        repo=source.display, name=name, source_format="unstructured", source_type="helm", helm=source
    )
    options = SyncOptions(git_cache=tmp_path / "cache")
    synced = pipeline.run(spec, cluster, options)
    assert synced.ok, [p.render() for p in synced.problems]
    recorded = store.read(cluster, name)
    assert recorded is not None and recorded["spec"]["sourceType"] == "helm"
    assert recorded["spec"]["helm"]["chart"] == "web"
    assert recorded["status"]["lastSyncedCommit"].startswith("1.0.0@sha256:")

    sent.clear()
    again = pipeline.run(spec, cluster, options)
    assert again.ok and again.applied == 0
    assert sent == []  # an unchanged pass: not the CRDs, the spec, the inventory nor the status


def test_without_permission_to_write_crds_the_installed_one_is_used_with_a_warning(
    server: APIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    admin = Cluster.connect(server.kubeconfig)
    store.install(admin)
    install_old(admin)
    limited = Cluster.connect(_account_without_crd_writes(admin, server, tmp_path))
    with caplog.at_level(logging.WARNING, logger="acm_lite.install"):
        assert store.install(limited) is False
    assert enum_of(admin) == ["git"]  # kept, not replaced
    warned = [r.getMessage() for r in caplog.records if r.name == "acm_lite.install"]
    assert len(warned) == 1 and ROOTSYNCS in warned[0] and "403" in warned[0]

    admin.request("DELETE", wait.CRD_PATH + ROOTSYNCS)
    _gone(admin)
    with pytest.raises(errors.AcmError) as failed:  # nothing installed to fall back on
        store.install(limited)
    assert failed.value.code is errors.INSUFFICIENT_PERMISSION
    assert ROOTSYNCS in failed.value.render()
    assert store.install(admin) is True and enum_of(admin) == ["git", "helm", "oci"]


def _gone(cluster: Cluster) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            cluster.request("GET", wait.CRD_PATH + ROOTSYNCS)
        except ApiError as e:
            if e.status == 404:
                return
        time.sleep(0.2)
    raise AssertionError("the CRD was not deleted")


def _account_without_crd_writes(admin: Cluster, server: APIServer, tmp_path: Path) -> str:
    """A kubeconfig for a ServiceAccount that may read CRDs and the system namespace, not write CRDs."""
    sa = f"reader-{uuid.uuid4().hex[:6]}"
    namespace = api.SYSTEM_NAMESPACE
    admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}},
    )
    admin.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": sa},
            "rules": [
                {
                    "apiGroups": ["apiextensions.k8s.io"],
                    "resources": ["customresourcedefinitions"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            ],
        },
    )
    admin.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": sa},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        },
    )
    token = admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )["status"]["token"]
    path = tmp_path / f"{sa}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": server.url, "certificate-authority": server.file("ca.crt")},
                    }
                ],
                "users": [{"name": sa, "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": sa}}],
                "current-context": "c",
            }
        )
    )
    return str(path)
