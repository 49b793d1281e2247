"""Config Sync's remaining ``spec.helm`` fields against a real API server, the real helm and a
Helm repository on loopback: ``valuesFileRefs`` read from ConfigMaps by the daemon at each poll
(a replaced ConfigMap is rendered at the next one), ``deployNamespace`` moving the chart's
objects, and ``auth: token`` with a ``secretRef``. A missing ConfigMap or Secret is KNV1061
naming it, and nothing is applied."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

from acm_lite import api, errors
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.source.helm import HelmSpec, ValuesFileRef
from acm_lite.status import store
from tests.support import helmrepo
from tests.support.helmrepo import HelmRepository
from tests.support.kube import get

NS = api.SYSTEM_NAMESPACE
SPREAD = {
    "objects.yaml": """apiVersion: v1
kind: Namespace
metadata:
  name: chart-own-namespace
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
data:
  greeting: {{ .Values.greeting | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: release
  namespace: {{ .Release.Namespace }}
data:
  namespace: {{ .Release.Namespace | quote }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: elsewhere
  namespace: kube-public
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Values.binding }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: elsewhere
  namespace: kube-public
""",
}


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    connected = Cluster.connect(control_plane.kubeconfig)
    store.install(connected)
    return connected


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("USERNAME", "PASSWORD", "PASSWORD_FILE", "TOKEN", "TOKEN_FILE"):
        monkeypatch.delenv(f"ACM_LITE_HELM_{var}", raising=False)
    monkeypatch.setenv("ACM_LITE_SOURCE_ALLOW_HTTP", "1")


def unique() -> str:
    return uuid.uuid4().hex[:8]


def publish(
    helm: Path, repo: HelmRepository, tmp_path: Path, chart: str, templates: dict[str, str] | None
) -> None:
    helmrepo.package(
        helm, helmrepo.make_chart(tmp_path / "charts", chart, "1.0.0", templates), repo.directory
    )
    helmrepo.index(helm, repo.directory)


def put(cluster: Cluster, kind: str, name: str, body: dict[str, Any]) -> None:
    """Create (or replace, by deleting first: the ConfigMaps are immutable) an object in the
    RootSyncs' namespace."""
    path = f"/api/v1/namespaces/{NS}/{kind}"
    try:
        cluster.request("DELETE", f"{path}/{name}")
    except ApiError as e:
        assert e.status == 404
    cluster.request("POST", path, body={"metadata": {"name": name, "namespace": NS}, **body})


def values(cluster: Cluster, name: str, key: str, text: str) -> None:
    put(cluster, "configmaps", name, {"immutable": True, "data": {key: text}})


def chart_spec(repo: str, chart: str, name: str, **fields: Any) -> SyncSpec:
    source = HelmSpec(repo=repo, chart=chart, version="1.0.0", **fields)
    return SyncSpec(
        repo=source.display, name=name, source_format="unstructured", source_type="helm", helm=source
    )


def data(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    found = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    return None if found is None else found.get("data", {})


def helm_runs(runs: list[list[str]]) -> int:
    return sum(1 for argv in runs if "template" in argv)


def test_values_file_refs_are_read_by_the_daemon_and_a_replaced_configmap_is_rendered_next_poll(
    helm_binary: Path,
    helm_repository: HelmRepository,
    cluster: Cluster,
    *,
    namespace: str,
    tmp_path: Path,
    runs: list[list[str]],
) -> None:
    chart, name, base, over = f"refs{unique()}", f"helm-{unique()}", f"base-{unique()}", f"over-{unique()}"
    publish(helm_binary, helm_repository, tmp_path, chart, None)
    values(cluster, base, "values.yaml", f"namespace: {namespace}\ngreeting: from-base\n")
    values(cluster, over, "prod.yaml", "greeting: from-over\n")
    spec = chart_spec(
        helm_repository.url,
        chart,
        name,
        values_file_refs=(ValuesFileRef(base), ValuesFileRef(over, "prod.yaml")),
    )
    daemon = Daemon(
        [(spec, lambda: cluster)], SyncOptions(git_cache=tmp_path / "cache"), DaemonOptions(period=60)
    )
    worker = daemon.workers[0]

    worker.tick()
    assert worker.failures == 0 and worker.passes == 1
    assert data(cluster, namespace, "release-name-settings") == {"version": "1.0.0", "greeting": "from-over"}
    first = worker.synced_commit
    rendered = helm_runs(runs)

    worker.tick()  # nothing changed: no render, no pass
    assert worker.passes == 1 and helm_runs(runs) == rendered

    values(cluster, over, "prod.yaml", "greeting: replaced\n")
    worker.tick()
    assert worker.failures == 0 and worker.passes == 2 and helm_runs(runs) == rendered + 1
    assert worker.synced_commit != first and str(worker.synced_commit).startswith("1.0.0@sha256:")
    assert data(cluster, namespace, "release-name-settings") == {"version": "1.0.0", "greeting": "replaced"}

    # inline values win over every valuesFileRef, as in Config Sync
    inline = chart_spec(
        helm_repository.url,
        chart,
        name,
        values="greeting: inline\n",
        values_file_refs=(ValuesFileRef(base), ValuesFileRef(over, "prod.yaml")),
    )
    result = pipeline.run(inline, cluster, SyncOptions(git_cache=tmp_path / "cache"))
    assert result.ok, [p.render() for p in result.problems]
    assert data(cluster, namespace, "release-name-settings") == {"version": "1.0.0", "greeting": "inline"}


@pytest.mark.parametrize("missing", ["configmap", "key", "mutable"])
def test_a_missing_or_unusable_values_configmap_is_knv1061_and_nothing_is_applied(
    helm_binary: Path,
    helm_repository: HelmRepository,
    cluster: Cluster,
    *,
    namespace: str,
    tmp_path: Path,
    missing: str,
) -> None:
    chart, name, ref = f"refs{unique()}", f"helm-{unique()}", f"vals-{unique()}"
    publish(helm_binary, helm_repository, tmp_path, chart, None)
    if missing == "key":
        values(cluster, ref, "other.yaml", f"namespace: {namespace}\n")
    elif missing == "mutable":
        put(cluster, "configmaps", ref, {"data": {"values.yaml": f"namespace: {namespace}\n"}})
    spec = chart_spec(helm_repository.url, chart, name, values_file_refs=(ValuesFileRef(ref),))
    result = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
    assert [p.code for p in result.problems] == [errors.INVALID_SYNC]
    assert result.status.stage == "source" and not result.results
    assert ref in result.problems[0].message
    assert data(cluster, namespace, "release-name-settings") is None
    status = (store.read(cluster, name) or {}).get("status") or {}
    assert errors.INVALID_SYNC.id in str(status)


def test_deploy_namespace_moves_the_charts_namespaced_objects(
    helm_binary: Path, helm_repository: HelmRepository, cluster: Cluster, tmp_path: Path
) -> None:
    chart, name, target, binding = (
        f"spread{unique()}",
        f"helm-{unique()}",
        f"deploy-{unique()}",
        f"b-{unique()}",
    )
    publish(helm_binary, helm_repository, tmp_path, chart, SPREAD)
    spec = chart_spec(
        helm_repository.url,
        chart,
        name,
        deploy_namespace=target,
        values=f"greeting: hi\nbinding: {binding}\n",
    )
    result = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
    assert result.ok, [p.render() for p in result.problems]
    assert get(cluster, f"/api/v1/namespaces/{target}") is not None  # the chart's Namespace, renamed
    assert get(cluster, "/api/v1/namespaces/chart-own-namespace") is None
    assert data(cluster, target, "plain") == {"greeting": "hi"}
    assert data(cluster, target, "release") == {"namespace": "default"}  # released into default
    assert get(cluster, f"/api/v1/namespaces/{target}/serviceaccounts/elsewhere") is not None
    assert get(cluster, "/api/v1/namespaces/kube-public/serviceaccounts/elsewhere") is None
    crb = get(cluster, f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{binding}")
    assert crb is not None and crb["subjects"][0]["namespace"] == target
    written = (store.read(cluster, name) or {})["spec"]["helm"]
    assert written["deployNamespace"] == target and "namespace" not in written


def test_auth_token_takes_the_secret_named_by_secret_ref(
    helm_binary: Path, cluster: Cluster, *, namespace: str, tmp_path: Path
) -> None:
    served = tmp_path / "private"
    served.mkdir()
    password = f"pw-{unique()}"
    repo = HelmRepository(served, credentials=("robot", password))
    try:
        chart, name, secret = f"priv{unique()}", f"helm-{unique()}", f"creds-{unique()}"
        publish(helm_binary, repo, tmp_path, chart, None)
        spec = chart_spec(
            repo.url, chart, name, values=f"namespace: {namespace}\n", auth="token", secret_ref=secret
        )
        gone = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
        assert [p.code for p in gone.problems] == [errors.INVALID_SYNC]
        assert secret in gone.problems[0].message and not gone.results

        def secret_with(pw: str) -> None:
            encoded = {
                k: base64.b64encode(v.encode()).decode() for k, v in (("username", "robot"), ("password", pw))
            }
            put(cluster, "secrets", secret, {"data": encoded})

        secret_with("wrong-password-value")
        wrong = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
        assert [p.code for p in wrong.problems] == [errors.SOURCE_AUTH_FAILED]
        assert "wrong-password-value" not in wrong.problems[0].render()

        secret_with(password)
        synced = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
        assert synced.ok, [p.render() for p in synced.problems]
        assert data(cluster, namespace, "release-name-settings") == {"version": "1.0.0", "greeting": "hello"}
        assert password not in str(store.read(cluster, name))
    finally:
        repo.close()
