"""The inventory split across ResourceInventory parts, through a real kube-apiserver and etcd
(which refuses any request over 1.5 MiB): round trips, crashes between parts, migration from the
single object older versions wrote, shrinking, and a sync whose inventory needs many parts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from acm_lite import api, errors, metadata
from acm_lite.apply import inventory
from acm_lite.apply import inventory_parts as parts
from acm_lite.apply.inventory_parts import PartLimit
from acm_lite.cli import report
from acm_lite.cluster.client import ApiError, Call, Cluster, load_configuration
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.errors import AcmError
from acm_lite.objects import ObjectId
from acm_lite.plan.changeset import Outcome
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

SMALL = PartLimit(entries=50)
ETCD_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes


class Killed(BaseException):
    """The process dying at a chosen request: nothing after it runs, nothing catches it."""


class CrashingCluster(Cluster):
    """A client that dies when it is about to send its ``fail_at``-th write request."""

    def __init__(self, kubeconfig: str, fail_at: int):
        super().__init__(load_configuration(kubeconfig))
        self.fail_at = fail_at
        self.sent = 0

    def _count(self) -> None:
        if self.sent == self.fail_at:
            raise Killed
        self.sent += 1

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method != "GET":
            self._count()
        return super().request(method, path, **kwargs)

    def request_many(
        self, calls: Sequence[Call], width: int, *_args: Any
    ) -> list[ApiError | AcmError | None]:
        out: list[ApiError | AcmError | None] = []
        for call in calls:
            self._count()
            out += super().request_many([call], width)
        return out


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    connected = Cluster.connect(control_plane.kubeconfig)
    store.install(connected)
    return connected


@pytest.fixture
def sync_name() -> str:
    return f"inv-{uuid.uuid4().hex[:8]}"


def ids(n: int, start: int = 0, prefix: str = "cm") -> set[ObjectId]:
    return {ObjectId("", "ConfigMap", f"team-{i % 7}", f"{prefix}-{i:06d}") for i in range(start, start + n)}


def listed(cluster: Cluster, sync: str) -> list[dict[str, Any]]:
    path = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/resourceinventories"
    items: list[dict[str, Any]] = cluster.request("GET", path, query={"labelSelector": parts.selector(sync)})[
        "items"
    ]
    return items


def generations(cluster: Cluster, sync: str) -> list[str]:
    return sorted(i["metadata"]["labels"][metadata.INVENTORY_GENERATION_LABEL] for i in listed(cluster, sync))


def legacy_write(cluster: Cluster, sync: str, objects: set[ObjectId]) -> None:
    """The single object earlier versions of acm-lite wrote, byte for byte the same body."""
    body = {
        "apiVersion": api.API_VERSION,
        "kind": "ResourceInventory",
        "metadata": {
            "name": sync,
            "namespace": api.SYSTEM_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "acm-lite"},
        },
        "spec": {"count": len(objects), "objects": sorted(map(inventory.encode, objects))},
    }
    cluster.request(
        "PATCH",
        f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/resourceinventories/{sync}",
        body=body,
        query={"fieldManager": api.FIELD_MANAGER, "force": "true"},
        content_type="application/apply-patch+yaml",
    )


def test_an_inventory_of_many_parts_is_read_back_whole_with_one_list(
    cluster: Cluster, sync_name: str
) -> None:
    recorded = ids(1234)
    inventory.write(cluster, sync_name, recorded, limit=SMALL)
    items = listed(cluster, sync_name)
    assert len(items) == 25
    assert all(len(i["spec"]["objects"]) <= SMALL.entries for i in items)
    before = cluster.requests["GET"]
    assert inventory.read(cluster, sync_name) == recorded
    assert cluster.requests["GET"] - before == 1  # one labelled LIST, no GET of the old object


def test_sixty_thousand_entries_pass_etcds_request_limit(cluster: Cluster, sync_name: str) -> None:
    recorded = ids(60_000)
    entries = sorted(map(inventory.encode, recorded))
    assert len(json.dumps(entries)) > ETCD_LIMIT
    with pytest.raises(ApiError, match="request is too large"):  # as one object, etcd refuses it
        legacy_write(cluster, sync_name, recorded)

    inventory.write(cluster, sync_name, recorded)
    items = listed(cluster, sync_name)
    assert len(items) > 1
    assert max(len(json.dumps(i)) for i in items) < 300 * 1024
    assert inventory.read(cluster, sync_name) == recorded


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (ids(200), ids(120) | ids(150, start=500)),  # grows from 4 parts to 6
        (ids(400), ids(60, start=100)),  # shrinks from 8 parts to 2
    ],
)
def test_a_write_killed_at_any_request_loses_nothing(
    control_plane: APIServer, cluster: Cluster, old: set[ObjectId], new: set[ObjectId]
) -> None:
    new_parts = len(parts.split(map(inventory.encode, new), SMALL))
    for fail_at in range(new_parts + 1):  # each part's create, then the delete of the old ones
        sync = f"crash-{uuid.uuid4().hex[:8]}"
        inventory.write(cluster, sync, old, limit=SMALL)
        crashing = CrashingCluster(control_plane.kubeconfig, fail_at)
        with pytest.raises(Killed):
            inventory.write(crashing, sync, new, limit=SMALL)
        after = inventory.read(cluster, sync)
        assert after >= old, f"entries lost when killed before write request {fail_at}"
        if fail_at == new_parts:  # every new part was stored: the new record is whole
            assert after >= new

        inventory.write(cluster, sync, new, limit=SMALL)  # the next pass's write cleans up
        assert inventory.read(cluster, sync) == new
        assert len(set(generations(cluster, sync))) == 1


def test_a_failed_write_is_a_coded_error_and_keeps_the_previous_record(
    control_plane: APIServer, cluster: Cluster, sync_name: str
) -> None:
    old = ids(300)
    inventory.write(cluster, sync_name, old, limit=SMALL)
    with pytest.raises(AcmError) as raised:  # etcd refuses the one oversized part
        inventory.write(
            cluster, sync_name, old | ids(60_000, start=1000), limit=PartLimit(entries=10**9, bytes=10**9)
        )
    assert raised.value.code is errors.INVENTORY_WRITE_FAILED
    assert "request is too large" in raised.value.message
    assert f"{sync_name}.g2.0" in raised.value.message
    assert inventory.read(cluster, sync_name) == old


def test_the_single_object_of_older_versions_is_read_then_replaced(
    control_plane: APIServer, cluster: Cluster, sync_name: str
) -> None:
    old = ids(120)
    legacy_write(cluster, sync_name, old)
    assert inventory.read(cluster, sync_name) == old

    new = ids(80, start=60)
    with pytest.raises(Killed):  # killed after the first of two parts: the old object counts
        inventory.write(CrashingCluster(control_plane.kubeconfig, 1), sync_name, new, limit=SMALL)
    assert inventory.read(cluster, sync_name) >= old

    inventory.write(cluster, sync_name, new, limit=SMALL)
    path = (
        f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/resourceinventories/{sync_name}"
    )
    with pytest.raises(ApiError) as gone:
        cluster.request("GET", path)
    assert gone.value.status == 404
    assert inventory.read(cluster, sync_name) == new


def test_parts_no_longer_needed_are_deleted(cluster: Cluster, sync_name: str) -> None:
    inventory.write(cluster, sync_name, ids(500), limit=SMALL)
    assert len(listed(cluster, sync_name)) == 10
    inventory.write(cluster, sync_name, ids(120), limit=SMALL)
    assert generations(cluster, sync_name) == ["2", "2", "2"]
    inventory.write(cluster, sync_name, set(), limit=SMALL)
    assert generations(cluster, sync_name) == ["3"]
    assert inventory.read(cluster, sync_name) == set()


def test_a_sync_named_like_another_syncs_part_never_touches_it(cluster: Cluster, sync_name: str) -> None:
    """The single object of older versions is named after its sync; a sync called like another
    sync's part (``foo.g1.0``) must neither read that part as its record nor delete it."""
    inventory.write(cluster, sync_name, ids(120), limit=SMALL)
    namesake = f"{sync_name}.g1.0"
    assert namesake in {p["metadata"]["name"] for p in listed(cluster, sync_name)}
    assert inventory.read(cluster, namesake) == set()
    inventory.write(cluster, namesake, ids(3, start=5000), limit=SMALL)
    inventory.write(cluster, namesake, ids(2, start=5000), limit=SMALL)
    assert inventory.read(cluster, sync_name) == ids(120)
    assert inventory.read(cluster, namesake) == ids(2, start=5000)


