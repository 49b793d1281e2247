"""The dashboard's TokenReview check against a real kube-apiserver: a ServiceAccount's token opens
it, anything else does not, and an API server that cannot be asked refuses every token."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import metrics
from acm_lite.reconcile.dashboard import Auth, Dashboard, SyncView

pytestmark = pytest.mark.integration


def service_account_token(cluster: Cluster, namespace: str) -> str:
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer"}},
    )
    answer = cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/viewer/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    return str(answer["status"]["token"])


def status_of(url: str, token: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_service_account_token_opens_the_dashboard(control_plane: APIServer, namespace: str) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    token = service_account_token(cluster, namespace)
    auth = Auth(review=cluster)
    assert auth.allows(token)
    assert not auth.allows(token[:-4] + "AAAA")
    assert not auth.allows("not-a-token")

    view = SyncView("prod", "root-sync", "RootSync root-sync", "eks", outcome={"state": "SYNCED"})
    server = metrics.serve(
        ("127.0.0.1", 0), metrics.Metrics(), lambda: True, dashboard=Dashboard(lambda _objects: [view], auth)
    )
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, body = status_of(f"{url}/ui/", token)
        assert code == 200 and b"prod" in body and b"SYNCED" in body
        code, body = status_of(f"{url}/ui/", "forged")
        assert code == 401 and b"prod" not in body
        assert status_of(f"{url}/ui/", None)[0] == 401
        assert status_of(f"{url}/healthz", None)[0] == 200  # the other endpoints are unchanged
    finally:
        server.shutdown()


def test_an_api_server_that_cannot_be_asked_refuses_every_token(
    control_plane: APIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = yaml.safe_load(Path(control_plane.kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    auth = Auth(review=Cluster.connect(str(tmp_path / "kubeconfig")))
    token = "a-token-that-must-not-be-logged"
    assert not auth.allows(token)
    logged = [str(getattr(r, "fields", {})) for r in caplog.records if r.name == "acm_lite.dashboard"]
    assert logged and all("ACM2019" in line and token not in line for line in logged)
