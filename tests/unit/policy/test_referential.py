"""Which kinds' live objects data.inventory holds (Gatekeeper's Config and SyncSets, else what the
templates reference), how they join the declared set, and the reviews a live object turns into."""

from __future__ import annotations

import json
from typing import Any

import pytest

from acm_lite import policy
from acm_lite.objects import Manifest, ObjectId
from acm_lite.policy import model, referential, review
from acm_lite.policy.referential import SyncKind


def _template(name: str, rego: str, annotations: dict[str, str] | None = None) -> Manifest:
    meta: dict[str, Any] = {"name": name.lower()}
    if annotations:
        meta["annotations"] = annotations
    return Manifest(
        {
            "apiVersion": "templates.gatekeeper.sh/v1",
            "kind": "ConstraintTemplate",
            "metadata": meta,
            "spec": {
                "crd": {"spec": {"names": {"kind": name}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}],
            },
        },
        f"{name}.yaml",
    )


def _constraint(kind: str, groups: list[str], kinds: list[str], action: str = "deny") -> Manifest:
    return Manifest(
        {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": kind,
            "metadata": {"name": kind.lower()},
            "spec": {
                "enforcementAction": action,
                "match": {"kinds": [{"apiGroups": groups, "kinds": kinds}]},
            },
        },
        f"{kind}-c.yaml",
    )


UNIQUE_LABEL = (
    "package uniquelabel\n"
    'violation[{"msg": msg}] {\n'
    "  value := input.review.object.metadata.labels.team\n"
    "  other := data.inventory.namespace[ns][_].ConfigMap[name]\n"
    "  other.metadata.labels.team == value\n"
    "  not same(ns, name)\n"
    '  msg := sprintf("team %v is taken by %v/%v", [value, ns, name])\n'
    "}\n"
    "same(ns, name) {\n"
    "  ns == input.review.object.metadata.namespace\n"
    "  name == input.review.object.metadata.name\n"
    "}\n"
)
PLAIN = 'package plain\nviolation[{"msg": "no"}] { input.review.object.metadata.name == "never" }\n'


def _config(entries: Any, name: str = "config") -> Manifest:
    body = {
        "apiVersion": "config.gatekeeper.sh/v1alpha1",
        "kind": "Config",
        "metadata": {"name": name, "namespace": "gatekeeper-system"},
        "spec": {"sync": {"syncOnly": entries}},
    }
    return Manifest(body, "config.yaml")


def _syncset(entries: Any) -> Manifest:
    body = {"apiVersion": "syncset.gatekeeper.sh/v1alpha1", "kind": "SyncSet", "metadata": {"name": "s"}}
    return Manifest({**body, "spec": {"gvks": entries}}, "syncset.yaml")


def test_by_default_the_kinds_a_referential_rego_templates_constraints_match() -> None:
    found = referential.wanted(
        [
            _template("UniqueLabel", UNIQUE_LABEL),
            _constraint("UniqueLabel", [""], ["ConfigMap", "*"]),
            _template("Plain", PLAIN),
            _constraint("Plain", ["apps"], ["Deployment"]),
        ]
    )
    assert found.kinds == [SyncKind("", "", "ConfigMap")] and not found.configured and not found.problems


def test_the_requires_sync_data_annotation_adds_its_kinds() -> None:
    annotation = json.dumps([[{"groups": [""], "versions": ["v1"], "kinds": ["Namespace", "Service"]}]])
    found = referential.wanted(
        [
            _template("Plain", PLAIN, {referential.REQUIRES_SYNC_DATA: annotation}),
            _constraint("Plain", [""], ["Pod"]),
        ]
    )
    assert found.kinds == [SyncKind("", "v1", "Namespace"), SyncKind("", "v1", "Service")]


def test_a_config_and_syncsets_replace_the_default() -> None:
    found = referential.wanted(
        [
            _template("UniqueLabel", UNIQUE_LABEL),
            _constraint("UniqueLabel", [""], ["ConfigMap"]),
            _config([{"group": "", "version": "v1", "kind": "Namespace"}]),
            _syncset([{"group": "apps", "version": "v1", "kind": "Deployment"}]),
            _config([{"group": "", "version": "v1", "kind": "Secret"}], name="not-config"),  # ignored
        ]
    )
    assert found.configured and not found.problems
    assert found.kinds == [SyncKind("", "v1", "Namespace"), SyncKind("apps", "v1", "Deployment")]