def _sync(cluster: Cluster, repo: GitRepo, name: str, cache: Path) -> pipeline.SyncResult:
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=cache, concurrency=8))


def test_a_sync_records_many_parts_and_prunes_from_them(
    cluster: Cluster, sync_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inventory, "PART_LIMIT", SMALL)
    repo = GitRepo(tmp_path / "git")
    space = f"{sync_name}-ns"
    repo.commit({"ns.yaml": ns(space), **{f"cm/{i:03d}.yaml": cm(f"c{i:03d}", space) for i in range(130)}})
    first = _sync(cluster, repo, sync_name, tmp_path / "cache")
    assert first.ok, [p.render() for p in first.problems]
    assert len(listed(cluster, sync_name)) == 3  # 131 entries, 50 a part

    repo.commit(dict.fromkeys(f"cm/{i:03d}.yaml" for i in range(20, 130)))
    second = _sync(cluster, repo, sync_name, tmp_path / "cache")
    assert second.ok, [p.render() for p in second.problems]
    assert second.counts["pruned"] == 110
    assert len(listed(cluster, sync_name)) == 1
    assert len(inventory.read(cluster, sync_name)) == 21


def test_an_inventory_etcd_refuses_stops_the_pass_and_says_so(
    cluster: Cluster, sync_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = f"{sync_name}-ns"
    declared = {ObjectId("", "ConfigMap", space, "c0")}
    many = ids(60_000)
    inventory.write(cluster, sync_name, declared | many)  # recorded by an earlier, larger commit
    monkeypatch.setattr(inventory, "PART_LIMIT", PartLimit(entries=10**9, bytes=10**9))
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(space), "cm.yaml": cm("c0", space), "new.yaml": cm("c1", space)})

    result = _sync(cluster, repo, sync_name, tmp_path / "cache")
    assert not result.ok
    assert [p.code for p in result.problems] == [errors.INVENTORY_WRITE_FAILED]
    message = result.problems[0].message
    assert "request is too large" in message and "nothing was applied" in message
    assert not any(r.outcome is not Outcome.FAILED for r in result.results)
    line = report.summary(result)
    assert "nothing to do" not in line and "nothing applied" in line and "failed at stage" in line
    assert result.status.stage == "plan"
    with pytest.raises(ApiError):
        cluster.request("GET", f"/api/v1/namespaces/{space}/configmaps/c1")
    assert inventory.read(cluster, sync_name) == declared | many


