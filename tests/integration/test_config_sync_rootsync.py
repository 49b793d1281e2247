"""A Config Sync RootSync manifest, as Config Sync's docs show one (git with auth token and a
secretRef), served unchanged by `acm-lite serve --config` against a real API server: the token
comes from the Secret in acm-lite-system, the sync's own period is honoured, and the status has
Config Sync's shape. `acm-lite migrate` of the same file gives an acm-lite RootSync that the
CRD accepts by server-side apply."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from acm_lite import api
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import store
from tests.support import gitserver
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns

TOKEN = "tok-5c1e9a7f3b"


def _config_sync_rootsync(name: str, url: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "configsync.gke.io/v1beta1",
        "kind": "RootSync",
        "metadata": {"name": name, "namespace": "config-management-system"},
        "spec": {
            "sourceType": "git",
            "sourceFormat": "unstructured",
            "git": {
                "repo": url,
                "branch": "main",
                "dir": "config",
                "period": "2s",
                "auth": "token",
                "secretRef": {"name": secret},
            },
            "override": {"reconcileTimeout": "2m"},
        },
    }


def _secret(cluster: Cluster, name: str, data: dict[str, str]) -> None:
    try:
        cluster.request("POST", "/api/v1/namespaces", body={"metadata": {"name": api.SYSTEM_NAMESPACE}})
    except ApiError as e:
        assert e.status == 409
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}/secrets",
        body={
            "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        },
    )


def test_serve_config_syncs_a_config_sync_rootsync_with_its_secret(
    control_plane: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    name, namespace, secret = f"cs-{suffix}", f"cs-{suffix}", f"git-creds-{suffix}"
    repo = GitRepo(tmp_path / "git")
    first = repo.commit({"config/ns.yaml": ns(namespace), "config/a.yaml": cm("a", namespace)})
    cluster = Cluster.connect(control_plane.kubeconfig)
    _secret(cluster, secret, {"username": "alice", "token": TOKEN})
    env = {**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache"), "ACM_LITE_GIT_ALLOW_HTTP": "1"}
    for var in ("ACM_LITE_GIT_TOKEN", "ACM_LITE_GIT_USERNAME"):
        env.pop(var, None)  # the token can only come from the Secret
    with gitserver.serve(repo.bare.parent, credentials=("alice", TOKEN)) as server:
        host, port = server.server_address[:2]
        url = f"http://{host!s}:{port}/{repo.bare.name}"
        config = tmp_path / "root-sync.yaml"
        config.write_text(yaml.safe_dump(_config_sync_rootsync(name, url, secret)))
        log = tmp_path / "serve.log"
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "serve",
                "--config",
                str(config),
                "--kubeconfig",
                control_plane.kubeconfig,
                "--period",
                "600",  # the daemon's own period: only the RootSync's 2s brings the second commit
                "--metrics-address",
                "off",
            ],
            env=env,
            stderr=log.open("w"),
            text=True,
        )
        try:
            path = f"/api/v1/namespaces/{namespace}/configmaps"
            eventually(lambda: get(cluster, f"{path}/a") is not None, 90)
            second = repo.commit({"config/b.yaml": cm("b", namespace)})
            eventually(lambda: get(cluster, f"{path}/b") is not None, 60)

            def synced() -> bool:
                status = ((store.read(cluster, name) or {}).get("status")) or {}
                return status.get("lastSyncedCommit") == second

            eventually(synced, 30)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
    assert first != second
    status = (store.read(cluster, name) or {})["status"]
    empty = {"totalCount": 0, "truncated": False, "errorCountAfterTruncation": 0}
    for part in ("source", "sync"):
        assert status[part]["commit"] == second
        assert (status[part]["errors"], status[part]["errorSummary"]) == ([], empty)
    assert TOKEN not in log.read_text()
    assert TOKEN not in yaml.safe_dump(store.read(cluster, name))

    # the same file through acm-lite migrate, server-side applied: the CRD keeps every field
    migrated = subprocess.run(
        [sys.executable, "-m", "acm_lite", "migrate", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    [doc] = list(yaml.safe_load_all(migrated.stdout))
    doc["metadata"]["name"] = f"migrated-{suffix}"  # beside the one serve --config recorded
    applied = cluster.request(
        "PATCH",
        f"/apis/{api.API_VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/rootsyncs/migrated-{suffix}",
        query={"fieldManager": "migrate-test", "force": "true"},
        body=doc,
        content_type="application/apply-patch+yaml",
    )
    assert applied["spec"] == doc["spec"]
    assert applied["spec"]["git"] == {
        "repo": url,
        "revision": "main",
        "dir": "config",
        "auth": "token",
        "secretRef": {"name": secret},
        "period": "2s",
    }


def test_a_wrong_token_in_the_secret_fails_the_fetch_and_is_never_shown(
    control_plane: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    name, secret = f"cs-{suffix}", f"git-creds-{suffix}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"config/a.yaml": cm("a", "default")})
    cluster = Cluster.connect(control_plane.kubeconfig)
    wrong = "wrong-8d2f6b"
    _secret(cluster, secret, {"username": "alice", "token": wrong})
    env = {**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache"), "ACM_LITE_GIT_ALLOW_HTTP": "1"}
    with gitserver.serve(repo.bare.parent, credentials=("alice", TOKEN)) as server:
        host, port = server.server_address[:2]
        config = tmp_path / "root-sync.yaml"
        url = f"http://{host!s}:{port}/{repo.bare.name}"
        config.write_text(yaml.safe_dump(_config_sync_rootsync(name, url, secret)))
        log = tmp_path / "serve.log"
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "serve",
                "--config",
                str(config),
                "--kubeconfig",
                control_plane.kubeconfig,
                "--metrics-address",
                "off",
            ],
            env=env,
            stderr=log.open("w"),
            text=True,
        )
        try:
            eventually(lambda: '"message": "pass failed"' in log.read_text(), 60)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
    text = log.read_text()
    assert "ACM1103 SourceAuthFailed" in text and wrong not in text
    assert get(cluster, "/api/v1/namespaces/default/configmaps/a") is None


def _config_sync_crd(cluster: Cluster, kind: str = "RootSync") -> None:
    """Config Sync's RootSync (or RepoSync) kind, as its CRD serves it (schema left open: the
    objects are Config Sync's own, and migrate must read whatever they hold)."""
    plural = f"{kind.lower()}s"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.configsync.gke.io"},
        "spec": {
            "group": "configsync.gke.io",
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    cluster.request(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.configsync.gke.io",
        query={"fieldManager": "migrate-test", "force": "true"},
        body=crd,
        content_type="application/apply-patch+yaml",
    )

    def established() -> bool:
        found = get(
            cluster, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.configsync.gke.io"
        )
        conditions = ((found or {}).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    eventually(established, 30)


def test_migrate_from_cluster_reads_config_syncs_rootsyncs(control_plane: APIServer, tmp_path: Path) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    _config_sync_crd(cluster)
    suffix = uuid.uuid4().hex[:6]
    try:
        cluster.request("POST", "/api/v1/namespaces", body={"metadata": {"name": "config-management-system"}})
    except ApiError as e:
        assert e.status == 409
    doc = _config_sync_rootsync(f"cs-{suffix}", "https://git.example.com/c.git", "git-creds")
    doc["spec"]["override"]["logLevels"] = [{"containerName": "reconciler", "logLevel": 5}]
    eventually(lambda: _created(cluster, doc), 30)
    out = tmp_path / "rootsyncs.yaml"
    migrate = [sys.executable, "-m", "acm_lite", "migrate", "--from-cluster", "--kubeconfig"]
    run = subprocess.run(
        [*migrate, control_plane.kubeconfig, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "ACM1109" in run.stderr and "spec.override.logLevels" in run.stderr
    mine = [d for d in yaml.safe_load_all(out.read_text()) if d["metadata"]["name"] == f"cs-{suffix}"]
    assert [d["spec"]["git"]["revision"] for d in mine] == ["main"]
    assert mine[0]["metadata"]["namespace"] == api.SYSTEM_NAMESPACE

    # a field acm-lite does not carry out stops the conversion, naming it
    doc["spec"]["git"]["noSSLVerify"] = True
    cluster.request(
        "PATCH",
        f"/apis/configsync.gke.io/v1beta1/namespaces/config-management-system/rootsyncs/cs-{suffix}",
        body={"spec": {"git": {"noSSLVerify": True}}},
        content_type="application/merge-patch+json",
    )
    refused = subprocess.run(
        [*migrate, control_plane.kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
    )
    cluster.request(  # the shared API server keeps no refused object for other tests to meet
        "DELETE", f"/apis/configsync.gke.io/v1beta1/namespaces/config-management-system/rootsyncs/cs-{suffix}"
    )
    assert (
        refused.returncode == 1 and "ACM1108" in refused.stderr and "spec.git.noSSLVerify" in refused.stderr
    )


def _created(cluster: Cluster, doc: dict[str, Any]) -> bool:
    try:
        cluster.request(
            "POST", "/apis/configsync.gke.io/v1beta1/namespaces/config-management-system/rootsyncs", body=doc
        )
    except ApiError as e:
        return e.status == 409
    return True


def test_migrate_from_cluster_reads_config_syncs_reposyncs(
    control_plane: APIServer, namespace: str, tmp_path: Path
) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    _config_sync_crd(cluster)
    _config_sync_crd(cluster, "RepoSync")
    doc = {
        "apiVersion": "configsync.gke.io/v1beta1",
        "kind": "RepoSync",
        "metadata": {"name": "repo-sync", "namespace": namespace},
        "spec": {
            "sourceFormat": "unstructured",
            "git": {"repo": "https://git.example.com/team.git", "branch": "main", "auth": "none"},
            "override": {"roleRefs": [{"kind": "ClusterRole", "name": "edit"}], "apiServerTimeout": "15s"},
        },
    }
    path = f"/apis/configsync.gke.io/v1beta1/namespaces/{namespace}/reposyncs"

    def created() -> bool:
        try:
            cluster.request("POST", path, body=doc)
        except ApiError as e:
            return e.status == 409
        return True

    eventually(created, 30)
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "migrate",
                "--from-cluster",
                "--kubeconfig",
                control_plane.kubeconfig,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        cluster.request("DELETE", f"{path}/repo-sync")
    assert run.returncode == 0, run.stderr
    assert "ACM1109" in run.stderr and "spec.override.apiServerTimeout" in run.stderr
    assert f"ServiceAccount {namespace}/ns-reconciler-{namespace}" in run.stderr
    [mine] = [d for d in yaml.safe_load_all(run.stdout) if d["metadata"].get("namespace") == namespace]
    assert mine["apiVersion"] == "acm-lite.io/v1alpha1" and mine["kind"] == "RepoSync"
    assert mine["metadata"]["name"] == "repo-sync"
    assert mine["spec"]["override"]["roleRefs"] == [{"kind": "ClusterRole", "name": "edit"}]
    assert mine["spec"]["git"]["revision"] == "main" and "namespace" not in mine["spec"]
