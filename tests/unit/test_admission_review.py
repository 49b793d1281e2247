"""The admission webhook's decisions on AdmissionReviews, and hostile bodies answered, never a
crash."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from acm_lite import api, errors, metadata
from acm_lite.reconcile import admission_review
from acm_lite.reconcile.admission_review import MalformedReviewError, answer, decide

SELF = "system:serviceaccount:acm-lite-system:acm-lite"
MANAGED_LABELS = {metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY, metadata.SYNC_LABEL: "root-sync"}


def deployment(replicas: int = 3, image: str = "nginx:1", **meta: Any) -> dict[str, Any]:
    """A managed Deployment whose source declares replicas and the container's image."""
    fields = {
        "f:metadata": {
            "f:labels": {f"f:{k}": {} for k in MANAGED_LABELS},
            "f:annotations": {f"f:{metadata.SOURCE_PATH}": {}, f"f:{metadata.COMMIT}": {}},
        },
        "f:spec": {
            "f:replicas": {},
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:name": {}, "f:image": {}}}}
            },
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": dict(MANAGED_LABELS),
            "annotations": {metadata.SOURCE_PATH: "apps/web.yaml", metadata.COMMIT: "abc123"},
            "managedFields": [
                {
                    "manager": api.FIELD_MANAGER,
                    "operation": "Apply",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields,
                },
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
            ],
            **meta,
        },
        "spec": {
            "replicas": replicas,
            "paused": False,
            "template": {
                "spec": {"containers": [{"name": "web", "image": image}, {"name": "sidecar", "image": "s"}]}
            },
        },
    }


def request(op: str, old: Any = None, new: Any = None, user: str = "alice", **extra: Any) -> dict[str, Any]:
    out = {"uid": "u-1", "operation": op, "userInfo": {"username": user}, **extra}
    if old is not None:
        out["oldObject"] = old
    if new is not None:
        out["object"] = new
    return out


