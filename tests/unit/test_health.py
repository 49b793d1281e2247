"""health.compute against objects whose status each case writes: one case per kstatus rule, each
branch of a Deployment's rollout, and statuses kstatus cannot read (Unknown, never an exception)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from acm_lite import health
from acm_lite.health import Health, Status

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def obj(
    api_version: str, kind: str, *, spec: Any = None, status: Any = None, **metadata: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", **metadata}}
    if spec is not None:
        body["spec"] = spec
    if status is not None:
        body["status"] = status
    return body


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def deploy(
    spec: dict[str, Any] | None = None, conditions: list[dict[str, str]] | None = None, **status: Any
) -> Any:
    full = {
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "observedGeneration": 1,
    }
    full.update(status)
    if conditions is None:
        conditions = [
            cond("Available", "True", "MinimumReplicasAvailable"),
            cond("Progressing", "True", "NewReplicaSetAvailable"),
        ]
    return obj(
        "apps/v1",
        "Deployment",
        generation=1,
        spec={"replicas": 2, "progressDeadlineSeconds": 600, **(spec or {})},
        status={**full, "conditions": conditions},
    )


def sts(spec: dict[str, Any] | None = None, **status: Any) -> Any:
    full = {
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "r1",
        "updateRevision": "r1",
    }
    full.update(status)
    return obj("apps/v1", "StatefulSet", spec={"replicas": 3, **(spec or {})}, status=full)


def ds(**status: Any) -> Any:
    full = {
        "observedGeneration": 1,
        "desiredNumberScheduled": 2,
        "currentNumberScheduled": 2,
        "updatedNumberScheduled": 2,
        "numberAvailable": 2,
        "numberReady": 2,
    }
    full.update(status)
    return obj("apps/v1", "DaemonSet", generation=1, status={k: v for k, v in full.items() if v is not None})


def rs(conditions: list[dict[str, str]] | None = None, **status: Any) -> Any:
    full = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "fullyLabeledReplicas": 2}
    full.update(status)
    return obj("apps/v1", "ReplicaSet", spec={"replicas": 2}, status={**full, "conditions": conditions or []})


def job(
    spec: dict[str, Any] | None = None, conditions: list[dict[str, str]] | None = None, **status: Any
) -> Any:
    return obj(
        "batch/v1",
        "Job",
        spec={"completions": 3, **(spec or {})},
        status={**status, "conditions": conditions or []},
    )


def pod(
    phase: str | None, conditions: list[dict[str, str]] | None = None, created: str = "", **more: Any
) -> Any:
    status: dict[str, Any] = {"conditions": conditions or [], **more}
    if phase is not None:
        status["phase"] = phase
    metadata = {"creationTimestamp": created} if created else {}
    return obj("v1", "Pod", status=status, **metadata)


def crd(*conditions: dict[str, str]) -> Any:
    return obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", status={"conditions": list(conditions)})


def custom(*conditions: dict[str, str], **metadata: Any) -> Any:
    return obj("example.com/v1", "Widget", status={"conditions": list(conditions)}, **metadata)


CASES: list[tuple[str, Any, Status, str, str]] = [
    # (id, object, status, reason, message)
    ("none-is-notfound", None, Status.NOT_FOUND, "NotFound", "Resource not found"),
    # generic rules, before any kind's
    (
        "deletion-timestamp",
        obj("v1", "ConfigMap", deletionTimestamp="2026-01-01T00:00:00Z"),
        Status.TERMINATING,
        "",
        "Resource scheduled for deletion",
    ),
    (
        "generation-not-observed",
        obj("v1", "ConfigMap", generation=3, status={"observedGeneration": 2}),
        Status.IN_PROGRESS,
        "LatestGenerationNotObserved",
        "ConfigMap generation is 3, but latest observed generation is 2",
    ),
    (
        "generation-observed-then-kind",
        obj("v1", "ConfigMap", generation=3, status={"observedGeneration": 3}),
        Status.CURRENT,
        "",
        "Resource is always ready",
    ),
    (
        "no-observed-generation-is-lenient",
        custom(generation=5),
        Status.CURRENT,
        "",
        "Resource is current",
    ),
    (
        "reconciling-true",
        custom(cond("Reconciling", "True", "Rolling", "rolling out"), cond("Ready", "True")),
        Status.IN_PROGRESS,
        "Rolling",
        "rolling out",
    ),
    (
        "stalled-true",
        custom(cond("Stalled", "True", "BadSpec", "spec.size is impossible")),
        Status.FAILED,
        "BadSpec",
        "spec.size is impossible",
    ),
    (
        "stalled-before-a-kind",
        obj("apps/v1", "Deployment", status={"conditions": [cond("Stalled", "True", "Stuck", "stuck")]}),
        Status.FAILED,
        "Stuck",
        "stuck",
    ),
    (
        "reconciling-false-ignored",
        custom(cond("Reconciling", "False")),
        Status.CURRENT,
        "",
        "Resource is current",
    ),
    # the Ready condition, for kinds without rules of their own
    ("ready-true", custom(cond("Ready", "True")), Status.CURRENT, "", "Resource is Ready"),
    (
        "ready-false",
        custom(cond("Ready", "False", "Waiting", "waiting for db")),
        Status.IN_PROGRESS,
        "Waiting",
        "waiting for db",
    ),
    ("ready-unknown", custom(cond("Ready", "Unknown", "Probing", "?")), Status.IN_PROGRESS, "Probing", "?"),
    ("no-conditions", custom(), Status.CURRENT, "", "Resource is current"),
    (
        "ready-ignored-for-rule-kinds",
        obj("v1", "Secret", status={"conditions": [cond("Ready", "False")]}),
        Status.CURRENT,
        "",
        "Resource is always ready",
    ),
    # always ready
    ("configmap", obj("v1", "ConfigMap"), Status.CURRENT, "", "Resource is always ready"),
    ("secret", obj("v1", "Secret"), Status.CURRENT, "", "Resource is always ready"),
    ("cronjob", obj("batch/v1", "CronJob"), Status.CURRENT, "", "Resource is always ready"),
    # Deployment: every branch of the rollout logic, in kstatus's order
    (
        "deploy-progress-deadline",
        deploy(conditions=[cond("Progressing", "False", "ProgressDeadlineExceeded", "took too long")]),
        Status.FAILED,
        "ProgressDeadlineExceeded",
        "Progress deadline exceeded",
    ),
    ("deploy-less-replicas", deploy(replicas=1), Status.IN_PROGRESS, "LessReplicas", "Replicas: 1/2"),
    ("deploy-less-updated", deploy(updatedReplicas=1), Status.IN_PROGRESS, "LessUpdated", "Updated: 1/2"),
    ("deploy-extra-pods", deploy(replicas=3), Status.IN_PROGRESS, "ExtraPods", "Pending termination: 1"),
    (
        "deploy-less-available",
        deploy(availableReplicas=1),
        Status.IN_PROGRESS,
        "LessAvailable",
        "Available: 1/2",
    ),
    ("deploy-less-ready", deploy(readyReplicas=1), Status.IN_PROGRESS, "LessReady", "Ready: 1/2"),
    (
        "deploy-replicaset-not-available",
        deploy(conditions=[cond("Available", "True"), cond("Progressing", "True", "ReplicaSetUpdated")]),
        Status.IN_PROGRESS,
        "ReplicaSetNotAvailable",
        "ReplicaSet not Available",
    ),
    (
        "deploy-not-available",
        deploy(
            conditions=[cond("Available", "False"), cond("Progressing", "True", "NewReplicaSetAvailable")]
        ),
        Status.IN_PROGRESS,
        "DeploymentNotAvailable",
        "Deployment not Available",
    ),
    ("deploy-current", deploy(), Status.CURRENT, "", "Deployment is available. Replicas: 2"),
    (
        "deploy-no-deadline-is-progressing",
        deploy(spec={"progressDeadlineSeconds": 2**31 - 1}, conditions=[cond("Available", "True")]),
        Status.CURRENT,
        "",
        "Deployment is available. Replicas: 2",
    ),
    (
        "deploy-default-one-replica",
        obj("apps/v1", "Deployment", status={"replicas": 0}),
        Status.IN_PROGRESS,
        "LessReplicas",
        "Replicas: 0/1",
    ),
    (
        "deploy-generation-first",
        {**deploy(), "metadata": {"name": "x", "generation": 2}},
        Status.IN_PROGRESS,
        "LatestGenerationNotObserved",
        "Deployment generation is 2, but latest observed generation is 1",
    ),
    # StatefulSet
    (
        "sts-ondelete",
        sts(spec={"updateStrategy": {"type": "OnDelete"}}, replicas=0),
        Status.CURRENT,
        "",
        "StatefulSet is using the ondelete update strategy",
    ),
    ("sts-less-replicas", sts(replicas=2), Status.IN_PROGRESS, "LessReplicas", "Replicas: 2/3"),
    ("sts-less-ready", sts(readyReplicas=1), Status.IN_PROGRESS, "LessReady", "Ready: 1/3"),
    ("sts-extra-pods", sts(replicas=4), Status.IN_PROGRESS, "ExtraPods", "Pending termination: 1"),
    (
        "sts-partition-rollout",
        sts(spec={"updateStrategy": {"rollingUpdate": {"partition": 1}}}, updatedReplicas=1),
        Status.IN_PROGRESS,
        "PartitionRollout",
        "updated: 1/2",
    ),
    (
        "sts-partition-complete",
        sts(spec={"updateStrategy": {"rollingUpdate": {"partition": 1}}}, updatedReplicas=2),
        Status.CURRENT,
        "",
        "Partition rollout complete. updated: 2",
    ),
    ("sts-less-current", sts(currentReplicas=2), Status.IN_PROGRESS, "LessCurrent", "current: 2/3"),
    (
        "sts-revision-mismatch",
        sts(updateRevision="r2"),
        Status.IN_PROGRESS,
        "RevisionMismatch",
        "Waiting for updated revision to match current",
    ),
    ("sts-current", sts(), Status.CURRENT, "", "All replicas scheduled as expected. Replicas: 3"),
    # DaemonSet
    (
        "ds-no-generation",
        obj("apps/v1", "DaemonSet", status={"observedGeneration": 1}),
        Status.IN_PROGRESS,
        "NoGeneration",
        "DaemonSet metadata.generation not found",
    ),
    (
        "ds-no-observed-generation",
        ds(observedGeneration=None),
        Status.IN_PROGRESS,
        "NoObservedGeneration",
        "DaemonSet status.observedGeneration not found",
    ),
    (
        "ds-no-desired",
        ds(desiredNumberScheduled=None),
        Status.IN_PROGRESS,
        "NoDesiredNumber",
        "Missing .status.desiredNumberScheduled",
    ),
    ("ds-less-current", ds(currentNumberScheduled=1), Status.IN_PROGRESS, "LessCurrent", "Current: 1/2"),
    ("ds-less-updated", ds(updatedNumberScheduled=1), Status.IN_PROGRESS, "LessUpdated", "Updated: 1/2"),
    ("ds-less-available", ds(numberAvailable=1), Status.IN_PROGRESS, "LessAvailable", "Available: 1/2"),
    ("ds-less-ready", ds(numberReady=1), Status.IN_PROGRESS, "LessReady", "Ready: 1/2"),
    ("ds-current", ds(), Status.CURRENT, "", "All replicas scheduled as expected. Replicas: 2"),
    # ReplicaSet
    (
        "rs-replica-failure",
        rs(conditions=[cond("ReplicaFailure", "True", "FailedCreate", "quota")]),
        Status.IN_PROGRESS,
        "ReplicaFailure",
        "Replica Failure condition. Check Pods",
    ),
    ("rs-less-labelled", rs(fullyLabeledReplicas=1), Status.IN_PROGRESS, "LessLabelled", "Labelled: 1/2"),
    ("rs-less-available", rs(availableReplicas=1), Status.IN_PROGRESS, "LessAvailable", "Available: 1/2"),
    ("rs-less-ready", rs(readyReplicas=1), Status.IN_PROGRESS, "LessReady", "Ready: 1/2"),
    ("rs-extra-pods", rs(replicas=3), Status.IN_PROGRESS, "ExtraPods", "Pending termination: 1"),
    ("rs-current", rs(), Status.CURRENT, "", "ReplicaSet is available. Replicas: 2"),
    # Job
    (
        "job-complete",
        job(conditions=[cond("Complete", "True")], succeeded=3),
        Status.CURRENT,
        "",
        "Job Completed. succeeded: 3/3",
    ),
    (
        "job-failed",
        job(conditions=[cond("Failed", "True", "BackoffLimitExceeded")], failed=6),
        Status.FAILED,
        "JobFailed",
        "Job Failed. failed: 6/3",
    ),
    (
        "job-suspended",
        job(spec={"suspend": True}, conditions=[cond("Suspended", "True")]),
        Status.CURRENT,
        "",
        "Job is suspended",
    ),
    (
        "job-suspended-condition-without-spec",
        job(conditions=[cond("Suspended", "True")]),
        Status.IN_PROGRESS,
        "JobNotStarted",
        "Job not started",
    ),
    ("job-not-started", job(), Status.IN_PROGRESS, "JobNotStarted", "Job not started"),
    (
        "job-running",
        job(startTime="2026-01-01T00:00:00Z", active=2, succeeded=1),
        Status.IN_PROGRESS,
        "JobInProgress",
        "Job in progress. success:1, active: 2, failed: 0",
    ),
    (
        "job-completions-default-parallelism",
        obj(
            "batch/v1",
            "Job",
            spec={"parallelism": 4},
            status={"conditions": [cond("Complete", "True")], "succeeded": 4},
        ),
        Status.CURRENT,
        "",
        "Job Completed. succeeded: 4/4",
    ),
    # Pod
    ("pod-succeeded", pod("Succeeded"), Status.CURRENT, "", "Pod has completed successfully"),
    ("pod-failed-phase", pod("Failed"), Status.CURRENT, "", "Pod has completed, but not successfully"),
    ("pod-ready", pod("Running", [cond("Ready", "True")]), Status.CURRENT, "", "Pod is Ready"),
    (
        "pod-crashloop",
        pod(
            "Running",
            [cond("Ready", "False")],
            containerStatuses=[
                {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                {"name": "ok", "state": {"running": {}}},
                {"name": "side", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        ),
        Status.FAILED,
        "ContainerCrashLooping",
        "Containers in CrashLoop state: app,side",
    ),
    (
        "pod-running-not-ready",
        pod("Running", [cond("Ready", "False")]),
        Status.IN_PROGRESS,
        "PodRunningNotReady",
        "Pod is running but is not Ready",
    ),
    (
        "pod-unschedulable-young",
        pod("Pending", [cond("PodScheduled", "False", "Unschedulable")], created="2026-01-01T11:59:50Z"),
        Status.IN_PROGRESS,
        "PodNotScheduled",
        "Pod has not been scheduled",
    ),
    (
        "pod-unschedulable-old",
        pod("Pending", [cond("PodScheduled", "False", "Unschedulable")], created="2026-01-01T11:59:00Z"),
        Status.FAILED,
        "PodUnschedulable",
        "Pod could not be scheduled",
    ),
    ("pod-pending", pod("Pending"), Status.IN_PROGRESS, "PodPending", "Pod is in the Pending phase"),
    ("pod-not-observed", pod(None), Status.IN_PROGRESS, "PodNotObserved", "Pod phase not available"),
    ("pod-unknown-phase", pod("Exploded"), Status.UNKNOWN, "Unreadable", "unknown phase Exploded"),
    # PersistentVolumeClaim
    (
        "pvc-pending",
        obj("v1", "PersistentVolumeClaim", status={"phase": "Pending"}),
        Status.IN_PROGRESS,
        "NotBound",
        "PVC is not Bound. phase: Pending",
    ),
    (
        "pvc-no-phase",
        obj("v1", "PersistentVolumeClaim"),
        Status.IN_PROGRESS,
        "NotBound",
        "PVC is not Bound. phase: unknown",
    ),
    (
        "pvc-bound",
        obj("v1", "PersistentVolumeClaim", status={"phase": "Bound"}),
        Status.CURRENT,
        "",
        "PVC is Bound",
    ),
    # Service
    (
        "svc-lb-no-ip",
        obj("v1", "Service", spec={"type": "LoadBalancer"}),
        Status.IN_PROGRESS,
        "NoIPAssigned",
        "ClusterIP not set. Service type: LoadBalancer",
    ),
    (
        "svc-lb-ip",
        obj("v1", "Service", spec={"type": "LoadBalancer", "clusterIP": "10.0.0.7"}),
        Status.CURRENT,
        "",
        "Service is ready",
    ),
    ("svc-clusterip", obj("v1", "Service", spec={}), Status.CURRENT, "", "Service is ready"),
    # PodDisruptionBudget
    (
        "pdb-observed",
        obj("policy/v1", "PodDisruptionBudget", generation=1, status={"observedGeneration": 1}),
        Status.CURRENT,
        "",
        "AllowedDisruptions has been computed.",
    ),
    (
        "pdb-not-observed",
        obj("policy/v1", "PodDisruptionBudget", generation=2, status={"observedGeneration": 1}),
        Status.IN_PROGRESS,
        "LatestGenerationNotObserved",
        "PodDisruptionBudget generation is 2, but latest observed generation is 1",
    ),
    # CustomResourceDefinition
    (
        "crd-established",
        crd(cond("NamesAccepted", "True"), cond("Established", "True")),
        Status.CURRENT,
        "",
        "CRD is established",
    ),
    (
        "crd-names-not-accepted",
        crd(cond("NamesAccepted", "False", "ListKindConflict", "conflicts"), cond("Established", "False")),
        Status.FAILED,
        "ListKindConflict",
        "conflicts",
    ),
    (
        "crd-not-established",
        crd(cond("Established", "False", "Whatever", "broken")),
        Status.FAILED,
        "Whatever",
        "broken",
    ),
    (
        "crd-installing",
        crd(cond("Established", "False", "Installing", "installing")),
        Status.IN_PROGRESS,
        "Installing",
        "Install in progress",
    ),
    ("crd-no-conditions", crd(), Status.IN_PROGRESS, "Installing", "Install in progress"),
    # the group matters, the version does not
    (
        "deploy-extensions",
        {**deploy(), "apiVersion": "extensions/v1beta1"},
        Status.CURRENT,
        "",
        "Deployment is available. Replicas: 2",
    ),
    ("deploy-other-group", obj("example.com/v1", "Deployment"), Status.CURRENT, "", "Resource is current"),
]


@pytest.mark.parametrize(
    ("body", "status", "reason", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_compute(body: Any, status: Status, reason: str, message: str) -> None:
    before = copy.deepcopy(body)
    assert health.compute(body, now=NOW) == Health(status, reason, message)
    assert body == before  # never changes the object


UNREADABLE: list[tuple[str, Any, str]] = [
    ("not-a-mapping", ["a list"], "not an object: list"),
    ("status-a-string", obj("v1", "Pod", status="bad"), "status is str, not an object"),
    (
        "conditions-a-map",
        custom() | {"status": {"conditions": {"a": 1}}},
        "status.conditions is dict, not a list",
    ),
    (
        "condition-type-an-int",
        custom() | {"status": {"conditions": [{"type": 7, "status": "True"}]}},
        "status.conditions[0].type is int, not a string",
    ),
    (
        "condition-a-string",
        custom() | {"status": {"conditions": ["Ready"]}},
        "status.conditions[0] is str, not an object",
    ),
    (
        "generation-a-string",
        obj("v1", "ConfigMap", generation="1"),
        "metadata.generation is str, not an integer",
    ),
    (
        "observed-generation-a-float",
        obj("v1", "ConfigMap", generation=1, status={"observedGeneration": 1.5}),
        "status.observedGeneration is float, not an integer",
    ),
    ("deletion-timestamp-an-int", obj("v1", "ConfigMap", deletionTimestamp=5), "not a string"),
    (
        "metadata-null",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": None},
        "where an object was expected",
    ),
]


@pytest.mark.parametrize(("body", "fragment"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_unreadable_status_is_unknown(body: Any, fragment: str) -> None:
    got = health.compute(body, now=NOW)
    assert got.status is Status.UNKNOWN
    assert got.reason == "Unreadable"
    assert fragment in got.message


def test_wrong_typed_counts_read_as_defaults() -> None:
    """kstatus reads a count that is not an integer as its default, as GetIntField does."""
    body = deploy(replicas="2")  # status.replicas a string: read as 0
    assert health.compute(body) == Health(Status.IN_PROGRESS, "LessReplicas", "Replicas: 0/2")
    body = deploy(replicas=True)  # a bool is no integer either
    assert health.compute(body).reason == "LessReplicas"


def test_messages_and_reasons_from_the_object_are_cut_short() -> None:
    huge = custom(cond("Stalled", "True", "R" * 100_000, "m" * 1_000_000))
    got = health.compute(huge)
    assert got.status is Status.FAILED
    assert len(got.reason) == health.MAX_REASON and got.reason.endswith("…")
    assert len(got.message) == health.MAX_MESSAGE and got.message.startswith("mmm")


def test_pod_age_measured_at_the_current_time_by_default() -> None:
    old = pod("Pending", [cond("PodScheduled", "False", "Unschedulable")], created="2000-01-01T00:00:00Z")
    assert health.compute(old).status is Status.FAILED
    fresh = pod(
        "Pending", [cond("PodScheduled", "False", "Unschedulable")], created=datetime.now(UTC).isoformat()
    )
    assert health.compute(fresh).status is Status.IN_PROGRESS


def test_status_values_are_kstatus_strings() -> None:
    assert [s.value for s in Status] == [
        "Current",
        "InProgress",
        "Failed",
        "Terminating",
        "NotFound",
        "Unknown",
    ]
