"""The applier against a recording fake cluster: the order of its requests (levels, prunes last
in reverse), what it skips or postpones and why, CRD waits between levels, dry runs and the
version a prune is sent at. Pure: the integration tests run the same against a real server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.apply.wait import CRD_PATH
from acm_lite.cluster.client import ApiError, Call, Client
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError
from acm_lite.objects import Manifest, ObjectId, split_api_version
from acm_lite.plan.changeset import Action, Change, ChangeSet, Outcome, Result
from tests.unit.apply import fakes
from tests.unit.apply.fakes import Served

WIDGETS_V2 = Served("acme.io", "v2", "widgets", "Widget")
WIDGETS_V1 = Served("acme.io", "v1", "widgets", "Widget")
NOT_FOUND = ApiError(404, "NotFound", "not found")


def _no_answer(_position: int, _outcome: ApiError | AcmError | None) -> None:
    return None


class FakeCluster:
    """A ``Client`` that records every request but discovery's and answers from its fields:
    ``failing`` (path → the error its write gets), ``crds`` (a CRD's name → whether it is
    Established; any other is not found) and ``serves`` (a CRD's name → the resources the
    cluster serves once that CRD is applied and Established)."""

    def __init__(self, served: tuple[Served, ...] = fakes.BUILTIN) -> None:
        self.served = list(served)
        self.sent: list[Call] = []
        self.batches: list[list[Call]] = []
        self.failing: dict[str, ApiError | AcmError] = {}
        self.crds: dict[str, dict[str, Any]] = {}
        self.establish = True  # whether a CRD applied becomes Established
        self.serves: dict[str, tuple[Served, ...]] = {}
        # an object's path → the bodies successive reads of it return (the last one repeats);
        # a list of a collection returns the current body of each object below it
        self.objects: dict[str, list[dict[str, Any]]] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        decode: bool = True,
    ) -> Any:
        documents = fakes.discovery(tuple(self.served))
        if method == "GET" and path in documents:
            return documents[path]
        self.sent.append(Call(method, path, query, body, content_type))
        if method == "GET" and path.startswith(CRD_PATH):
            crd = self.crds.get(path[len(CRD_PATH) :])
            if crd is None:
                raise NOT_FOUND
            return crd
        if method == "GET" and path in self.objects:
            bodies = self.objects[path]
            return bodies.pop(0) if len(bodies) > 1 else bodies[0]
        if method == "GET" and (query or {}).get("labelSelector"):
            below = [p for p in self.objects if p.rpartition("/")[0] == path]
            return {"items": [self.objects[p][0] for p in below], "metadata": {}}
        if method == "GET" and path.startswith("/api"):
            raise NOT_FOUND
        raise AssertionError(f"the applier sent an unexpected {method} {path}")

    def request_many(
        self,
        calls: Sequence[Call],
        width: int,
        on_answer: Callable[[int, ApiError | AcmError | None], None] = _no_answer,
    ) -> list[ApiError | AcmError | None]:
        assert width == ApplyOptions().concurrency
        self.batches.append(list(calls))
        outcomes: list[ApiError | AcmError | None] = []
        for position, call in enumerate(calls):
            self.sent.append(call)
            outcome = self.failing.get(call.path)
            if outcome is None and call.path.startswith(CRD_PATH) and call.method == "PATCH":
                self._applied_crd(call.path[len(CRD_PATH) :], call.query or {})
            outcomes.append(outcome)
            on_answer(position, outcome)
        return outcomes

    def _applied_crd(self, name: str, query: dict[str, Any]) -> None:
        if query.get("dryRun"):
            return
        self.crds[name] = crd_status(name, self.establish)
        if self.establish:
            self.served += self.serves.get(name, ())

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.sent if c.method != "GET"]


def crd_status(name: str, established: bool) -> dict[str, Any]:
    condition = (
        {"type": "Established", "status": "True"}
        if established
        else {"type": "Established", "status": "False", "reason": "NotReady", "message": "still waiting"}
    )
    return {"metadata": {"name": name}, "status": {"conditions": [condition]}}


def declared(
    kind: str,
    name: str,
    namespace: str = "",
    *,
    api_version: str = "v1",
    action: Action = Action.CREATE,
    level: int = 0,
    depends_on: tuple[ObjectId, ...] = (),
) -> Change:
    body = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
    }
    manifest = Manifest(body, f"{name}.yaml")
    return Change(
        action, manifest.id, "declared", level=level, desired=body, manifest=manifest, depends_on=depends_on
    )


def left(
    kind: str,
    name: str,
    namespace: str = "",
    *,
    api_version: str = "v1",
    action: Action = Action.PRUNE,
    level: int = 0,
    uid: str | None = "u",
    managed_at: str | None = None,
) -> Change:
    """An object that left the source, as listed live (``managed_at``: the apiVersion its
    managedFields say acm-lite last applied it at)."""
    meta: dict[str, Any] = {
        "name": name,
        **({"namespace": namespace} if namespace else {}),
        **({"uid": uid} if uid else {}),
    }
    if managed_at:
        meta["managedFields"] = [
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "acme.io/v9"},
            {"manager": "acm-lite", "operation": "Update", "apiVersion": "acme.io/v8"},
            {"manager": "acm-lite", "operation": "Apply", "apiVersion": managed_at},
        ]
    live = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    oid = ObjectId(split_api_version(api_version)[0], kind, namespace, name)
    return Change(action, oid, "left the source", level=level, live=live)


def run(cluster: FakeCluster, *changes: Change, **options: Any) -> tuple[list[Result], list[Result]]:
    """The results ``Applier.run`` returns, and those it reported as it went."""
    heard: list[Result] = []
    client: Client = cluster
    applier = Applier(client, Discovery(client), ApplyOptions(**options), on_result=heard.append)
    return applier.run(ChangeSet(list(changes))), heard


def outcomes(results: list[Result]) -> dict[str, tuple[Outcome, str | None]]:
    return {r.change.id.name: (r.outcome, r.problem.code.id if r.problem else None) for r in results}


def cm(name: str) -> str:
    return f"/api/v1/namespaces/a/configmaps/{name}"


def test_applies_go_out_level_by_level_one_batch_per_level() -> None:
    cluster = FakeCluster()
    results, heard = run(
        cluster,
        declared("ConfigMap", "late", "a", level=2),
        declared("Namespace", "a", level=0),
        declared("ConfigMap", "middle", "a", level=1),
        declared("ConfigMap", "early", "a", level=0),
    )
    assert [[c.path for c in batch] for batch in cluster.batches] == [
        ["/api/v1/namespaces/a", cm("early")],
        [cm("middle")],
        [cm("late")],
    ]
    assert all(c.method == "PATCH" and c.content_type == "application/apply-patch+yaml" for c in cluster.sent)
    assert {r.outcome for r in results} == {Outcome.CREATED}
    assert sorted(map(id, heard)) == sorted(map(id, results))


def test_prunes_go_last_in_reverse_level_order() -> None:
    cluster = FakeCluster()
    run(
        cluster,
        left("ConfigMap", "gone0", "a", level=0),
        left("Namespace", "gone", level=0),
        declared("ConfigMap", "kept1", "a", level=1),
        left("ConfigMap", "gone2", "a", level=2),
        left("ConfigMap", "detached1", "a", level=1, action=Action.UNMANAGE),
        declared("ConfigMap", "kept0", "a", level=0),
    )
    assert cluster.writes == [
        ("PATCH", cm("kept0")),
        ("PATCH", cm("kept1")),
        ("DELETE", cm("gone2")),
        ("PATCH", cm("detached1")),
        ("DELETE", cm("gone0")),
        ("DELETE", "/api/v1/namespaces/gone"),
    ]


def test_an_object_whose_dependency_failed_is_skipped_without_a_request() -> None:
    cluster = FakeCluster()
    cluster.failing[cm("base")] = ApiError(422, "Invalid", "spec: bad")
    base = declared("ConfigMap", "base", "a", level=0)
    results, heard = run(
        cluster,
        base,
        declared("ConfigMap", "user", "a", level=1, depends_on=(base.id,)),
        declared("ConfigMap", "user2", "a", level=2, depends_on=(ObjectId("", "ConfigMap", "a", "user"),)),
        declared("ConfigMap", "other", "a", level=1),
    )
    assert cluster.writes == [("PATCH", cm("base")), ("PATCH", cm("other"))]
    assert outcomes(results) == {
        "base": (Outcome.FAILED, "KNV2010"),
        "user": (Outcome.SKIPPED, "ACM2004"),
        "user2": (Outcome.SKIPPED, "ACM2004"),
        "other": (Outcome.CREATED, None),
    }
    skipped = next(r for r in results if r.change.id.name == "user")
    assert skipped.message == "not applied: ConfigMap a/base, which it depends on, failed"
    assert len(heard) == len(results)


def _crd_and_widget(cluster: FakeCluster) -> tuple[Change, Change]:
    cluster.serves["widgets.acme.io"] = (WIDGETS_V1,)
    crd = declared(
        "CustomResourceDefinition", "widgets.acme.io", api_version="apiextensions.k8s.io/v1", level=0
    )
    widget = declared("Widget", "w", "a", api_version="acme.io/v1", level=1)
    return crd, widget


def test_a_level_waits_for_the_crds_the_level_before_applied() -> None:
    cluster = FakeCluster()
    crd, widget = _crd_and_widget(cluster)
    results, _ = run(cluster, widget, crd, left("ConfigMap", "gone", "a"))
    assert [(c.method, c.path) for c in cluster.sent] == [
        ("PATCH", CRD_PATH + "widgets.acme.io"),
        ("GET", CRD_PATH + "widgets.acme.io"),
        ("PATCH", "/apis/acme.io/v1/namespaces/a/widgets/w"),
        ("DELETE", cm("gone")),
    ]
    assert outcomes(results) == {
        "widgets.acme.io": (Outcome.CREATED, None),
        "w": (Outcome.CREATED, None),
        "gone": (Outcome.PRUNED, None),
    }


def test_a_crd_not_established_postpones_every_later_level_and_the_prunes() -> None:
    cluster = FakeCluster()
    cluster.establish = False
    crd, widget = _crd_and_widget(cluster)
    results, heard = run(
        cluster,
        widget,
        crd,
        left("ConfigMap", "gone", "a"),
        declared("ConfigMap", "same", "a", level=1, action=Action.UNCHANGED),
        crd_timeout=0.0,
    )
    assert cluster.writes == [("PATCH", CRD_PATH + "widgets.acme.io")]
    assert outcomes(results) == {
        "widgets.acme.io": (Outcome.FAILED, "ACM2003"),
        "w": (Outcome.SKIPPED, "ACM2031"),
        "gone": (Outcome.SKIPPED, "ACM2031"),
        "same": (Outcome.UNCHANGED, None),
    }
    by_name = {r.change.id.name: r for r in results}
    assert by_name["widgets.acme.io"].message == (
        "not Established after 0s: Established: NotReady still waiting"
    )
    assert by_name["w"].message == ("not applied: CRDs not Established after 0s: widgets.acme.io")
    assert by_name["gone"].message.startswith("not pruned: ")
    # the CRD was heard of as created when its request answered, then as failed
    assert [(r.change.id.name, r.outcome) for r in heard] == [
        ("widgets.acme.io", Outcome.CREATED),
        ("widgets.acme.io", Outcome.FAILED),
        ("w", Outcome.SKIPPED),
        ("same", Outcome.UNCHANGED),
        ("gone", Outcome.SKIPPED),
    ]


def test_an_unchanged_crd_listed_as_not_established_is_waited_for() -> None:
    cluster = FakeCluster((*fakes.BUILTIN, WIDGETS_V1))
    cluster.crds["widgets.acme.io"] = crd_status("widgets.acme.io", True)
    oid = ObjectId("apiextensions.k8s.io", "CustomResourceDefinition", "", "widgets.acme.io")
    crd = Change(Action.UNCHANGED, oid, "unchanged", live=crd_status(oid.name, False))
    run(cluster, crd, declared("Widget", "w", "a", api_version="acme.io/v1", level=1))
    assert [(c.method, c.path) for c in cluster.sent] == [
        ("GET", CRD_PATH + "widgets.acme.io"),
        ("PATCH", "/apis/acme.io/v1/namespaces/a/widgets/w"),
    ]


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-foo", "acm-lite-system"])
def test_a_protected_namespace_is_never_deleted(name: str) -> None:
    cluster = FakeCluster()
    results, _ = run(cluster, left("Namespace", name), left("Namespace", "team"))
    assert cluster.writes == [("DELETE", "/api/v1/namespaces/team")]
    assert outcomes(results) == {name: (Outcome.FAILED, "ACM2020"), "team": (Outcome.PRUNED, None)}


def test_a_dry_run_asks_the_server_to_store_nothing_and_waits_for_no_crd() -> None:
    cluster = FakeCluster()
    crd, widget = _crd_and_widget(cluster)
    cluster.served.append(WIDGETS_V1)
    results, _ = run(
        cluster,
        declared("Namespace", "new"),
        crd,
        widget,
        declared("ConfigMap", "in-new", "new", level=1),
        declared("ConfigMap", "cm", "a", level=1, action=Action.UPDATE),
        left("ConfigMap", "old", "a", action=Action.UNMANAGE),
        left("ConfigMap", "gone", "a"),
        dry_run=True,
    )
    assert [(c.method, c.path, c.query) for c in cluster.sent] == [
        ("PATCH", "/api/v1/namespaces/new", {"fieldManager": "acm-lite", "force": "true", "dryRun": "All"}),
        (
            "PATCH",
            CRD_PATH + "widgets.acme.io",
            {"fieldManager": "acm-lite", "force": "true", "dryRun": "All"},
        ),
        (
            "PATCH",
            "/apis/acme.io/v1/namespaces/a/widgets/w",
            {"fieldManager": "acm-lite", "force": "true", "dryRun": "All"},
        ),
        ("PATCH", cm("cm"), {"fieldManager": "acm-lite", "force": "true", "dryRun": "All"}),
        ("PATCH", cm("old"), {"fieldManager": "acm-lite", "dryRun": "All"}),
        ("DELETE", cm("gone"), {"dryRun": "All"}),
    ]
    in_new = next(r for r in results if r.change.id.name == "in-new")
    assert (in_new.outcome, in_new.message) == (
        Outcome.CREATED,
        "not validated: its namespace would be created by this sync",
    )


def test_prevalidated_kinds_skip_the_servers_field_validation() -> None:
    cluster = FakeCluster()
    configmap = declared("ConfigMap", "cm", "a")
    run(cluster, configmap, declared("Namespace", "a"), prevalidated=frozenset({configmap.id.group_kind}))
    assert [(c.path, c.query) for c in cluster.sent] == [
        (cm("cm"), {"fieldManager": "acm-lite", "force": "true", "fieldValidation": "Ignore"}),
        ("/api/v1/namespaces/a", {"fieldManager": "acm-lite", "force": "true"}),
    ]


@pytest.mark.parametrize(
    ("served", "managed_at", "read_at", "deleted_at"),
    [
        ((WIDGETS_V2, WIDGETS_V1), "acme.io/v1", "acme.io/v2", "v1"),  # the version it was applied at
        ((WIDGETS_V2, WIDGETS_V1), None, "acme.io/v1", "v1"),  # no record: the version it was read at
        ((WIDGETS_V2,), "acme.io/v1", "acme.io/v1", "v2"),  # no longer served: the preferred one
    ],
)
def test_a_prune_is_sent_at_the_version_acm_lite_last_applied_the_object_at(
    served: tuple[Served, ...], managed_at: str | None, read_at: str, deleted_at: str
) -> None:
    cluster = FakeCluster((*fakes.BUILTIN, *served))
    run(cluster, left("Widget", "w", "a", api_version=read_at, managed_at=managed_at))
    assert cluster.writes == [("DELETE", f"/apis/acme.io/{deleted_at}/namespaces/a/widgets/w")]


def test_a_prune_deletes_only_the_object_it_listed() -> None:
    cluster = FakeCluster()
    run(cluster, left("ConfigMap", "gone", "a", uid="u-1"), left("ConfigMap", "gone2", "a", uid=None))
    assert [c.body for c in cluster.sent] == [
        {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
            "preconditions": {"uid": "u-1"},
        },
        {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
    ]


def test_an_api_server_failure_during_apply_postpones_every_prune() -> None:
    cluster = FakeCluster()
    cluster.failing[cm("a")] = ApiError(503, "ServiceUnavailable", "etcd is down")
    results, heard = run(
        cluster,
        declared("ConfigMap", "a", "a"),
        declared("ConfigMap", "b", "a", level=1),
        left("ConfigMap", "gone", "a"),
        left("ConfigMap", "detached", "a", action=Action.UNMANAGE),
    )
    assert cluster.writes == [("PATCH", cm("a")), ("PATCH", cm("b"))]
    assert outcomes(results) == {
        "a": (Outcome.FAILED, "KNV2002"),
        "b": (Outcome.CREATED, None),
        "gone": (Outcome.SKIPPED, None),
        "detached": (Outcome.SKIPPED, None),
    }
    assert {r.message for r in results if r.outcome is Outcome.SKIPPED} == {
        "prune postponed: the API server failed during apply"
    }
    assert len(heard) == len(results)


def test_an_object_already_gone_counts_as_pruned() -> None:
    cluster = FakeCluster()
    cluster.failing[cm("gone")] = NOT_FOUND
    cluster.failing[cm("refused")] = ApiError(403, "Forbidden", "no")
    results, _ = run(cluster, left("ConfigMap", "gone", "a"), left("ConfigMap", "refused", "a"))
    assert outcomes(results) == {"gone": (Outcome.PRUNED, None), "refused": (Outcome.FAILED, "KNV2013")}
    assert next(r.message for r in results if r.change.id.name == "gone") == "already gone"


def test_a_kind_the_cluster_does_not_serve_fails_without_a_request() -> None:
    cluster = FakeCluster()
    results, _ = run(
        cluster,
        declared("Widget", "w", "a", api_version="acme.io/v1"),
        declared("ConfigMap", "cm", "a", api_version="v2"),
        declared("ConfigMap", "ok", "a"),
    )
    assert cluster.writes == [("PATCH", cm("ok"))]
    assert outcomes(results) == {
        "w": (Outcome.FAILED, "ACM2002"),
        "cm": (Outcome.FAILED, "ACM2030"),
        "ok": (Outcome.CREATED, None),
    }


# depends-on: a dependency is waited for until Current before its dependents are applied


def deployment(name: str, *, ready: int = 1, failed: bool = False) -> dict[str, Any]:
    """A Deployment as the API server returns it, its status written here: Current with one
    ready replica, InProgress with none, Failed past its progress deadline."""
    progressing = (
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        if failed
        else {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "a", "generation": 1},
        "spec": {"replicas": 1, "progressDeadlineSeconds": 600},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [{"type": "Available", "status": "True" if ready else "False"}, progressing],
        },
    }


def deploy_path(name: str) -> str:
    return f"/apis/apps/v1/namespaces/a/deployments/{name}"


def _db_and_app() -> tuple[Change, Change, Change]:
    db = declared("Deployment", "db", "a", api_version="apps/v1", level=0)
    app = declared("ConfigMap", "app", "a", level=1, depends_on=(db.id,))
    other = declared("ConfigMap", "other", "a", level=1)
    return db, app, other


def test_a_dependent_is_applied_once_its_dependency_is_current() -> None:
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [
        deployment("db", ready=0),
        deployment("db", ready=0),
        deployment("db"),
    ]
    db, app, other = _db_and_app()
    results, _ = run(cluster, db, app, other)
    assert [(c.method, c.path) for c in cluster.sent] == [
        ("PATCH", deploy_path("db")),
        ("GET", deploy_path("db")),  # InProgress
        ("GET", deploy_path("db")),  # InProgress
        ("GET", deploy_path("db")),  # Current: the next level goes out
        ("PATCH", cm("app")),
        ("PATCH", cm("other")),
    ]
    assert outcomes(results) == {
        "db": (Outcome.CREATED, None),
        "app": (Outcome.CREATED, None),
        "other": (Outcome.CREATED, None),
    }


def test_a_dependent_of_a_failed_dependency_is_skipped_and_nothing_else_is_held_back() -> None:
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db", ready=0, failed=True)]
    db, app, other = _db_and_app()
    then = declared("ConfigMap", "then", "a", level=2, depends_on=(app.id,))
    results, heard = run(cluster, db, app, other, then, left("ConfigMap", "gone", "a"))
    assert cluster.writes == [("PATCH", deploy_path("db")), ("PATCH", cm("other")), ("DELETE", cm("gone"))]
    assert outcomes(results) == {
        "db": (Outcome.CREATED, None),
        "app": (Outcome.SKIPPED, "ACM2004"),
        "then": (Outcome.SKIPPED, "ACM2004"),  # its dependency was skipped in turn
        "other": (Outcome.CREATED, None),
        "gone": (Outcome.PRUNED, None),
    }
    skipped = next(r for r in results if r.change.id.name == "app")
    assert skipped.message == (
        "not applied: apps/Deployment a/db, which ConfigMap a/app depends on, "
        "is Failed (ProgressDeadlineExceeded): Progress deadline exceeded"
    )
    assert skipped.problem is not None and (skipped.problem.obj or {}).get("name") == "app"
    assert len(heard) == len(results)


def test_a_dependent_of_a_dependency_never_current_is_skipped_after_the_reconcile_timeout() -> None:
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db", ready=0)]
    db, app, other = _db_and_app()
    results, _ = run(cluster, db, app, other, reconcile_timeout=0.5)
    reads = [c for c in cluster.sent if c.method == "GET"]
    assert len(reads) >= 2  # read again, with a backoff, until the time ran out
    assert outcomes(results)["app"] == (Outcome.SKIPPED, "ACM2004")
    assert outcomes(results)["other"] == (Outcome.CREATED, None)
    skipped = next(r for r in results if r.change.id.name == "app")
    assert skipped.message == (
        "not applied: apps/Deployment a/db, which ConfigMap a/app depends on, is not Current after "
        "0.5s: InProgress (LessAvailable): Available: 0/1"
    )


def test_a_commit_without_depends_on_sends_no_read() -> None:
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db", ready=0)]  # never Current
    db = declared("Deployment", "db", "a", api_version="apps/v1", level=0)
    results, _ = run(cluster, db, declared("ConfigMap", "late", "a", level=1), declared("Namespace", "a"))
    assert [c.method for c in cluster.sent] == ["PATCH", "PATCH", "PATCH"]
    assert {r.outcome for r in results} == {Outcome.CREATED}


def test_no_wait_when_the_dependents_need_no_request_or_in_a_dry_run() -> None:
    db, app, _ = _db_and_app()
    unchanged_app = Change(Action.UNCHANGED, app.id, "", level=1, manifest=app.manifest, depends_on=(db.id,))
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db", ready=0)]
    run(cluster, db, unchanged_app)
    assert cluster.writes == [("PATCH", deploy_path("db"))] and len(cluster.sent) == 1
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db", ready=0)]
    results, _ = run(cluster, db, app, dry_run=True)
    assert [c.method for c in cluster.sent] == ["PATCH", "PATCH"]
    assert outcomes(results)["app"] == (Outcome.CREATED, None)


def test_an_unchanged_dependency_current_when_listed_is_not_read_again() -> None:
    db, app, _ = _db_and_app()
    cluster = FakeCluster()
    unchanged = Change(Action.UNCHANGED, db.id, "", level=0, manifest=db.manifest, live=deployment("db"))
    results, _ = run(cluster, unchanged, app)
    assert [(c.method, c.path) for c in cluster.sent] == [("PATCH", cm("app"))]
    assert outcomes(results)["app"] == (Outcome.CREATED, None)
    # one that was not Current when listed is read until it is
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db")]
    unchanged = Change(
        Action.UNCHANGED, db.id, "", level=0, manifest=db.manifest, live=deployment("db", ready=0)
    )
    run(cluster, unchanged, app)
    assert [(c.method, c.path) for c in cluster.sent] == [("GET", deploy_path("db")), ("PATCH", cm("app"))]


def test_several_dependencies_of_one_kind_and_namespace_are_read_by_one_list() -> None:
    cluster = FakeCluster()
    cluster.objects[deploy_path("db")] = [deployment("db")]
    cluster.objects[deploy_path("cache")] = [deployment("cache")]
    db = declared("Deployment", "db", "a", api_version="apps/v1", level=0)
    cache = declared("Deployment", "cache", "a", api_version="apps/v1", level=0)
    app = declared("ConfigMap", "app", "a", level=1, depends_on=(db.id, cache.id))
    results, _ = run(cluster, db, cache, app, selector="acm-lite.io/sync=root-sync")
    reads = [c for c in cluster.sent if c.method == "GET"]
    assert [(c.path, (c.query or {}).get("labelSelector")) for c in reads] == [
        ("/apis/apps/v1/namespaces/a/deployments", "acm-lite.io/sync=root-sync")
    ]
    assert outcomes(results)["app"] == (Outcome.CREATED, None)