def edited(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    old = deployment()
    new = copy.deepcopy(old)
    for path, value in changes.items():
        target = new
        *parents, last = path.split("__")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return old, new


def test_a_declared_field_changed_by_a_person_is_denied_naming_sync_file_and_commit() -> None:
    old, new = edited(spec__replicas=5)
    verdict = decide(request("UPDATE", old, new), SELF)
    assert not verdict.allowed and verdict.code == 403
    assert verdict.message.startswith(errors.CHANGE_DENIED.id)
    for part in (
        "'alice'",
        "spec.replicas",
        "Deployment.apps shop/web",
        "'root-sync'",
        "apps/web.yaml",
        "abc123",
    ):
        assert part in verdict.message


def test_a_declared_list_item_by_key_is_protected_its_neighbours_are_not() -> None:
    old, new = edited(spec__template__spec__containers__0__image="evil:1")
    verdict = decide(request("UPDATE", old, new), SELF)
    assert not verdict.allowed and 'containers[{"name":"web"}].image' in verdict.message
    # removing the declared container altogether is a change to it too
    old, new = edited(spec__template__spec__containers=[{"name": "sidecar", "image": "s"}])
    assert not decide(request("UPDATE", old, new), SELF).allowed
    # the sidecar, injected by someone else, is not declared
    old, new = edited(spec__template__spec__containers__1__image="s:2")
    assert decide(request("UPDATE", old, new), SELF).allowed


def test_undeclared_fields_status_and_other_annotations_are_allowed() -> None:
    for change in (
        {"spec__paused": True},
        {"status": {"replicas": 2}},
        {
            "metadata__annotations": {
                metadata.SOURCE_PATH: "apps/web.yaml",
                metadata.COMMIT: "abc123",
                "team": "a",
            }
        },
    ):
        old, new = edited(**change)
        assert decide(request("UPDATE", old, new), SELF).allowed, change


def test_acm_lite_marks_are_protected_even_when_not_in_managed_fields() -> None:
    for key, value in ((metadata.SYNC_LABEL, "other"), (metadata.MANAGED_BY_LABEL, None)):
        old = deployment()
        old["metadata"]["managedFields"] = []
        new = copy.deepcopy(old)
        if value is None:
            del new["metadata"]["labels"][key]
        else:
            new["metadata"]["labels"][key] = value
        verdict = decide(request("UPDATE", old, new), SELF)
        assert not verdict.allowed and f"label {key}" in verdict.message
    old, new = edited(metadata__annotations={metadata.SOURCE_PATH: "x.yaml", metadata.COMMIT: "abc123"})
    assert f"annotation {metadata.SOURCE_PATH}" in decide(request("UPDATE", old, new), SELF).message


def test_deletion_and_creation_of_managed_objects_are_denied_with_exceptions() -> None:
    verdict = decide(request("DELETE", deployment()), SELF)
    assert not verdict.allowed and "may not delete" in verdict.message and "apps/web.yaml" in verdict.message
    assert not decide(request("CREATE", new=deployment()), SELF).allowed
    unmanaged = deployment()
    unmanaged["metadata"]["labels"] = {}
    assert decide(request("CREATE", new=unmanaged), SELF).allowed
    assert decide(request("DELETE", unmanaged), SELF).allowed
    # finishing a deletion already accepted; the namespace controller emptying a namespace; the
    # garbage collector removing an object whose owner is gone (but not one without owners)
    assert decide(request("DELETE", deployment(deletionTimestamp="2026-01-01T00:00:00Z")), SELF).allowed
    assert decide(request("DELETE", deployment(), user=admission_review.NAMESPACE_CONTROLLER), SELF).allowed
    owned = deployment(ownerReferences=[{"kind": "X", "name": "x", "uid": "1", "apiVersion": "v1"}])
    assert decide(request("DELETE", owned, user=admission_review.GARBAGE_COLLECTOR), SELF).allowed
    assert not decide(request("DELETE", deployment(), user=admission_review.GARBAGE_COLLECTOR), SELF).allowed


def test_acm_lite_itself_may_do_anything_but_take_over_another_syncs_object() -> None:
    old, new = edited(spec__replicas=9)
    assert decide(request("UPDATE", old, new, user=SELF), SELF).allowed
    assert decide(request("DELETE", deployment(), user=SELF), SELF).allowed
    old, new = edited(metadata__labels={**MANAGED_LABELS, metadata.SYNC_LABEL: "team-b"})
    verdict = decide(request("UPDATE", old, new, user=SELF), SELF)
    assert (verdict.allowed, verdict.code, verdict.reason) == (False, 409, "Conflict")
    assert verdict.message.startswith(errors.MANAGEMENT_CONFLICT.id)
    assert "'root-sync'" in verdict.message and "'team-b'" in verdict.message
    # unmarking (deletion propagation's Orphan) and adopting an unmanaged object pass
    old, new = edited(metadata__labels={})
    assert decide(request("UPDATE", old, new, user=SELF), SELF).allowed
    assert decide(request("UPDATE", new, old, user=SELF), SELF).allowed


def test_a_reposyncs_service_account_writes_its_own_syncs_objects_only() -> None:
    tenant = "system:serviceaccount:shop:ns-reconciler-shop"
    ours = {**MANAGED_LABELS, metadata.SYNC_LABEL: "ns-reconciler-shop"}
    old, new = edited(spec__replicas=9, metadata__labels=ours)
    old["metadata"]["labels"] = dict(ours)
    assert decide(request("UPDATE", old, new, user=tenant), SELF).allowed
    assert decide(request("DELETE", old, user=tenant), SELF).allowed
    assert decide(request("CREATE", new=new, user=tenant), SELF).allowed
    # the root sync's object, another namespace's, or a look-alike account elsewhere: as anyone else
    old, new = edited(spec__replicas=9)
    assert not decide(request("UPDATE", old, new, user=tenant), SELF).allowed
    assert not decide(request("DELETE", deployment(), user=tenant), SELF).allowed
    other = "system:serviceaccount:other:ns-reconciler-shop"
    old, new = edited(spec__replicas=9, metadata__labels=ours)
    old["metadata"]["labels"] = dict(ours)
    assert not decide(request("UPDATE", old, new, user=other), SELF).allowed
    # taking another sync's object over is the same conflict as for the daemon itself
    old, new = edited(metadata__labels=ours)
    verdict = decide(request("UPDATE", old, new, user=tenant), SELF)
    assert (verdict.allowed, verdict.code) == (False, 409)


def test_mutation_ignore_leaves_fields_to_others_but_not_marks() -> None:
    old = deployment()
    old["metadata"]["annotations"][metadata.MUTATION] = metadata.IGNORE_MUTATION
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 1
    assert decide(request("UPDATE", old, new), SELF).allowed
    new["metadata"]["labels"][metadata.SYNC_LABEL] = "x"
    assert not decide(request("UPDATE", old, new), SELF).allowed


def review(req: Any, **top: Any) -> bytes:
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req, **top}
    ).encode()


