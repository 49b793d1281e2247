"""UPDATE and DELETE reviews: the request each engine sees (operation, oldObject, userInfo), and
gator suites whose AdmissionReviews carry them, run against a Rego and a CEL template."""

from __future__ import annotations

from pathlib import Path

from acm_lite.policy import review, verify

SUITE = Path(__file__).parent / "update_suite" / "suite.yaml"
OLD = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}
NEW = {**OLD, "spec": {"replicas": 2}}


def test_a_create_has_no_old_object() -> None:
    built = review.review_of(NEW)
    assert built["operation"] == "CREATE" and built["oldObject"] is None and built["object"] is NEW
    assert built["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert (built["name"], built["namespace"]) == ("web", "shop")
    assert built["userInfo"] == review.USER


def test_an_update_carries_the_old_object() -> None:
    built = review.review_of(NEW, "UPDATE", OLD)
    assert built["operation"] == "UPDATE" and built["object"] is NEW and built["oldObject"] is OLD


def test_a_delete_reviews_the_old_object_in_rego_and_none_in_cel() -> None:
    built = review.review_of(OLD, "DELETE", OLD)
    assert built["object"] is OLD and built["oldObject"] is OLD
    obj, old, request = review.cel_inputs(OLD, "DELETE", OLD)
    assert obj is None and old is OLD and request["operation"] == "DELETE"
    assert "object" not in request and "oldObject" not in request


def test_an_admission_requests_own_fields_are_kept() -> None:
    alice = {"username": "alice", "groups": ["devs"]}
    request = {"userInfo": alice, "uid": "7", "object": {"ignored": True}, "operation": "CREATE"}
    built = review.review_of(NEW, "UPDATE", OLD, request)
    assert built["userInfo"] == alice and built["uid"] == "7"
    assert built["operation"] == "UPDATE" and built["object"] is NEW  # the subject's, not the request's


def test_a_subject_serialises_its_own_operation() -> None:
    subject = review.Subject(NEW, "d.yaml", None, "Original", operation="UPDATE", old=OLD)
    assert '"operation": "UPDATE"' in subject.review_json()
    assert '"oldObject": {"apiVersion": "apps/v1"' in subject.review_json()


def test_update_cases_reach_both_engines() -> None:
    results = list(verify.run_suite(SUITE))
    assert len(results) == 12
    failed = [(r.test, r.case, r.message) for r in results if not r.passed]
    assert not failed
    assert {r.test for r in results} == {"rego", "cel"}


def test_an_admission_review_without_an_object_fails_the_case(tmp_path: Path) -> None:
    for name in ("template-cel.yaml", "constraint-cel.yaml"):
        (tmp_path / name).write_text((SUITE.parent / name).read_text())
    (tmp_path / "empty.yaml").write_text(
        "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {operation: UPDATE}\n"
    )
    (tmp_path / "bad-op.yaml").write_text(
        "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n"
        "request: {operation: PATCH, object: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}}\n"
    )
    (tmp_path / "delete-new.yaml").write_text(
        "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n"
        "request: {operation: DELETE, object: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}}\n"
    )
    (tmp_path / "suite.yaml").write_text(
        "apiVersion: test.gatekeeper.sh/v1alpha1\nkind: Suite\ntests:\n"
        "- name: t\n  template: template-cel.yaml\n  constraint: constraint-cel.yaml\n"
        "  cases:\n  - {name: empty, object: empty.yaml}\n  - {name: bad-op, object: bad-op.yaml}\n"
        "  - {name: delete-new, object: delete-new.yaml}\n"
    )
    results = {r.case: r for r in verify.run_suite(tmp_path / "suite.yaml")}
    assert not results["empty"].passed and "ACM3006" in results["empty"].message
    assert 'no "object" or "oldObject"' in results["empty"].message
    assert not results["bad-op"].passed and "request.operation must be one of" in results["bad-op"].message
    assert not results["delete-new"].passed and "needs its oldObject" in results["delete-new"].message


def _rego_template(name: str, rego: str) -> dict[str, object]:
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": name.lower()},
        "spec": {
            "crd": {"spec": {"names": {"kind": name}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}],
        },
    }


def test_only_templates_that_mention_old_object_are_handed_it() -> None:
    """An UPDATE review is serialised with oldObject for templates whose code names it, and with
    it null for the rest (which cannot read it but by building the key at run time)."""
    from acm_lite.objects import Manifest
    from acm_lite.policy import model

    reads = 'package reads\nviolation[{"msg": "has old"}] { input.review.oldObject.metadata.name }\n'
    hides = (
        "package hides\n"
        'violation[{"msg": "has old"}] { input.review[concat("", ["old", "Object"])].metadata.name }\n'
    )
    objs = [Manifest(_rego_template(n, r), f"{n}.yaml") for n, r in (("Reads", reads), ("Hides", hides))]
    for kind in ("Reads", "Hides"):
        constraint = {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": kind,
            "metadata": {"name": "c"},
        }
        objs.append(Manifest(constraint, "c.yaml"))
    policies = model.build(objs)
    assert [c.template.reads_old for c in policies.constraints] == [True, False]
    subject = review.Subject(NEW, "d.yaml", None, "Original", operation="UPDATE", old=OLD)
    found = {c.kind: [v.message for v in review.check(c, subject)] for c in policies.constraints}  # type: ignore[union-attr]
    assert found == {"Reads": ["has old"], "Hides": []}
