"""The admission webhook against a real kube-apiserver calling it on loopback: kubectl edits of
declared fields, acm-lite's marks and deletions denied with the sync, file and commit named;
undeclared fields allowed; acm-lite's own passes still apply and prune; two syncs racing for one
object, the second denied; the webhook down under Ignore (writes pass, drift repair reverts them)
and under Fail (denied); and `serve --admission-webhook` rotating its certificate."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite import api, errors, metadata
from acm_lite.apply import writes
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.admission import GENERATED_SECRET, AdmissionOptions, AdmissionWebhook
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns

VWC = f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{api.ADMISSION_WEBHOOK}"
DENIED = f'admission webhook "{api.ADMISSION_WEBHOOK}" denied the request'


@pytest.fixture
def webhooks(control_plane: APIServer) -> Iterator[Callable[..., AdmissionWebhook]]:
    """Start admission webhooks in this process; afterwards every one is stopped and the
    registration and generated certificate removed, so other tests see no webhook."""
    cluster = Cluster.connect(control_plane.kubeconfig)
    started: list[AdmissionWebhook] = []

    def start(**options: Any) -> AdmissionWebhook:
        hook = AdmissionWebhook(cluster, AdmissionOptions(address=("127.0.0.1", 0), **options))
        hook.start()
        started.append(hook)
        return hook

    yield start
    for hook in started:
        hook.stop()
    for path in (VWC, f"/api/v1/namespaces/{api.system_namespace()}/secrets/{GENERATED_SECRET}"):
        try:
            cluster.request("DELETE", path)
        except ApiError as e:
            assert e.status == 404


def _sync(cluster: Cluster, repo: GitRepo, name: str, tmp_path: Path) -> pipeline.SyncResult:
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / f"cache-{name}"))


def _kubectl(
    control_plane: APIServer, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """kubectl as a person ("alice"), not as acm-lite: the admin impersonates her."""
    from acm_lite.devcluster import binaries

    kubectl = binaries.ensure_all(["kubectl"])["kubectl"]
    return subprocess.run(
        [
            str(kubectl),
            "--kubeconfig",
            control_plane.kubeconfig,
            "--as",
            "alice",
            "--as-group",
            "system:masters",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _setup(control_plane: APIServer, tmp_path: Path) -> tuple[Cluster, GitRepo, str, str, str]:
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"aw-{suffix}", f"aw-{suffix}"
    repo = GitRepo(tmp_path / "git")
    commit = repo.commit(
        {
            "ns.yaml": ns(namespace),
            "app.yaml": cm("app", namespace),
            "gone.yaml": cm("gone", namespace),
        }
    )
    result = _sync(cluster, repo, name, tmp_path)
    assert result.ok, [p.render() for p in result.problems]
    return cluster, repo, name, namespace, commit


def test_people_are_denied_declared_fields_marks_and_deletion_acm_lite_is_not(
    control_plane: APIServer, tmp_path: Path, webhooks: Callable[..., AdmissionWebhook]
) -> None:
    cluster, repo, name, namespace, commit = _setup(control_plane, tmp_path)
    hook = webhooks(failure_policy="Fail")
    registered = get(cluster, VWC)
    assert registered is not None
    entry = registered["webhooks"][0]
    assert entry["clientConfig"]["url"] == f"https://127.0.0.1:{hook.server.server_address[1]}/admission"  # type: ignore[union-attr]
    assert entry["objectSelector"] == {"matchLabels": {metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY}}
    assert (entry["sideEffects"], entry["timeoutSeconds"]) == ("None", 3)

    # kubectl edit of a declared field: denied, naming the sync, the file and the commit.
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^  k: v$/  k: edited/' \"$1\"\n")
    editor.chmod(0o755)
    edit = _kubectl(
        control_plane, "edit", "configmap", "app", "-n", namespace, env={"KUBE_EDITOR": str(editor)}
    )
    assert edit.returncode != 0
    assert DENIED in edit.stderr and errors.CHANGE_DENIED.id in edit.stderr, edit.stderr
    assert "'alice'" in edit.stderr and "data.k" in edit.stderr
    assert repr(name) in edit.stderr and "app.yaml" in edit.stderr and commit in edit.stderr
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert get(cluster, f"{path}/app")["data"] == {"k": "v"}  # type: ignore[index]

    # Fields the source does not declare: allowed.
    allowed = _kubectl(
        control_plane, "patch", "configmap", "app", "-n", namespace, "--type", "merge",
        "-p", '{"data": {"extra": "mine"}, "metadata": {"annotations": {"team": "a"}}}',
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    live = get(cluster, f"{path}/app")
    assert live is not None and live["data"] == {"k": "v", "extra": "mine"}
    assert live["metadata"]["annotations"]["team"] == "a"

    # acm-lite's labels and annotations, and deletion: denied.
    for args in (
        ["label", "configmap", "app", "-n", namespace, f"{metadata.MANAGED_BY_LABEL}-"],
        ["label", "--overwrite", "configmap", "app", "-n", namespace, f"{metadata.SYNC_LABEL}=other"],
        ["annotate", "--overwrite", "configmap", "app", "-n", namespace, f"{metadata.COMMIT}=0000"],
        ["delete", "configmap", "app", "-n", namespace, "--wait=false"],
    ):
        refused = _kubectl(control_plane, *args)
        assert refused.returncode != 0, args
        assert DENIED in refused.stderr and errors.CHANGE_DENIED.id in refused.stderr, refused.stderr
    assert "may not delete" in refused.stderr
    live = get(cluster, f"{path}/app")
    assert live is not None and metadata.owner(live) == name

    # acm-lite's own pass still applies a change and prunes a removed object.
    repo.commit({"app.yaml": {**cm("app", namespace), "data": {"k": "v2"}}, "gone.yaml": None})
    result = _sync(cluster, repo, name, tmp_path)
    assert result.ok, [p.render() for p in result.problems]
    live = get(cluster, f"{path}/app")
    assert live is not None and live["data"]["k"] == "v2"
    assert get(cluster, f"{path}/gone") is None


def test_two_syncs_declaring_one_object_the_second_is_denied(
    control_plane: APIServer, tmp_path: Path, webhooks: Callable[..., AdmissionWebhook]
) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    namespace = f"race-{uuid.uuid4().hex[:6]}"
    cluster.request("POST", "/api/v1/namespaces", body=ns(namespace))
    webhooks()
    first, second = (GitRepo(tmp_path / n) for n in ("one", "two"))
    for repo in (first, second):
        repo.commit({"shared.yaml": cm("shared", namespace)})
    names = [f"{namespace}-a", f"{namespace}-b"]

    # Both passes at once, as two syncs would run: one owns the object, the other fails coded.
    results: dict[str, pipeline.SyncResult] = {}
    threads = [
        threading.Thread(target=lambda r=repo, n=n: results.__setitem__(n, _sync(cluster, r, n, tmp_path)))
        for repo, n in zip((first, second), names, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    live = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/shared")
    owner = metadata.owner(live)
    assert owner in names
    loser = next(n for n in names if n != owner)
    assert results[owner].ok
    assert errors.MANAGEMENT_CONFLICT in [p.code for p in results[loser].problems]

    # The write the planner's read cannot stop (planned before the first sync wrote): the API
    # server asks the webhook, which denies it as KNV1060.
    body = {**cm("shared", namespace), "data": {"k": "taken"}}
    body["metadata"]["labels"] = {metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY, metadata.SYNC_LABEL: loser}
    call = writes.server_side_apply(f"/api/v1/namespaces/{namespace}/configmaps/shared", body)
    with pytest.raises(ApiError) as denied:
        writes.send(cluster, call)
    assert denied.value.status == 409
    assert denied.value.to_acm().code is errors.MANAGEMENT_CONFLICT
    assert repr(owner) in denied.value.message
    assert metadata.owner(get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/shared")) == owner


def test_webhook_down_ignore_lets_writes_through_and_repair_reverts_them_fail_denies(
    control_plane: APIServer, tmp_path: Path, webhooks: Callable[..., AdmissionWebhook]
) -> None:
    cluster, repo, name, namespace, _commit = _setup(control_plane, tmp_path)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)], SyncOptions(git_cache=tmp_path / "daemon"), DaemonOptions(period=0.5)
    )
    daemon.start()
    path = f"/api/v1/namespaces/{namespace}/configmaps/app"
    patch = [
        "patch",
        "configmap",
        "app",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"data": {"k": "edited"}}',
    ]
    try:
        eventually(lambda: daemon.workers[0].remediator is not None, 60)
        hook = webhooks()  # Ignore
        assert _kubectl(control_plane, *patch).returncode != 0  # serving: denied
        hook.server.shutdown()  # type: ignore[union-attr]
        through = _kubectl(control_plane, *patch)
        assert through.returncode == 0, through.stderr  # down, Ignore: the write passes
        eventually(lambda: get(cluster, path)["data"] == {"k": "v"}, 30)  # type: ignore[index]

        failing = webhooks(failure_policy="Fail")
        failing.server.shutdown()  # type: ignore[union-attr]
        refused = _kubectl(control_plane, *patch)
        assert refused.returncode != 0
        assert f'failed calling webhook "{api.ADMISSION_WEBHOOK}"' in refused.stderr, refused.stderr
        assert get(cluster, path)["data"] == {"k": "v"}  # type: ignore[index]
    finally:
        daemon.stop()


def _ca_bundle(cluster: Cluster) -> bytes:
    found = get(cluster, VWC)
    return base64.b64decode(found["webhooks"][0]["clientConfig"]["caBundle"]) if found else b""


def test_serve_rotates_the_certificate_and_calls_still_succeed(
    control_plane: APIServer, tmp_path: Path, webhooks: Callable[..., AdmissionWebhook]
) -> None:
    cluster, repo, name, namespace, _commit = _setup(control_plane, tmp_path)
    log = (tmp_path / "serve.log").open("w")
    daemon = subprocess.Popen(
        [
            sys.executable, "-m", "acm_lite", "serve", "--kubeconfig", control_plane.kubeconfig,
            "--repo", repo.url, "--name", name, "--revision", "main", "--source-format", "unstructured",
            "--metrics-address", "off", "--period", "2", "--admission-webhook",
            "--admission-webhook-address", "127.0.0.1:0", "--admission-webhook-failure-policy", "Fail",
            "--admission-webhook-cert-lifetime", "9",
        ],
        env={**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache")},
        stderr=log,
        text=True,
    )  # fmt: skip
    patch = [
        "patch",
        "configmap",
        "app",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        '{"data": {"k": "edited"}}',
    ]
    try:
        eventually(lambda: bool(_ca_bundle(cluster)), 60)
        first = _ca_bundle(cluster)
        denied = _kubectl(control_plane, *patch)
        assert DENIED in denied.stderr, denied.stderr  # the call succeeded: the webhook answered
        eventually(lambda: _ca_bundle(cluster) != first, 30)
        time.sleep(1.0)
        for _ in range(3):  # after the rotation, calls still succeed (Fail would say otherwise)
            again = _kubectl(control_plane, *patch)
            assert DENIED in again.stderr, again.stderr
        secret = get(cluster, f"/api/v1/namespaces/{api.system_namespace()}/secrets/{GENERATED_SECRET}")
        assert secret is not None and secret["type"] == "kubernetes.io/tls"
        assert json.dumps(secret).count("BEGIN") == 0  # stored base64, as Secrets are
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0


def test_the_charts_rbac_is_enough_for_a_tenant_daemon_to_serve_and_register(
    control_plane: APIServer, tmp_path: Path, webhooks: Callable[..., AdmissionWebhook]
) -> None:
    """Under the chart's namespace-scoped RBAC (no cluster-admin), the daemon learns its identity,
    writes its certificate Secret and registers the webhook, which then denies a person's edit."""
    from tests.integration.test_chart import _in_cluster_env, _install, render

    admin = Cluster.connect(control_plane.kubeconfig)
    namespace = f"aw-tenant-{uuid.uuid4().hex[:6]}"
    admin.request("POST", "/api/v1/namespaces", body=ns(namespace))
    docs = render(
        "awtenant",
        "rbac.scope=namespace",
        f"rbac.namespaces={{{namespace}}}",
        "admissionWebhook.enabled=true",
        crds=True,
    )
    assert any(d["kind"] == "Service" and d["metadata"]["name"] == "awtenant-admission-webhook" for d in docs)
    _install(control_plane, [d for d in docs if d["kind"] != "Deployment"], tmp_path, "chart-awtenant")
    env = _in_cluster_env(admin, control_plane, "awtenant", tmp_path)
    repo = GitRepo(tmp_path / "git")
    repo.commit({"app.yaml": cm("app", namespace)})
    daemon = subprocess.Popen(
        [
            sys.executable, "-m", "acm_lite", "serve", "--repo", repo.url, "--revision", "main",
            "--source-format", "unstructured", "--name", namespace, "--namespace", namespace,
            "--metrics-address", "off", "--period", "1", "--admission-webhook",
            "--admission-webhook-address", "127.0.0.1:0", "--admission-webhook-failure-policy", "Fail",
        ],
        env=env,
        stderr=(tmp_path / "serve.log").open("w"),
        text=True,
    )  # fmt: skip
    path = f"/api/v1/namespaces/{namespace}/configmaps/app"
    try:
        eventually(
            lambda: daemon.poll() is None and bool(_ca_bundle(admin)) and get(admin, path) is not None, 90
        )
        refused = _kubectl(control_plane, "delete", "configmap", "app", "-n", namespace, "--wait=false")
        assert DENIED in refused.stderr and errors.CHANGE_DENIED.id in refused.stderr, refused.stderr
        assert "system:serviceaccount:acm-lite-system:awtenant" not in refused.stderr  # alice, not the daemon
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