class RefusingCluster(Cluster):
    """A client whose inventory writes the API server refuses while ``refuse`` is set."""

    refuse = False

    def request_many(
        self, calls: Sequence[Call], width: int, **kwargs: Any
    ) -> list[ApiError | AcmError | None]:
        if self.refuse and any("resourceinventories" in c.path for c in calls):
            return [ApiError(503, "ServiceUnavailable", "etcdserver: leader changed") for _ in calls]
        return super().request_many(calls, width, **kwargs)


def test_a_record_refused_after_pruning_keeps_the_results_and_says_so(
    control_plane: APIServer, sync_name: str, tmp_path: Path
) -> None:
    cluster = RefusingCluster(load_configuration(control_plane.kubeconfig))
    repo = GitRepo(tmp_path / "git")
    space = f"{sync_name}-ns"
    repo.commit({"ns.yaml": ns(space), **{f"cm/{i:02d}.yaml": cm(f"c{i:02d}", space) for i in range(30)}})
    assert _sync(cluster, repo, sync_name, tmp_path / "cache").ok

    repo.commit(dict.fromkeys(f"cm/{i:02d}.yaml" for i in range(10, 30)))
    cluster.refuse = True
    pruned = _sync(cluster, repo, sync_name, tmp_path / "cache")
    assert pruned.counts["pruned"] == 20
    assert [p.code for p in pruned.problems] == [errors.INVENTORY_WRITE_FAILED]
    assert "leader changed" in pruned.problems[0].message
    assert "were applied" in pruned.problems[0].message
    assert "nothing applied" not in report.summary(pruned)
    assert pruned.status.managed == 31  # what the record still holds
    assert len(inventory.read(cluster, sync_name)) == 31

    cluster.refuse = False
    again = _sync(cluster, repo, sync_name, tmp_path / "cache")
    assert again.ok, [p.render() for p in again.problems]
    assert inventory.read(cluster, sync_name) >= {
        ObjectId("", "Namespace", "", space),
        *(ObjectId("", "ConfigMap", space, f"c{i:02d}") for i in range(10)),
    }


class NoDeleteCluster(Cluster):
    """A client whose RBAC, like an older chart's Role, may not delete ResourceInventories."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "DELETE" and "/resourceinventories" in path:
            raise ApiError(403, "Forbidden", "resourceinventories is forbidden: cannot delete")
        return super().request(method, path, **kwargs)


def test_parts_that_cannot_be_deleted_are_reported_not_hidden(
    control_plane: APIServer, cluster: Cluster, sync_name: str, tmp_path: Path
) -> None:
    cluster = NoDeleteCluster(load_configuration(control_plane.kubeconfig))
    assert inventory.write(cluster, sync_name, ids(10)) is None  # nothing to replace: no DELETE sent
    warning = inventory.write(cluster, sync_name, ids(5))
    assert warning is not None and warning.code is errors.INVENTORY_CLEANUP_FAILED
    assert not warning.blocking and "forbidden" in warning.message
    assert inventory.read(cluster, sync_name) == ids(10)  # the leftover is read into the union

    repo = GitRepo(tmp_path / "git")
    space = f"{sync_name}-ns"
    repo.commit({"ns.yaml": ns(space), "cm.yaml": cm("c0", space)})
    first = _sync(cluster, repo, f"{sync_name}-p", tmp_path / "cache")
    assert first.ok and not first.problems, [p.render() for p in first.problems]
    repo.commit({"more.yaml": cm("c1", space)})  # a new record replaces the first one
    result = _sync(cluster, repo, f"{sync_name}-p", tmp_path / "cache")
    assert result.ok, [p.render() for p in result.problems]
    assert [p.code for p in result.problems] == [errors.INVENTORY_CLEANUP_FAILED]