@pytest.mark.parametrize(
    ("entries", "wrong"),
    [
        ("Namespace", "spec.sync.syncOnly must be a list"),
        ([{"group": "", "version": "v1"}], "spec.sync.syncOnly[0].kind is missing"),
        ([{"group": 1, "kind": "Pod"}], "spec.sync.syncOnly[0] must be an object of strings"),
        (["Pod"], "spec.sync.syncOnly[0] must be an object of strings"),
    ],
)
def test_a_malformed_config_is_a_coded_problem(entries: Any, wrong: str) -> None:
    [problem] = referential.wanted([_config(entries)]).problems
    assert problem.code.id == "ACM3010" and wrong in problem.message
    assert problem.obj is not None and problem.obj["kind"] == "Config"
    # and the policy stage reports it, offline as well
    assert [p.code.id for p in policy.check([], [_config(entries)])] == ["ACM3010"]


@pytest.mark.parametrize("annotation", ["not json", '{"groups": []}', '[[{"groups": "core"}]]', "[[1]]"])
def test_a_malformed_requires_sync_data_annotation_is_a_coded_problem(annotation: str) -> None:
    found = referential.wanted([_template("Plain", PLAIN, {referential.REQUIRES_SYNC_DATA: annotation})])
    assert [p.code.id for p in found.problems] == ["ACM3010"]


@pytest.mark.parametrize(
    "template",
    [
        {"spec": {"targets": [{"libs": 5, "rego": 3}]}},
        {"spec": {"targets": "x"}},
        {"spec": {"targets": [{"code": [{"engine": "Rego", "source": {"libs": 7}}, 4]}]}},
        {"metadata": {"name": "t", "annotations": {referential.REQUIRES_SYNC_DATA: 5}}},
    ],
)
def test_malformed_templates_never_crash_the_reading(template: dict[str, Any]) -> None:
    body = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "t"},
    }
    found = referential.wanted([Manifest({**body, **template}, "t.yaml"), _constraint("T", [""], ["Pod"])])
    assert found.kinds == []


def test_a_cel_template_reads_no_inventory() -> None:
    template = _template("UniqueLabel", UNIQUE_LABEL)
    target = template.body["spec"]["targets"][0]
    target["code"] = [{"engine": "K8sNativeValidation", "source": {"validations": [{"expression": "true"}]}}]
    assert referential.wanted([template, _constraint("UniqueLabel", [""], ["ConfigMap"])]).kinds == []


def _cm(name: str, namespace: str, team: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": team}},
    }


def _oid(body: dict[str, Any]) -> ObjectId:
    return ObjectId("", body["kind"], body["metadata"]["namespace"], body["metadata"]["name"])


def test_declared_wins_and_pruned_objects_are_left_out() -> None:
    declared_body, other, going = _cm("mine", "a", "red"), _cm("theirs", "b", "blue"), _cm("old", "c", "red")
    live_mine = _cm("mine", "a", "blue")  # its live self, about to change
    live = [(_oid(b), b) for b in (live_mine, other, going)]
    kept = referential.live_inventory(live, {_oid(declared_body)}, {_oid(going)})
    assert kept == [other]


def _policies() -> list[Manifest]:
    return [_template("UniqueLabel", UNIQUE_LABEL), _constraint("UniqueLabel", [""], ["ConfigMap"])]


def test_a_live_object_outside_the_repository_conflicts() -> None:
    declared = [Manifest(_cm("mine", "a", "red"), "mine.yaml")]
    theirs = _cm("theirs", "b", "red")
    assert policy.check(declared, _policies()) == []  # offline: the declared set only
    [problem] = policy.check(declared, _policies(), live=policy.Live(inventory=[theirs]))
    assert problem.code.id == "ACM3100" and "team red is taken by b/theirs" in problem.message
    assert problem.obj is not None and problem.obj["name"] == "mine"


def test_declared_objects_shadow_their_live_selves_in_the_inventory() -> None:
    """The declared body is what data.inventory holds for an identity, even when a live body at
    the same identity is handed in (the post-commit state)."""
    declared = [Manifest(_cm("mine", "a", "red"), "mine.yaml"), Manifest(_cm("other", "b", "blue"), "o.yaml")]
    stale = _cm("other", "b", "red")  # live, but the commit changes it to blue
    assert policy.check(declared, _policies(), live=policy.Live(inventory=[stale])) == []


def test_an_existing_object_is_reviewed_as_an_update_with_its_live_self() -> None:
    body = _cm("mine", "a", "red")
    old = {**_cm("mine", "a", "red"), "metadata": {**body["metadata"], "resourceVersion": "7"}}
    policies = model.build([_template("Plain", PLAIN), _constraint("Plain", [""], ["ConfigMap"])])
    found, _ = review.subjects(
        [Manifest(body, "m.yaml"), Manifest(_cm("new", "a", "x"), "n.yaml")], policies, {}, {_oid(body): old}
    )
    assert [(s.operation, s.old) for s in found] == [("UPDATE", old), ("CREATE", None)]
    assert json.loads(found[0].review_json())["oldObject"]["metadata"]["resourceVersion"] == "7"
