"""The daemon's syncs from RootSync objects: a config file of them, and those of a cluster followed
as they are created, changed and deleted (no API server: the cluster's list is a stand-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.reconcile import rootsyncs
from acm_lite.status import store


@pytest.fixture(autouse=True)
def _no_repo_syncs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in cluster holds no RepoSyncs unless a test lists some."""
    monkeypatch.setattr(store, "list_repo_syncs", lambda _cluster: [])


def _rootsync(name: str, repo: str | None = "https://example.com/repo.git") -> dict[str, Any]:
    spec = {"git": {"repo": repo, "revision": "main"}} if repo else {}
    return {
        "apiVersion": "acm-lite.io/v1alpha1",
        "kind": "RootSync",
        "metadata": {"name": name},
        "spec": spec,
    }


class _Daemon:
    def __init__(self) -> None:
        self.running: dict[str, Any] = {}

    def add(self, spec: Any, connect: Any) -> None:
        self.running[spec.name] = (spec, connect)

    def remove(self, name: str) -> list[Any]:
        del self.running[name]
        return []

    def is_leader(self) -> bool:
        return False  # a standby: follows the RootSyncs, writes nothing


def test_a_rootsync_without_a_repository_is_no_sync() -> None:
    spec = rootsyncs.spec_of(_rootsync("a"))
    assert spec is not None and (spec.name, spec.revision, spec.dir) == ("a", "main", ".")
    assert rootsyncs.spec_of(_rootsync("b", repo=None)) is None


def test_a_config_file_lists_rootsyncs_only(tmp_path: Path) -> None:
    good = tmp_path / "syncs.yaml"
    good.write_text(
        "kind: RootSync\nmetadata: {name: a}\nspec: {git: {repo: r}}\n---\n"
        "kind: RootSync\nmetadata: {name: b}\nspec: {git: {repo: s}}\n"
    )
    assert [s.name for s in rootsyncs.from_config(good)] == ["a", "b"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(AcmError) as raised:
        rootsyncs.from_config(bad)
    assert raised.value.code is errors.INVALID_FLEET
    assert raised.value.message == "document 1 is not a RootSync or RepoSync with a source"


def test_workers_follow_the_rootsyncs_of_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = [_rootsync("a"), _rootsync("b")]
    monkeypatch.setattr(store, "list_syncs", lambda _cluster: listed)
    daemon = _Daemon()
    cluster = object()
    followed = rootsyncs.RootSyncs(daemon, lambda: cluster)  # type: ignore[arg-type,return-value]
    assert sorted(daemon.running) == ["a", "b"]
    listed[:] = [_rootsync("b"), _rootsync("c"), _rootsync("d", repo=None)]
    followed.refresh()
    assert sorted(daemon.running) == ["b", "c"]
    assert daemon.running["c"][1]() is cluster

    def away(_cluster: object) -> list[dict[str, Any]]:
        raise AcmError(errors.API_SERVER_ERROR, "down")

    monkeypatch.setattr(store, "list_syncs", away)
    followed.refresh()  # the API server is away: the syncs already running go on
    assert sorted(daemon.running) == ["b", "c"]


def test_a_deleted_rootsync_stops_its_worker_and_one_gone_is_left_to_orphan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = [_rootsync("a"), _rootsync("b")]
    monkeypatch.setattr(store, "list_syncs", lambda _cluster: listed)
    daemon = _Daemon()
    cluster = object()
    followed = rootsyncs.RootSyncs(daemon, lambda: cluster)  # type: ignore[arg-type,return-value]
    deleting = _rootsync("a")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    listed[:] = [deleting]
    followed.refresh()
    assert daemon.running == {}  # a is finalizing, b is gone
    assert followed.orphaned == {"b"}
    # b is back before its objects were unmarked: b is not orphaned; a went (its finalizer
    # removed by hand, say): what it still records is unmarked
    listed[:] = [_rootsync("b")]
    followed.refresh()
    assert followed.orphaned == {"a"} and sorted(daemon.running) == ["b"]


def test_a_helm_rootsync_carries_deploy_namespace_values_file_refs_and_auth() -> None:
    item = {
        "metadata": {"name": "chart"},
        "spec": {
            "sourceType": "helm",
            "helm": {
                "repo": "https://charts.example",
                "chart": "web",
                "deployNamespace": "apps",
                "valuesFileRefs": [{"name": "base"}, {"name": "prod", "dataKey": "prod.yaml"}, "junk"],
                "auth": "token",
                "secretRef": {"name": "creds"},
            },
        },
    }
    spec = rootsyncs.spec_of(item)
    assert spec is not None and spec.helm is not None
    refs = [(r.name, r.data_key) for r in spec.helm.values_file_refs]
    assert refs == [("base", "values.yaml"), ("prod", "prod.yaml"), ("", "values.yaml")]
    assert (spec.helm.deploy_namespace, spec.helm.auth, spec.helm.secret_ref) == ("apps", "token", "creds")
    with pytest.raises(AcmError) as caught:  # the entry that is not a mapping has no name
        spec.helm.check()
    assert caught.value.code is errors.INVALID_SYNC
    oci = rootsyncs.spec_of(
        {
            "metadata": {"name": "o"},
            "spec": {"sourceType": "oci", "oci": {"image": "r.example/a:1", "auth": "gcenode"}},
        }
    )
    assert oci is not None and oci.oci is not None and oci.oci.auth == "gcenode"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300.0),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("1.5m", 90.0),
        ("250ms", 0.25),
        ("0s", None),
        ("-5m", None),
        ("5", None),
        ("5 m", None),
        ("m5", None),
        ("200h", None),  # over a week
        ("1" * 40 + "s", None),
        (300, None),
    ],
)
def test_reconcile_timeout_is_read_as_a_go_duration(text: object, seconds: float | None) -> None:
    item = _rootsync("a")
    item["spec"]["override"] = {"reconcileTimeout": text}
    spec = rootsyncs.spec_of(item)
    assert spec is not None and spec.reconcile_timeout == seconds


