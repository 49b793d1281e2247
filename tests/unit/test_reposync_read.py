"""RepoSync objects read as syncs: acm-lite's and Config Sync's, each field carried over or
refused naming it, the reconciler's name Config Sync gives it, and the cluster's RepoSyncs
followed beside the RootSyncs (no API server: the cluster's lists are stand-ins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acm_lite import api, errors
from acm_lite.cli import migrate
from acm_lite.errors import AcmError
from acm_lite.reconcile import reposyncs, rootsyncs
from acm_lite.reconcile.model import RoleRef
from acm_lite.status import store


def _reposync(
    name: str = "repo-sync",
    namespace: str = "team-a",
    api_version: str = "configsync.gke.io/v1beta1",
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "RepoSync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"git": {"repo": "https://example.com/team-a.git", "branch": "main"}, **spec},
    }


def test_reconciler_names_are_config_syncs() -> None:
    assert api.reconciler_name("team-a", "repo-sync") == "ns-reconciler-team-a"
    assert api.reconciler_name("team-a", "web") == "ns-reconciler-team-a-web-3"


@pytest.mark.parametrize("api_version", ["configsync.gke.io/v1beta1", "acm-lite.io/v1alpha1"])
def test_a_reposync_is_a_sync_of_its_namespace_run_as_its_service_account(api_version: str) -> None:
    item = _reposync(
        "web",
        api_version=api_version,
        override={"roleRefs": [{"kind": "ClusterRole", "name": "edit"}, {"kind": "Role", "name": "r"}]},
    )
    spec, warnings = rootsyncs.read(item)
    assert spec is not None and warnings == []
    assert spec.name == "ns-reconciler-team-a-web-3"
    assert spec.namespace == "team-a" and spec.repo_sync
    assert spec.object_key == ("web", "team-a")
    assert spec.user == "system:serviceaccount:team-a:ns-reconciler-team-a-web-3"
    assert spec.source_format == "unstructured"  # Config Sync's namespace repositories are
    assert spec.revision == "main"
    assert spec.role_refs == (RoleRef("ClusterRole", "edit"), RoleRef("Role", "r"))
    assert spec.describe == "RepoSync team-a/web"
    # acm-lite's RepoSync it becomes: no namespace or clusterName of its own, the roleRefs kept
    out = spec.to_spec()
    assert "namespace" not in out and "clusterName" not in out
    assert out["override"]["roleRefs"] == [
        {"kind": "ClusterRole", "name": "edit"},
        {"kind": "Role", "name": "r"},
    ]


def test_a_rootsync_is_not_impersonated() -> None:
    item = {**_reposync(), "kind": "RootSync", "metadata": {"name": "root-sync"}}
    spec = rootsyncs.spec_of(item)
    assert spec is not None and spec.user is None and not spec.repo_sync


@pytest.mark.parametrize(
    ("override", "field"),
    [
        (
            {"roleRefs": [{"kind": "ClusterRole", "name": "edit", "namespace": "other"}]},
            "roleRefs[0].namespace",
        ),
        ({"roleRefs": [{"kind": "Group", "name": "edit"}]}, "roleRefs[0].kind"),
        ({"roleRefs": [{"kind": "Role", "name": ""}]}, "roleRefs[0].name"),
        ({"roleRefs": [{"kind": "Role", "name": "r", "verbs": ["*"]}]}, "roleRefs[0].verbs"),
        ({"roleRefs": "edit"}, "roleRefs"),
        ({"namespaceStrategy": "explicit"}, "namespaceStrategy"),
    ],
)
def test_a_reposync_field_acm_lite_does_not_carry_out_is_refused(
    override: dict[str, Any], field: str
) -> None:
    with pytest.raises(AcmError) as raised:
        rootsyncs.read(_reposync(override=override))
    assert raised.value.code is errors.CONFIG_SYNC_FIELD_UNSUPPORTED
    assert f"RepoSync 'team-a/repo-sync': spec.override.{field}" in raised.value.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"sourceFormat": "hierarchy"}, "spec.sourceFormat"),
        ({"clusterName": "x"}, "spec.clusterName"),
        ({"namespace": "other"}, "spec.namespace"),
    ],
)
def test_root_only_fields_are_refused_on_a_reposync(spec: dict[str, Any], field: str) -> None:
    item = _reposync()
    item["spec"].update(spec)
    with pytest.raises(AcmError) as raised:
        rootsyncs.read(item)
    assert raised.value.code is errors.CONFIG_SYNC_FIELD_UNSUPPORTED
    assert field in raised.value.message


def test_pod_settings_of_a_reposync_are_warned_and_left_out() -> None:
    spec, warnings = rootsyncs.read(_reposync(override={"resources": [], "apiServerTimeout": "15s"}))
    assert spec is not None
    assert [w.code for w in warnings] == [errors.CONFIG_SYNC_FIELD_IGNORED] * 2
    assert all("RepoSync 'team-a/repo-sync'" in w.message for w in warnings)


def test_a_reposync_in_acm_lites_or_a_system_namespace_or_with_too_long_a_name_is_refused() -> None:
    with pytest.raises(AcmError) as raised:
        rootsyncs.read(_reposync(namespace=api.system_namespace()))
    assert raised.value.code is errors.CONFIG_SYNC_FIELD_UNSUPPORTED
    with pytest.raises(AcmError) as raised:
        rootsyncs.read(_reposync(namespace="kube-system"))
    assert raised.value.code is errors.CONFIG_SYNC_FIELD_UNSUPPORTED
    with pytest.raises(AcmError) as raised:
        rootsyncs.read(_reposync(name="x" * 50))
    assert raised.value.code is errors.INVALID_SYNC and "longer than 63" in raised.value.message
    with pytest.raises(AcmError) as raised:
        rootsyncs.read({**_reposync(), "metadata": {"name": "repo-sync"}})
    assert raised.value.code is errors.INVALID_SYNC and "metadata.namespace" in raised.value.message


def test_roleref_bindings_are_named_after_the_reconciler_and_bounded() -> None:
    assert reposyncs.binding_name("ns-reconciler-a", RoleRef("ClusterRole", "edit")) == (
        "ns-reconciler-a:clusterrole:edit"
    )
    long = reposyncs.binding_name("ns-reconciler-a", RoleRef("Role", "r" * 253))
    assert len(long) <= 253 and long.startswith("ns-reconciler-a:role:")
    assert long != reposyncs.binding_name("ns-reconciler-a", RoleRef("Role", "s" * 253))


def test_a_config_file_and_migrate_read_reposyncs(tmp_path: Path) -> None:
    path = tmp_path / "syncs.yaml"
    path.write_text(
        "apiVersion: configsync.gke.io/v1beta1\nkind: RepoSync\n"
        "metadata: {name: repo-sync, namespace: team-a}\n"
        "spec: {git: {repo: 'https://example.com/a.git', dir: apps},"
        " override: {roleRefs: [{kind: ClusterRole, name: edit}]}}\n"
    )
    [(spec, _warnings)] = rootsyncs.read_file(path)
    assert spec.name == "ns-reconciler-team-a" and spec.dir == "apps"
    out = migrate.converted(spec)
    assert out["kind"] == "RepoSync" and out["apiVersion"] == api.API_VERSION
    assert out["metadata"] == {"name": "repo-sync", "namespace": "team-a"}
    assert out["spec"]["override"]["roleRefs"] == [{"kind": "ClusterRole", "name": "edit"}]
    assert rootsyncs.read({**out, "kind": "RepoSync"})[0] == spec


class _Daemon:
    def __init__(self) -> None:
        self.running: dict[str, Any] = {}

    def add(self, spec: Any, connect: Any) -> None:
        self.running[spec.name] = spec

    def remove(self, name: str) -> list[Any]:
        del self.running[name]
        return []

    def is_leader(self) -> bool:
        return False


def test_the_cluster_s_reposyncs_are_followed_beside_its_rootsyncs(monkeypatch: pytest.MonkeyPatch) -> None:
    root = {
        "kind": "RootSync",
        "metadata": {"name": "root-sync"},
        "spec": {"git": {"repo": "https://e/r.git"}},
    }
    repos = [_reposync(api_version=api.API_VERSION), _reposync("web", "team-b", api_version=api.API_VERSION)]
    monkeypatch.setattr(store, "list_syncs", lambda _cluster: [root])
    monkeypatch.setattr(store, "list_repo_syncs", lambda _cluster: repos)
    daemon = _Daemon()
    followed = rootsyncs.RootSyncs(daemon, object)  # type: ignore[arg-type]
    assert sorted(daemon.running) == ["ns-reconciler-team-a", "ns-reconciler-team-b-web-3", "root-sync"]
    assert daemon.running["ns-reconciler-team-b-web-3"].namespace == "team-b"
    repos.pop()
    followed.refresh()
    assert sorted(daemon.running) == ["ns-reconciler-team-a", "root-sync"]
    assert followed.orphaned == {"ns-reconciler-team-b-web-3"}
    assert followed.repo_namespaces["ns-reconciler-team-b-web-3"] == "team-b"


def test_reposyncs_this_daemon_may_not_list_leave_the_rootsyncs_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = {
        "kind": "RootSync",
        "metadata": {"name": "root-sync"},
        "spec": {"git": {"repo": "https://e/r.git"}},
    }
    monkeypatch.setattr(store, "list_syncs", lambda _cluster: [root])
    repos = [_reposync(api_version=api.API_VERSION)]
    monkeypatch.setattr(store, "list_repo_syncs", lambda _cluster: repos)
    daemon = _Daemon()
    followed = rootsyncs.RootSyncs(daemon, object)  # type: ignore[arg-type]
    assert sorted(daemon.running) == ["ns-reconciler-team-a", "root-sync"]

    def denied(_cluster: object) -> list[dict[str, Any]]:
        raise AcmError(errors.INSUFFICIENT_PERMISSION, "Forbidden: reposyncs")

    monkeypatch.setattr(store, "list_repo_syncs", denied)
    followed.refresh()  # the RepoSyncs last listed go on; the RootSyncs are still followed
    assert sorted(daemon.running) == ["ns-reconciler-team-a", "root-sync"]
    assert followed.repo_denied


class _Starting:
    """A client whose RepoSync list answers 429 (a just-installed CRD's storage starting)
    ``busy`` times, then the list."""

    def __init__(self, busy: int, status: int = 429) -> None:
        self.busy, self.status, self.calls = busy, status, 0

    def request(self, method: str, path: str, **_kwargs: Any) -> Any:
        from acm_lite.cluster.client import ApiError

        self.calls += 1
        if self.calls <= self.busy:
            raise ApiError(self.status, "TooManyRequests", "storage is (re)initializing")
        return {"items": [_reposync(api_version=api.API_VERSION), "not an object"]}


def test_listing_reposyncs_waits_out_a_starting_crd_and_not_a_refusal() -> None:
    starting = _Starting(busy=2)
    assert [i["metadata"]["name"] for i in store.list_repo_syncs(starting)] == ["repo-sync"]  # type: ignore[arg-type]
    assert starting.calls == 3
    refused = _Starting(busy=1, status=403)
    with pytest.raises(AcmError) as raised:
        store.list_repo_syncs(refused)  # type: ignore[arg-type]
    assert raised.value.code is errors.INSUFFICIENT_PERMISSION and refused.calls == 1
    assert store.list_repo_syncs(_Starting(busy=1, status=404)) == []  # type: ignore[arg-type]
