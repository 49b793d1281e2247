"""Drift forensics from ``metadata.managedFields``: the field managers other than acm-lite that own
a changed declared field are blamed, the most recent first; an entry owning only undeclared fields
is not; the record survives a round trip through the ResourceStatus entry, the health tracker and
``status --resources``; a hostile object cannot make it unbounded."""

from __future__ import annotations

import datetime as dt
from typing import Any

from acm_lite import api
from acm_lite.cli.status import _drift_text, _resource_text
from acm_lite.objects import ObjectId
from acm_lite.reconcile import forensics, healthstage
from acm_lite.reconcile.healthtrack import HealthTracker
from acm_lite.status import resources, resourcestore
from acm_lite.status.resources import Blame, Drift, Entry
from tests.unit.test_healthtrack import SYNC, Server, deployment

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
DECLARED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}},
    },
}


def entry(manager: str, operation: str, time: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


ACM = entry(
    api.FIELD_MANAGER,
    "Apply",
    "2026-01-02T03:00:00Z",
    {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}
            }
        },
    },
)
CONTROLLER = entry(
    "kube-controller-manager",
    "Update",
    "2026-01-02T03:03:00Z",
    {"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}},
)


def live(
    *managed: dict[str, Any], replicas: int = 2, image: str = "nginx:1.25", app: str = "web"
) -> dict[str, Any]:
    return {
        **DECLARED,
        "metadata": {**DECLARED["metadata"], "labels": {"app": app}, "managedFields": list(managed)},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def test_kubectl_edit_is_blamed_as_an_update_by_kubectl_edit() -> None:
    edit = entry("kubectl-edit", "Update", "2026-01-02T03:04:00Z", {"f:spec": {"f:replicas": {}}})
    drift = forensics.attribute(DECLARED, live(ACM, CONTROLLER, edit, replicas=5), now=NOW)
    assert (drift.manager, drift.operation, drift.fields) == ("kubectl-edit", "Update", ("spec.replicas",))
    assert drift.time == "2026-01-02T03:04:05Z"
    assert drift.managers[0].time == "2026-01-02T03:04:00Z"
    assert forensics.describe(drift) == "by kubectl-edit (Update)"


def test_a_server_side_apply_with_a_custom_field_manager_is_blamed_as_an_apply() -> None:
    ops = entry(
        "ops-oncall",
        "Apply",
        "2026-01-02T03:04:00Z",
        {
            "f:spec": {
                "f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}}}}}
            }
        },
    )
    drift = forensics.attribute(DECLARED, live(ACM, ops, image="nginx:evil"), now=NOW)
    assert (drift.manager, drift.operation) == ("ops-oncall", "Apply")
    assert drift.fields == ("spec.template.spec.containers",)


def test_kubectl_patch_is_blamed_and_several_managers_are_listed_most_recent_first() -> None:
    patch = entry(
        "kubectl-patch", "Update", "2026-01-02T03:04:00Z", {"f:metadata": {"f:labels": {"f:app": {}}}}
    )
    older = entry("kubectl-edit", "Update", "2026-01-02T03:01:00Z", {"f:spec": {"f:replicas": {}}})
    drift = forensics.attribute(DECLARED, live(ACM, older, patch, replicas=3, app="other"), now=NOW)
    assert [b.manager for b in drift.managers] == ["kubectl-patch", "kubectl-edit"]
    assert drift.manager == "kubectl-patch"
    assert set(drift.fields) == {"metadata.labels.app", "spec.replicas"}
    assert forensics.describe(drift) == "by kubectl-patch (Update), kubectl-edit (Update)"
    assert len(drift.to_dict()["managers"]) == 2


def test_an_entry_owning_only_undeclared_fields_is_not_blamed() -> None:
    annotator = entry(
        "annotator", "Update", "2026-01-02T03:04:30Z", {"f:metadata": {"f:annotations": {"f:note": {}}}}
    )
    edit = entry("kubectl-edit", "Update", "2026-01-02T03:04:00Z", {"f:spec": {"f:replicas": {}}})
    drift = forensics.attribute(DECLARED, live(ACM, CONTROLLER, annotator, edit, replicas=1), now=NOW)
    assert [b.manager for b in drift.managers] == ["kubectl-edit"]


def test_acm_lite_itself_and_status_writers_are_never_blamed() -> None:
    status = {**entry("kubectl-edit", "Update", "2026-01-02T03:04:50Z", {"f:spec": {"f:replicas": {}}})}
    status["subresource"] = "status"
    drift = forensics.attribute(DECLARED, live(ACM, status, image="x"), now=NOW)
    assert drift.managers == ()
    assert drift.to_dict()["manager"] == "unknown"
    assert forensics.describe(drift) == "by an unknown field manager"


def test_a_deletion_has_no_manager_and_names_the_user_when_one_is_known() -> None:
    drift = forensics.attribute(DECLARED, None, user="alice", now=NOW)
    assert (drift.deleted, drift.operation, drift.user) == (True, "Delete", "alice")
    assert forensics.describe(drift) == "by alice"
    assert forensics.describe(forensics.attribute(DECLARED, None, now=NOW)) == "by an unknown user"


def test_a_user_is_named_with_the_manager() -> None:
    edit = entry("kubectl-edit", "Update", "2026-01-02T03:04:00Z", {"f:spec": {"f:replicas": {}}})
    drift = forensics.attribute(DECLARED, live(edit, replicas=5), user="bob", now=NOW)
    assert forensics.describe(drift) == "by kubectl-edit (Update) as bob"
    assert drift.to_dict()["user"] == "bob"


def test_hostile_managed_fields_are_bounded_and_never_raise() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for i in range(500):
        node[f"f:x{i}"] = {}
        node = node[f"f:x{i}"]
    wide = {f"f:k{i}": {} for i in range(100_000)}
    junk: list[Any] = [
        None,
        "text",
        {"manager": 7},
        {"manager": "m", "fieldsV1": "not a map"},
        {"manager": "deep", "time": 5, "operation": ["x"], "fieldsV1": deep},
        {"manager": "wide", "fieldsV1": wide},
    ] + [entry(f"m{i}" * 200, "Update", "t", {"f:spec": {"f:replicas": {}}}) for i in range(1000)]
    drift = forensics.attribute(DECLARED, live(*junk, replicas=9), now=NOW)
    assert len(drift.managers) == resources.MAX_DRIFT_MANAGERS
    assert all(len(b.manager) <= resources.MAX_NAME for b in drift.managers)
    assert len(forensics.owned_fields(wide)) == forensics.MAX_PATHS
    assert max(len(p) for p in forensics.owned_fields(deep)) <= forensics.MAX_DEPTH
    many = {f"k{i}": "v" for i in range(1000)}
    changed = forensics.attribute({"data": many}, {"data": {}}, now=NOW)
    assert len(changed.fields) == resources.MAX_DRIFT_FIELDS


def test_the_drift_round_trips_through_the_entry_and_hostile_ones_read_back_bounded() -> None:
    drift = Drift(
        "2026-01-02T03:04:05Z", (Blame("kubectl-edit", "Update", "t1"), Blame("ops", "Apply")), "al"
    )
    drift = Drift(drift.time, drift.managers, drift.user, ("spec.replicas",))
    found = Entry(ObjectId("apps", "Deployment", "team", "web"), "Current", drift=drift)
    assert Entry.from_dict(found.to_dict()) == found
    hostile = {
        **found.to_dict(),
        "lastDrift": {"time": "t", "manager": "x" * 10_000, "fields": [1, "a"] * 50},
    }
    back = Entry.from_dict(hostile)
    assert back is not None and back.drift is not None
    assert len(back.drift.manager) <= resources.MAX_NAME and back.drift.fields == ("a",) * 4
    assert Entry.from_dict({**found.to_dict(), "lastDrift": "nonsense"}) == Entry(found.id, "Current")


def test_the_tracker_keeps_the_drift_across_events_and_passes_and_writes_it() -> None:
    server = Server()
    oid = ObjectId("apps", "Deployment", "team", "web")
    table = [healthstage.entry(oid, deployment(1))]
    stored, _ = resourcestore.write(server, SYNC, table, {})
    tracker = HealthTracker(server, SYNC, timeout=60)
    tracker.reset(table, stored=stored, written=set())
    drift = Drift("2026-01-02T03:04:05Z", (Blame("kubectl-edit", "Update"),), fields=("spec.replicas",))
    tracker.drifted(oid, drift)
    tracker.observe(oid, deployment(0))
    assert tracker.flush() >= 1
    written = resourcestore.entries(resourcestore.read(server, SYNC))
    assert written[0].drift == drift and written[0].status != "Current"
    tracker.reset(table, stored=resourcestore.read(server, SYNC), written=set())  # a pass
    assert tracker.entries()[0].drift == drift


def test_status_resources_shows_the_last_drift() -> None:
    drift = Drift("2026-01-02T03:04:05Z", (Blame("kubectl-edit", "Update"),), "alice", ("spec.replicas",))
    row = {
        "sync": "root-sync",
        **Entry(ObjectId("apps", "Deployment", "team", "web"), "Current", drift=drift).to_dict(),
    }
    text = _resource_text({"resources": [row]})
    assert "LAST DRIFT" in text
    assert "2026-01-02T03:04:05Z kubectl-edit (Update) as alice" in text
    assert _drift_text({"time": "t", "manager": "unknown", "operation": "Delete"}) == "t deleted"
    assert _drift_text(None) == ""


def test_an_edit_seen_without_its_body_is_not_taken_for_a_deletion() -> None:
    drift = forensics.attribute(DECLARED, None, deleted=False, now=NOW)
    assert (drift.deleted, drift.operation, drift.managers) == (False, "", ())
    assert forensics.describe(drift) == "by an unknown field manager"
