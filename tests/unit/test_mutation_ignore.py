"""``client.lifecycle.config.k8s.io/mutation: ignore`` as Config Sync honours it: an object that
is missing is created, one that exists is never changed (only marked as managed when adopted),
and one that leaves the source is pruned like any other. The plan is fed to the applier's
recording fake, so what would reach the API server is what is checked."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite import metadata
from acm_lite.cluster.client import Call
from acm_lite.cluster.discovery import Discovery
from acm_lite.objects import GroupKind, Manifest, ObjectId
from acm_lite.plan import ownership, planner
from acm_lite.plan.changeset import Action, ChangeSet, Outcome
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.remediator import Remediator
from tests.unit.apply.test_applier import FakeCluster, cm, run

IGNORE = {metadata.MUTATION: metadata.IGNORE_MUTATION}
OPTS = planner.PlanOptions("root", "c0ffee")


def configmap(name: str, value: str, annotations: dict[str, str] | None = None) -> Manifest:
    meta: dict[str, Any] = {"name": name, "namespace": "a"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}, f"{name}.yaml"
    )


def live(obj: Manifest, sync: str | None, **data: str) -> dict[str, Any]:
    body = ownership.stamp(obj, sync, "0ld") if sync else obj.body
    meta = {**body["metadata"], "uid": f"uid-{obj.id.name}"}
    return {**body, "metadata": meta, **({"data": data} if data else {})}


def plan_and_apply(
    declared: list[Manifest], current: dict[ObjectId, dict[str, Any]], inventory: set[ObjectId] | None = None
) -> tuple[ChangeSet, FakeCluster]:
    changes = planner.plan(declared, current, inventory or set(), OPTS)
    cluster = FakeCluster()
    run(cluster, *changes.changes)
    return changes, cluster


def test_a_missing_object_is_created_in_full() -> None:
    obj = configmap("seed", "v1", IGNORE)
    changes, cluster = plan_and_apply([obj], {})
    [change] = changes.changes
    assert change.action is Action.CREATE
    [call] = cluster.sent
    assert (call.method, call.path) == ("PATCH", cm("seed"))
    assert call.body["data"] == {"k": "v1"}
    assert call.body["metadata"]["annotations"][metadata.MUTATION] == "ignore"


def test_an_owned_object_edited_live_or_changed_in_git_is_left_alone() -> None:
    before = configmap("seed", "v1", IGNORE)
    changed_in_git = configmap("seed", "v2", IGNORE)
    edited_live = live(before, "root", k="edited")
    changes, cluster = plan_and_apply([changed_in_git], {before.id: edited_live})
    [change] = changes.changes
    assert change.action is Action.UNCHANGED
    assert metadata.MUTATION in change.reason
    assert cluster.writes == []


def test_without_the_annotation_the_same_object_is_updated() -> None:
    before = configmap("seed", "v1")
    changes, cluster = plan_and_apply([configmap("seed", "v2")], {before.id: live(before, "root")})
    assert [c.action for c in changes.changes] == [Action.UPDATE]
    assert cluster.writes == [("PATCH", cm("seed"))]


def test_removing_the_annotation_from_git_applies_the_declared_object_again() -> None:
    ignored = configmap("seed", "v1", IGNORE)
    edited_live = live(ignored, "root", k="edited")
    changes, cluster = plan_and_apply([configmap("seed", "v1")], {ignored.id: edited_live})
    assert [c.action for c in changes.changes] == [Action.UPDATE]
    [call] = [c for c in cluster.sent if c.method == "PATCH"]
    assert call.body["data"] == {"k": "v1"}


def test_an_unowned_object_is_adopted_with_the_marks_only() -> None:
    obj = configmap("seed", "v1", IGNORE)
    theirs = live(configmap("seed", "someone-elses"), None)
    changes, cluster = plan_and_apply([obj], {obj.id: theirs})
    [change] = changes.changes
    assert change.action is Action.UPDATE
    [call] = [c for c in cluster.sent if c.method == "PATCH"]
    assert "data" not in call.body
    assert call.body["metadata"]["labels"] == {
        metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY,
        metadata.SYNC_LABEL: "root",
    }
    annotations = call.body["metadata"]["annotations"]
    assert annotations[metadata.MUTATION] == "ignore"
    assert annotations[metadata.DECLARED_HASH] == obj.digest
    assert set(call.body["metadata"]) == {"name", "namespace", "labels", "annotations"}


def test_an_object_another_sync_owns_is_still_a_conflict() -> None:
    obj = configmap("seed", "v1", IGNORE)
    changes, cluster = plan_and_apply([obj], {obj.id: live(obj, "other")})
    assert [c.action for c in changes.changes] == [Action.SKIP]
    assert [p.code.id for p in changes.problems] == ["KNV1060"]
    assert cluster.writes == []


def test_an_ignored_object_is_still_managed_and_pruned_when_it_leaves_the_source() -> None:
    obj = configmap("seed", "v1", IGNORE)
    current = {obj.id: live(obj, "root", k="edited")}
    assert planner.manageable([obj], current, OPTS) == {obj.id}
    changes, cluster = plan_and_apply([], current, {obj.id})
    [change] = changes.changes
    assert change.action is Action.PRUNE
    assert cluster.writes == [("DELETE", cm("seed"))]


def test_the_applier_reports_an_ignored_object_unchanged() -> None:
    obj = configmap("seed", "v1", IGNORE)
    changes = planner.plan([obj], {obj.id: live(obj, "root", k="edited")}, set(), OPTS)
    results, _ = run(FakeCluster(), *changes.changes)
    assert [r.outcome for r in results] == [Outcome.UNCHANGED]


class RepairCluster(FakeCluster):
    """Drift repair sends one write at a time through ``request``, then records an Event:
    recorded and answered."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "PATCH" or (method == "POST" and path.endswith("/events")):
            self.sent.append(
                Call(method, path, kwargs.get("query"), kwargs.get("body"), kwargs.get("content_type"))
            )
            return None
        return super().request(method, path, **kwargs)


def test_drift_repair_leaves_an_edit_alone_and_recreates_a_deletion_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    obj = configmap("seed", "v1", IGNORE)
    theirs = live(configmap("seed", "someone-elses"), None)
    changes = planner.plan([obj], {obj.id: theirs}, set(), OPTS)  # adopted with the marks only
    cluster = RepairCluster()
    discovery = Discovery(cluster)
    as_cluster: Any = cluster  # answers what drift repair asks of a Cluster
    remediator = Remediator(as_cluster, discovery, "root", metrics=Metrics(), allowed=lambda: True)
    monkeypatch.setattr(remediator, "_resources", lambda _addresses: [])  # no watch threads
    remediator.update(changes)
    resource = discovery.resource(GroupKind("", "ConfigMap"), "v1")
    assert resource is not None

    edited = {**theirs, "data": {"k": "edited"}}
    remediator.observe(resource, "MODIFIED", edited)
    assert cluster.writes == []

    remediator.observe(resource, "DELETED", edited)
    [call, event] = [c for c in cluster.sent if c.method != "GET"]
    assert (call.method, call.path) == ("PATCH", cm("seed"))
    assert event.body["reason"] == "DriftRepaired"
    assert event.body["message"] == "ConfigMap a/seed was deleted by an unknown user; declared state restored"
    assert call.body["data"] == {"k": "v1"}
    assert call.body["metadata"]["labels"][metadata.SYNC_LABEL] == "root"
