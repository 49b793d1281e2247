"""Every kind of write acm-lite sends, pinned as it goes on the wire: method, path and query,
headers and body bytes. The applier, drift repair, the status store and the inventory each write
through a real ``Cluster`` whose socket is a script. Pure: nothing is listening."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s_client

from acm_lite import api
from acm_lite.apply import inventory
from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.objects import GroupKind, Manifest, ObjectId
from acm_lite.plan.changeset import Action, Change, ChangeSet, Outcome
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.remediator import Remediator
from acm_lite.status import store
from acm_lite.status.model import State, SyncStatus
from tests.unit.apply import fakes

Sent = tuple[str, str, dict[str, str], bytes | None]
Answer = Callable[[str, str], tuple[int, Any]]

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON = "application/json"
SYSTEM = f"/apis/acm-lite.io/v1alpha1/namespaces/{api.SYSTEM_NAMESPACE}"
UNMANAGE = (
    b'{"metadata":{"labels":{"app.kubernetes.io/managed-by":null,"acm-lite.io/sync":null},'
    b'"annotations":{"acm-lite.io/source-path":null,"acm-lite.io/commit":null,'
    b'"acm-lite.io/declared-hash":null}}}'
)


def headers(content_type: str | None) -> dict[str, str]:
    return {
        "Accept": JSON,
        "User-Agent": "acm-lite",
        **({"Content-Type": content_type} if content_type else {}),
    }


class WireCluster(Cluster):
    """A Cluster whose socket is ``answer`` (method, path with query → status, JSON body); every
    request is recorded as it would be sent. Requests go out one at a time through ``_send``."""

    def __init__(self, answer: Answer):
        cfg = k8s_client.Configuration()
        cfg.host = "https://wire.invalid"
        super().__init__(cfg)
        self._transport = None
        self.answer = answer
        self.sent: list[Sent] = []

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        target = url[len(self.host) :]
        self.sent.append((method, target, headers, data))
        status, body = self.answer(method, target)
        return status, b"" if body is None else json.dumps(body).encode()

    @property
    def writes_sent(self) -> list[Sent]:
        return [s for s in self.sent if s[0] != "GET"]


def serving(answer: Answer | None = None) -> Answer:
    """Discovery of the built-in resources; ``answer`` (else 200 and an empty object) for the
    rest."""
    documents = fakes.discovery(fakes.BUILTIN)

    def answered(method: str, target: str) -> tuple[int, Any]:
        if method == "GET" and target in documents:
            return 200, documents[target]
        return answer(method, target) if answer else (200, {})

    return answered


WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "a"},
    "spec": {"replicas": 1},
}
CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cm", "namespace": "a"},
    "data": {"k": "v"},
}


def _cm_live(name: str, uid: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "a", **({"uid": uid} if uid else {})},
    }


def _changes() -> ChangeSet:
    web, cm = Manifest(WEB, "web.yaml"), Manifest(CM, "cm.yaml")
    return ChangeSet(
        [
            Change(Action.CREATE, web.id, "new", desired=WEB, manifest=web),
            Change(Action.UPDATE, cm.id, "changed", desired=CM, manifest=cm),
            Change(
                Action.UNMANAGE, ObjectId("", "ConfigMap", "a", "old"), "left", live=_cm_live("old", "u-0")
            ),
            Change(
                Action.PRUNE, ObjectId("", "ConfigMap", "a", "gone"), "left", live=_cm_live("gone", "u-1")
            ),
            Change(
                Action.PRUNE, ObjectId("", "ConfigMap", "a", "gone2"), "left", live=_cm_live("gone2", None)
            ),
        ]
    )


WEB_BODY = (
    b'{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",'
    b'"namespace":"a"},"spec":{"replicas":1}}'
)
CM_BODY = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"a"},"data":{"k":"v"}}'
DELETE_BODY = b'{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"'
DEPLOYMENTS = GroupKind("apps", "Deployment")


@pytest.mark.parametrize(
    ("options", "apply_query", "merge_query", "delete_query"),
    [
        (ApplyOptions(concurrency=1), "?fieldManager=acm-lite&force=true", "?fieldManager=acm-lite", ""),
        (
            ApplyOptions(concurrency=1, dry_run=True, prevalidated=frozenset({DEPLOYMENTS})),
            "?fieldManager=acm-lite&force=true&fieldValidation=Ignore&dryRun=All",
            "?fieldManager=acm-lite&dryRun=All",
            "?dryRun=All",
        ),
        (
            ApplyOptions(concurrency=1, field_manager="other", force_conflicts=False),
            "?fieldManager=other",
            "?fieldManager=other",
            "",
        ),
    ],
)
def test_the_applier_writes(
    options: ApplyOptions, apply_query: str, merge_query: str, delete_query: str
) -> None:
    cluster = WireCluster(serving())
    results = Applier(cluster, Discovery(cluster), options).run(_changes())
    assert {r.outcome for r in results} == {
        Outcome.CREATED,
        Outcome.CONFIGURED,
        Outcome.UNMANAGED,
        Outcome.PRUNED,
    }
    web_query = (
        apply_query
        if DEPLOYMENTS in options.prevalidated
        else apply_query.replace("&fieldValidation=Ignore", "")
    )
    cm_query = apply_query.replace("&fieldValidation=Ignore", "")
    assert cluster.writes_sent == [
        ("PATCH", "/apis/apps/v1/namespaces/a/deployments/web" + web_query, headers(APPLY), WEB_BODY),
        ("PATCH", "/api/v1/namespaces/a/configmaps/cm" + cm_query, headers(APPLY), CM_BODY),
        ("PATCH", "/api/v1/namespaces/a/configmaps/old" + merge_query, headers(MERGE), UNMANAGE),
        (
            "DELETE",
            "/api/v1/namespaces/a/configmaps/gone" + delete_query,
            headers(JSON),
            DELETE_BODY + b',"preconditions":{"uid":"u-1"}}',
        ),
        ("DELETE", "/api/v1/namespaces/a/configmaps/gone2" + delete_query, headers(JSON), DELETE_BODY + b"}"),
    ]


def test_drift_repair_writes() -> None:
    cluster = WireCluster(serving())
    discovery = Discovery(cluster)
    web = Manifest(WEB, "web.yaml")
    remediator = Remediator(cluster, discovery, "root", metrics=Metrics(), allowed=lambda: True)
    resource = discovery.resource(DEPLOYMENTS, "v1")
    remediator.repair(Change(Action.UPDATE, web.id, "", desired=WEB, manifest=web), resource, "edited")
    repair, event = cluster.writes_sent
    assert repair == (
        "PATCH",
        "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=acm-lite&force=true",
        headers(APPLY),
        WEB_BODY,
    )
    # then the Event saying who changed it (its name and times vary)
    assert event[:3] == ("POST", f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}/events", headers(JSON))
    said = json.loads(event[3])
    assert said["reason"] == "DriftRepaired" and said["involvedObject"]["name"] == "root"
    assert said["message"] == (
        "apps/Deployment a/web was edited by an unknown field manager; declared state restored"
    )


def _fresh_cluster() -> Answer:
    """Nothing of acm-lite installed; a CRD applied is Established from then on."""
    applied: set[str] = set()

    def answer(method: str, target: str) -> tuple[int, Any]:
        path = target.partition("?")[0]
        if method == "PATCH":
            applied.add(path)
            return 200, {}
        if path in applied:
            return 200, {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
        return 404, {"reason": "NotFound", "message": "not found"}

    return answer


def test_the_status_store_writes() -> None:
    cluster = WireCluster(_fresh_cluster())
    assert store.install(cluster)
    spec = {"git": {"repo": "https://example.com/r.git"}}
    store.write_spec(cluster, "root", spec, None)
    status = SyncStatus(State.SYNCED, commit="c0ffee", last_update="2024-01-02T03:04:05Z")
    assert store.write_status(cluster, "root", status, None)
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
    assert cluster.writes_sent == [
        *[
            (
                "PATCH",
                f"{crd_path}{crd['metadata']['name']}?fieldManager=acm-lite&force=true",
                headers(APPLY),
                json.dumps(crd, separators=(",", ":")).encode(),
            )
            for crd in api.crds()
        ],
        (
            "PATCH",
            f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}?fieldManager=acm-lite&force=true",
            headers(APPLY),
            b'{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"acm-lite-system",'
            b'"labels":{"app.kubernetes.io/part-of":"acm-lite"}}}',
        ),
        (
            "PATCH",
            f"{SYSTEM}/rootsyncs/root?fieldManager=acm-lite&force=true",
            headers(APPLY),
            b'{"apiVersion":"acm-lite.io/v1alpha1","kind":"RootSync","metadata":{"name":"root",'
            b'"namespace":"acm-lite-system"},"spec":{"git":{"repo":"https://example.com/r.git"}}}',
        ),
        (
            "PATCH",
            f"{SYSTEM}/rootsyncs/root/status",
            headers(MERGE),
            b'{"status":{"state":"SYNCED","commit":"c0ffee","lastSyncedCommit":null,"source":{"commit":"c0ffee",'
            b'"errors":[],"errorSummary":{"totalCount":0,"truncated":false,"errorCountAfterTruncation":0}},'
            b'"sync":{"commit":"c0ffee","errors":[],"errorSummary":{"totalCount":0,"truncated":false,'
            b'"errorCountAfterTruncation":0}},'
            b'"errors":[],"errorCount":0,"stage":"","counts":{},"durationSeconds":{},'
            b'"managedObjects":0,"message":"","lastUpdate":"2024-01-02T03:04:05Z"}}',
        ),
    ]


def test_a_status_without_a_render_removes_the_render_an_earlier_status_recorded() -> None:
    cluster = WireCluster(lambda _m, _t: (200, {}))
    rendering = {"commit": "c0ffee", "message": "Rendering succeeded"}
    rendered = SyncStatus(State.SYNCED, commit="c0ffee", rendering=rendering)
    assert store.write_status(cluster, "root", rendered, None)
    summary = {"totalCount": 0, "truncated": False, "errorCountAfterTruncation": 0}
    assert json.loads(cluster.writes_sent[-1][3] or b"")["status"]["rendering"] == {
        **rendering,
        "errors": [],
        "errorSummary": summary,
    }
    read = SyncStatus(State.SYNCED, commit="beef")
    assert store.write_status(cluster, "root", read, {"status": rendered.to_status()})
    assert (
        json.loads(cluster.writes_sent[-1][3] or b"")["status"]["rendering"] is None
    )  # merge patch: removed
    assert store.write_status(cluster, "root", read, {"status": SyncStatus(State.ERROR).to_status()})
    assert "rendering" not in json.loads(cluster.writes_sent[-1][3] or b"")["status"]  # nothing to remove


def _recorded_inventory(method: str, target: str) -> tuple[int, Any]:
    """One earlier generation of parts, a stray part without a generation, and the single
    object older versions wrote."""
    inventories = f"{SYSTEM}/resourceinventories"
    if method == "GET" and target.startswith(inventories + "?"):
        return 200, {
            "items": [
                {
                    "metadata": {
                        "name": "root.g1.0",
                        "labels": {"acm-lite.io/inventory": "root", "acm-lite.io/inventory-generation": "1"},
                    }
                },
                {"metadata": {"name": "root-stray", "labels": {"acm-lite.io/inventory": "root"}}},
            ]
        }
    if method == "GET" and target == f"{inventories}/root":
        return 200, {"metadata": {"name": "root", "uid": "u-legacy"}}
    return 200, {}


def test_the_inventory_writes() -> None:
    cluster = WireCluster(_recorded_inventory)
    assert inventory.write(cluster, "root", {ObjectId("", "ConfigMap", "a", "cm")}) is None
    inventories = f"{SYSTEM}/resourceinventories"
    assert cluster.writes_sent == [
        (
            "POST",
            f"{inventories}?fieldManager=acm-lite",
            headers(JSON),
            b'{"apiVersion":"acm-lite.io/v1alpha1","kind":"ResourceInventory","metadata":{'
            b'"name":"root.g2.0","namespace":"acm-lite-system","labels":{'
            b'"app.kubernetes.io/managed-by":"acm-lite","acm-lite.io/inventory":"root",'
            b'"acm-lite.io/inventory-generation":"2"},"annotations":{'
            b'"acm-lite.io/inventory-part":"0","acm-lite.io/inventory-parts":"1"}},'
            b'"spec":{"count":1,"objects":["/ConfigMap/a/cm"]}}',
        ),
        (
            "DELETE",
            f"{inventories}?labelSelector=acm-lite.io%2Finventory%3Droot%2C"
            "acm-lite.io%2Finventory-generation+in+%281%29",
            headers(None),
            None,
        ),
        ("DELETE", f"{inventories}/root-stray", headers(None), None),
        ("DELETE", f"{inventories}/root", headers(JSON), b'{"preconditions":{"uid":"u-legacy"}}'),
    ]
