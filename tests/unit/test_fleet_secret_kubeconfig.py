"""A fleet member whose kubeconfig is kept in a Secret: each connect reads the Secret and leaves
no copy of the credentials on disk (no API server: the home cluster's answer is a stand-in)."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.errors import AcmError
from acm_lite.fleet import fanout
from acm_lite.fleet.registry import FleetCluster


def _kubeconfig(server: str, token: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "only",
            "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "only", "context": {"cluster": "c", "user": "u"}}],
        }
    )


@pytest.fixture
def secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The Secret the home cluster (the one from $KUBECONFIG) answers with; temporary files go
    to a directory of their own."""
    home = tmp_path / "home-kubeconfig"
    home.write_text(_kubeconfig("https://127.0.0.1:1", "home-token"))
    monkeypatch.setenv("KUBECONFIG", str(home))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    answer: dict[str, Any] = {
        "data": {
            "kubeconfig": base64.b64encode(
                _kubeconfig("https://127.0.0.1:2", "member-token").encode()
            ).decode()
        }
    }
    asked: list[tuple[str, str]] = []

    def request(self: Cluster, method: str, path: str, **_kw: Any) -> Any:
        asked.append((self.host, path))
        return answer

    monkeypatch.setattr(Cluster, "request", request)
    return {"answer": answer, "asked": asked, "scratch": scratch}


def test_connecting_again_and_again_leaves_no_kubeconfig_behind(secret: dict[str, Any]) -> None:
    member = FleetCluster("prod", secret_ref={"name": "prod-kubeconfig", "namespace": "fleet"})
    clusters = [fanout.connect(member) for _ in range(3)]
    assert {(c.host, c.name) for c in clusters} == {("https://127.0.0.1:2", "prod")}
    assert clusters[0]._headers(None, "application/json")["Authorization"] == "Bearer member-token"
    assert (
        secret["asked"] == [("https://127.0.0.1:1", "/api/v1/namespaces/fleet/secrets/prod-kubeconfig")] * 3
    )
    assert list(secret["scratch"].iterdir()) == []


def test_a_secret_without_a_usable_kubeconfig_is_a_coded_error(secret: dict[str, Any]) -> None:
    member = FleetCluster("prod", secret_ref={"name": "prod-kubeconfig", "key": "other"})
    with pytest.raises(AcmError) as raised:
        fanout.connect(member)
    assert raised.value.code is errors.KUBECONFIG_ERROR
    assert raised.value.message == "Secret acm-lite-system/prod-kubeconfig has no key other"
    secret["answer"]["data"]["kubeconfig"] = base64.b64encode(b"kind: Config\n").decode()
    with pytest.raises(AcmError) as raised:
        fanout.connect(FleetCluster("prod", secret_ref={"name": "prod-kubeconfig"}))
    assert raised.value.code is errors.KUBECONFIG_ERROR
    assert list(secret["scratch"].iterdir()) == []
