"""A client acting as another user: every request it sends carries ``Impersonate-User``, the
client it came from sends none, and a user name that could break the header is refused. Pure:
requests are recorded at the socket, nothing is listening."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s_client

from acm_lite import api
from acm_lite.cluster.client import Cluster
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.model import SyncSpec


class Recording(Cluster):
    def __init__(self, cfg: k8s_client.Configuration, name: str = "", **kwargs: Any):
        super().__init__(cfg, name, **kwargs)
        self._transport = None
        self.sent: list[dict[str, str]] = []

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        self.sent.append(headers)
        return 200, b"{}"

    def as_user(self, user: str) -> Cluster:
        other = Recording(self.cfg, self.name, impersonate=super().as_user(user).impersonate)
        return other


def _cluster() -> Recording:
    cfg = k8s_client.Configuration()
    cfg.host = "https://api.invalid"
    return Recording(cfg)


def test_a_client_as_a_service_account_impersonates_it_on_every_request() -> None:
    admin = _cluster()
    user = api.service_account_user("team-a", "ns-reconciler-team-a")
    tenant = admin.as_user(user)
    assert isinstance(tenant, Recording)
    tenant.request("GET", "/api/v1/namespaces/team-a/configmaps")
    tenant.request("PATCH", "/api/v1/namespaces/team-a/configmaps/a", body={}, content_type="x")
    admin.request("GET", "/api/v1/namespaces")
    assert [h.get("Impersonate-User") for h in tenant.sent] == [user, user]
    assert "Impersonate-User" not in admin.sent[0]
    assert user == "system:serviceaccount:team-a:ns-reconciler-team-a"


@pytest.mark.parametrize("user", ["", "a\r\nImpersonate-Group: system:masters", "a\nb", "a\0b"])
def test_a_user_that_could_break_the_header_is_refused(user: str) -> None:
    with pytest.raises(ValueError):
        _cluster().as_user(user)


def test_only_a_reposync_s_pass_acts_as_its_service_account() -> None:
    admin = _cluster()
    root = SyncSpec(repo="https://e/r.git")
    assert pipeline.target_of(root, admin) is admin
    tenant = SyncSpec(repo="https://e/r.git", name="ns-reconciler-a", namespace="a", kind=api.REPO_SYNC)
    target = pipeline.target_of(tenant, admin)
    assert target is not admin and target.impersonate == "system:serviceaccount:a:ns-reconciler-a"
    # a tenant sync of `sync --namespace` (a RootSync's spec.namespace) keeps acm-lite's rights
    assert pipeline.target_of(SyncSpec(repo="https://e/r.git", namespace="a"), admin) is admin
