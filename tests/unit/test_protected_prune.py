"""Protected objects (``default``, ``kube-*``, acm-lite's namespace and kinds) are never deleted:
the plan unmanages them when they leave the source, and the applier refuses a DELETE of one even
if a plan asked for it."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite import api
from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.cluster.client import Call
from acm_lite.objects import Manifest, ObjectId
from acm_lite.plan import ownership, planner
from acm_lite.plan.changeset import Action, Change, ChangeSet, Outcome

PROTECTED = ["default", "kube-system", "kube-public", "kube-node-lease", "kube-foo", api.SYSTEM_NAMESPACE]


def namespace_id(name: str) -> ObjectId:
    return ObjectId("", "Namespace", "", name)


def adopted(oid: ObjectId, sync: str = "root") -> dict[str, Any]:
    """A live object this sync adopted: its body with acm-lite's marks."""
    body = {
        "apiVersion": "v1" if not oid.group else f"{oid.group}/v1alpha1",
        "kind": oid.kind,
        "metadata": {"name": oid.name, **({"namespace": oid.namespace} if oid.namespace else {})},
    }
    stamped = ownership.stamp(Manifest(body, "x.yaml", 0), sync, "c0ffee")
    return {**stamped, "metadata": {**stamped["metadata"], "uid": f"uid-{oid.name}"}}


@pytest.mark.parametrize("name", PROTECTED)
def test_a_protected_namespace_that_left_the_source_is_unmanaged_not_pruned(name: str) -> None:
    oid = namespace_id(name)
    changes = planner.plan([], {oid: adopted(oid)}, {oid}, planner.PlanOptions("root"))
    assert [(c.id, c.action) for c in changes.changes] == [(oid, Action.UNMANAGE)]


def test_acm_lite_kinds_are_unmanaged_and_other_namespaces_still_pruned() -> None:
    own = ObjectId(api.GROUP, "RootSync", api.SYSTEM_NAMESPACE, "root-sync")
    team, kubelike = namespace_id("team"), namespace_id("kubernetes-team")  # no "kube-" prefix
    current = {oid: adopted(oid) for oid in (own, team, kubelike)}
    changes = planner.plan([], current, set(current), planner.PlanOptions("root"))
    assert {c.id: c.action for c in changes.changes} == {
        own: Action.UNMANAGE,
        team: Action.PRUNE,
        kubelike: Action.PRUNE,
    }


class _RecordingCluster:
    """Records the requests an applier sends; answers each with success."""

    def __init__(self) -> None:
        self.sent: list[Call] = []

    def request_many(self, calls: list[Call], _concurrency: int, on_answer: Any) -> None:
        for position, call in enumerate(calls):
            self.sent.append(call)
            on_answer(position, None)


class _Discovery:
    class _Resource:
        def path_of(self, oid: ObjectId) -> str:
            return f"/api/v1/namespaces/{oid.name}"

    def resource(self, _gk: object, _version: str | None = None) -> _Resource:
        return self._Resource()

    def find(self, _gk: object, _version: str | None = None, *, fallback: bool = False) -> _Resource:
        return self._Resource()


@pytest.mark.parametrize("name", PROTECTED)
def test_the_applier_refuses_to_delete_a_protected_namespace(name: str) -> None:
    oid = namespace_id(name)
    cluster = _RecordingCluster()
    applier = Applier(cluster, _Discovery(), ApplyOptions())  # type: ignore[arg-type]
    results = applier.run(ChangeSet([Change(Action.PRUNE, oid, "forged", live=adopted(oid))]))
    assert cluster.sent == []
    assert [(r.outcome, r.problem.code.id if r.problem else None) for r in results] == [
        (Outcome.FAILED, "ACM2020")
    ]


def test_the_applier_still_deletes_an_ordinary_namespace() -> None:
    oid = namespace_id("team")
    cluster = _RecordingCluster()
    applier = Applier(cluster, _Discovery(), ApplyOptions())  # type: ignore[arg-type]
    results = applier.run(ChangeSet([Change(Action.PRUNE, oid, "left", live=adopted(oid))]))
    assert [c.method for c in cluster.sent] == ["DELETE"]
    assert [r.outcome for r in results] == [Outcome.PRUNED]