def test_reconcile_timeout_round_trips_through_the_spec_acm_lite_writes() -> None:
    item = _rootsync("a")
    spec = rootsyncs.spec_of(item)
    assert spec is not None and spec.reconcile_timeout is None and "override" not in spec.to_spec()
    item["spec"]["override"] = {"reconcileTimeout": "2m"}
    spec = rootsyncs.spec_of(item)
    assert spec is not None
    again = rootsyncs.spec_of({**item, "spec": spec.to_spec()})
    assert again is not None and again.reconcile_timeout == 120.0


@pytest.mark.parametrize(
    ("git", "checked_out"),
    [
        ({}, "HEAD"),
        ({"branch": "release"}, "release"),
        ({"revision": "HEAD", "branch": "release"}, "release"),
        ({"revision": "", "branch": "release"}, "release"),
        ({"revision": "v1.2.0", "branch": "release"}, "v1.2.0"),
        ({"revision": "main"}, "main"),
    ],
)
def test_branch_is_read_as_config_sync_reads_it(git: dict[str, str], checked_out: str) -> None:
    item = {"metadata": {"name": "a"}, "spec": {"git": {"repo": "https://git.example/r.git", **git}}}
    spec = rootsyncs.spec_of(item)
    assert spec is not None and spec.revision == checked_out


def test_a_refused_rootsync_of_the_cluster_is_not_synced_and_the_others_are(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    refused = _rootsync("r")
    refused["spec"]["git"]["proxy"] = "http://proxy:3128"
    credentials = _rootsync("t")
    credentials["spec"]["git"].update({"auth": "token", "secretRef": {"name": "creds"}, "period": "1m"})
    monkeypatch.setattr(store, "list_syncs", lambda _cluster: [refused, credentials])
    daemon = _Daemon()
    rootsyncs.RootSyncs(daemon, object)  # type: ignore[arg-type]
    assert sorted(daemon.running) == ["t"]
    spec = daemon.running["t"][0]
    assert (spec.git_auth, spec.git_secret_ref, spec.period) == ("token", "creds", 60.0)
    assert any("spec.git.proxy" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