def test_answer_is_an_admission_review_with_the_uid() -> None:
    old, new = edited(spec__replicas=5)
    out = json.loads(answer(review(request("UPDATE", old, new)), SELF))
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == "u-1" and out["response"]["allowed"] is False
    assert out["response"]["status"]["code"] == 403
    out = json.loads(answer(review(request("UPDATE", old, old)), SELF))
    assert out["response"] == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"null",
        json.dumps({"kind": "Pod", "apiVersion": "v1"}).encode(),
        json.dumps(
            {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", "request": {}}
        ).encode(),
        review(None),
        review({"operation": "UPDATE"}),  # no uid
        review({"uid": 5}),
        review({"uid": "x" * 1000}),
        b"[" * 100_000 + b"]" * 100_000,  # nesting past the parser's recursion limit
    ],
)
def test_bodies_that_are_not_reviews_are_refused_as_malformed(body: bytes) -> None:
    with pytest.raises(MalformedReviewError):
        answer(body, SELF)


@pytest.mark.parametrize(
    "req",
    [
        {"uid": "u", "operation": "UPDATE"},  # no userInfo
        {"uid": "u", "operation": "UPDATE", "userInfo": {"username": 7}},
        request("UPDATE", None, deployment()),  # no oldObject
        request("DELETE"),
        request("CREATE"),
        request("UPDATE", "a string", deployment()),
        request("UPDATE", deployment(), [1]),
        request("UPDATE", {"metadata": "x"}, deployment()),
        request("UPDATE", deployment(managedFields="x"), deployment()),
        request("UPDATE", deployment(labels={**MANAGED_LABELS}, annotations=[1]), deployment()),
    ],
)
def test_reviews_with_malformed_requests_are_denied_with_400(req: dict[str, Any]) -> None:
    out = json.loads(answer(review(req), SELF))
    assert out["response"]["allowed"] is False
    assert out["response"]["status"]["code"] == 400
    assert "malformed AdmissionReview" in out["response"]["status"]["message"]


def test_hostile_managed_fields_and_objects_never_crash() -> None:
    hostile_keys = {
        "f:spec": {
            "k:not json": {"f:x": {}},
            "k:[1]": {},
            "v:{": {},
            "i:99999999999": {},
            "i:-1": {},
            "z:?": {},
        },
        "f:metadata": "not a map",
    }
    old = deployment()
    old["metadata"]["managedFields"][0]["fieldsV1"] = hostile_keys
    old["spec"] = [1, 2]  # not a map where the fields expect one
    new = copy.deepcopy(old)
    out = json.loads(answer(review(request("UPDATE", old, new)), SELF))
    assert out["response"]["uid"] == "u-1"  # answered, allowed or denied with 400
    # a deeply nested declared tree is walked to a bound, then compared whole
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["f:a"] = {}
        node = node["f:a"]
    node["f:b"] = {}
    old = deployment()
    old["metadata"]["managedFields"][0]["fieldsV1"] = deep
    value: Any = {"b": 1}
    for _ in range(200):
        value = {"a": value}
    old["a"] = value["a"]
    new = copy.deepcopy(old)
    assert decide(request("UPDATE", old, new), SELF).allowed
    new["a"] = {"a": 2}
    assert not decide(request("UPDATE", old, new), SELF).allowed


def test_long_values_are_cut_short_in_messages() -> None:
    old = deployment()
    old["metadata"]["annotations"][metadata.SOURCE_PATH] = "p" * 100_000
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 1
    verdict = decide(request("UPDATE", old, new, user="u" * 100_000), SELF)
    assert not verdict.allowed and len(verdict.message) < 2000


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def test_any_part_of_a_review_replaced_by_junk_is_answered_never_raised() -> None:
    """A fixed-seed fuzz: every node of an UPDATE review in turn, replaced by values of the wrong
    type, gives an AdmissionReview (allowed, or denied) or a 400, never another exception."""
    import random

    rng = random.Random(18)
    old, new = edited(spec__replicas=5)
    base = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request("UPDATE", old, new),
    }
    junk: list[Any] = [None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"a": [1]}, [[{}]]]
    cases = 0
    for path in _paths(base)[1:]:
        for value in rng.sample(junk, 4):
            mutated = copy.deepcopy(base)
            target: Any = mutated
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            try:
                out = json.loads(answer(json.dumps(mutated).encode(), SELF))
            except MalformedReviewError:
                continue
            assert isinstance(out["response"]["allowed"], bool)
            cases += 1
    assert cases > 400
