"""Health of one object as read from a cluster, computed as kstatus computes it (the status library
Config Sync, cli-utils and Flux share): Current, InProgress, Failed, Terminating, NotFound or Unknown.

The order is kstatus's: a deletion timestamp makes an object Terminating; a ``metadata.generation``
its controller has not observed yet (``status.observedGeneration`` set and different) makes it
InProgress; a ``Reconciling`` condition that is True makes it InProgress and a ``Stalled`` one
Failed. Then the rules of the built-in kinds (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
Pod, PersistentVolumeClaim, Service, PodDisruptionBudget, CustomResourceDefinition; ConfigMap,
Secret and CronJob are always Current), and for any other kind a ``Ready`` condition: True is
Current, False or Unknown InProgress. An object with none of these is Current.

A status kstatus cannot read (a field of the wrong type, conditions that are not a list of
objects, a Pod phase it does not know) is Unknown, with what was wrong as the message. Reasons and
messages taken from the object are cut short. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = ["Health", "Status", "compute"]


class Status(StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Health:
    """An object's status, a CamelCase reason (empty when Current or Terminating) and a message."""

    status: Status
    reason: str
    message: str


# A reason or message copied from an object is cut to these many characters: an object's
# conditions can be megabytes long, and a health is kept per object.
MAX_REASON = 128
MAX_MESSAGE = 1024

# How long a Pod may stay unschedulable before it is Failed (kstatus's ScheduleWindow).
SCHEDULE_WINDOW = timedelta(seconds=15)

_MAX_INT32 = 2**31 - 1
_MISSING: Any = object()


class _UnreadableError(Exception):
    """The object's status cannot be read as kstatus reads it: the object is Unknown."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _current(message: str) -> Health:
    return Health(Status.CURRENT, "", message)


def _in_progress(reason: str, message: str) -> Health:
    return Health(Status.IN_PROGRESS, _cut(reason, MAX_REASON), _cut(message, MAX_MESSAGE))


def _failed(reason: str, message: str) -> Health:
    return Health(Status.FAILED, _cut(reason, MAX_REASON), _cut(message, MAX_MESSAGE))


NOT_FOUND = Health(Status.NOT_FOUND, "NotFound", "Resource not found")


# --- reading fields as Kubernetes' unstructured helpers do ----------------------------------------


def _nested(obj: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; _MISSING when a key is absent; _UnreadableError when a step on the
    way is not an object (as unstructured.NestedFieldNoCopy)."""
    value: Any = obj
    for key in path.split("."):
        if not isinstance(value, Mapping):
            raise _UnreadableError(f"{path}: {type(value).__name__} where an object was expected")
        if key not in value:
            return _MISSING
        value = value[key]
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(obj: Mapping[str, Any], path: str, default: int) -> int:
    """An integer field, the default when absent, unreadable or not an integer (GetIntField)."""
    try:
        value = _nested(obj, path)
    except _UnreadableError:
        return default
    return value if _is_int(value) else default


def _str(obj: Mapping[str, Any], path: str, default: str) -> str:
    try:
        value = _nested(obj, path)
    except _UnreadableError:
        return default
    return value if isinstance(value, str) else default


def _bool(obj: Mapping[str, Any], path: str, default: bool) -> bool:
    try:
        value = _nested(obj, path)
    except _UnreadableError:
        return default
    return value if isinstance(value, bool) else default


def _strict_int(obj: Mapping[str, Any], path: str) -> int | None:
    """An integer field that must be an integer when present (unstructured.NestedInt64)."""
    value = _nested(obj, path)
    if value is _MISSING:
        return None
    if not _is_int(value):
        raise _UnreadableError(f"{path} is {type(value).__name__}, not an integer")
    return int(value)


@dataclass(frozen=True)
class _Condition:
    type: str
    status: str
    reason: str
    message: str


def _conditions(obj: Mapping[str, Any]) -> list[_Condition]:
    """``status.conditions`` read strictly, as kstatus converts them: null is none, anything
    else that is not a list of objects with string fields is unreadable."""
    status = obj.get("status")
    if status is None:
        return []
    if not isinstance(status, Mapping):
        raise _UnreadableError(f"status is {type(status).__name__}, not an object")
    raw = status.get("conditions")
    if raw is None:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise _UnreadableError(f"status.conditions is {type(raw).__name__}, not a list")
    out = []
    for i, item in enumerate(raw):
        if item is None:
            out.append(_Condition("", "", "", ""))
            continue
        if not isinstance(item, Mapping):
            raise _UnreadableError(f"status.conditions[{i}] is {type(item).__name__}, not an object")
        fields = []
        for name in ("type", "status", "reason", "message"):
            value = item.get(name)
            if value is None:
                value = ""
            elif not isinstance(value, str):
                raise _UnreadableError(
                    f"status.conditions[{i}].{name} is {type(value).__name__}, not a string"
                )
            fields.append(value)
        out.append(_Condition(*fields))
    return out


def _has(conditions: list[_Condition], type_: str, status: str) -> _Condition | None:
    for c in conditions:
        if c.type == type_ and c.status == status:
            return c
    return None


# --- the generic rules -----------------------------------------------------------------------------


def _generic(obj: Mapping[str, Any], kind: str) -> tuple[Health | None, list[_Condition]]:
    deletion = _nested(obj, "metadata.deletionTimestamp")
    if deletion is not _MISSING:
        if not isinstance(deletion, str):
            raise _UnreadableError(f"metadata.deletionTimestamp is {type(deletion).__name__}, not a string")
        if deletion:
            return Health(Status.TERMINATING, "", "Resource scheduled for deletion"), []
    generation = _strict_int(obj, "metadata.generation")
    if generation is not None:
        observed = _strict_int(obj, "status.observedGeneration")
        if observed is not None and observed != generation:
            message = f"{kind} generation is {generation}, but latest observed generation is {observed}"
            return _in_progress("LatestGenerationNotObserved", message), []
    conditions = _conditions(obj)
    for c in conditions:
        if c.type == "Reconciling" and c.status == "True":
            return _in_progress(c.reason, c.message), conditions
        if c.type == "Stalled" and c.status == "True":
            return _failed(c.reason, c.message), conditions
    return None, conditions


def _ready_condition(conditions: list[_Condition]) -> Health | None:
    for c in conditions:
        if c.type != "Ready":
            continue
        if c.status == "True":
            return _current("Resource is Ready")
        if c.status in ("False", "Unknown"):
            return _in_progress(c.reason, c.message)
    return None


# --- the kinds' rules ------------------------------------------------------------------------------


def _always_ready(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    return _current("Resource is always ready")


def _deployment(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    # Without progressDeadlineSeconds the controller sets no Progressing condition.
    progressing = _int(obj, "spec.progressDeadlineSeconds", _MAX_INT32) == _MAX_INT32
    available = False
    for c in conditions:
        if c.type == "Progressing":
            if c.reason == "ProgressDeadlineExceeded":
                return _failed(c.reason, "Progress deadline exceeded")
            if c.status == "True" and c.reason == "NewReplicaSetAvailable":
                progressing = True
        elif c.type == "Available" and c.status == "True":
            available = True
    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    avail = _int(obj, "status.availableReplicas", 0)
    if spec > replicas:
        return _in_progress("LessReplicas", f"Replicas: {replicas}/{spec}")
    if spec > updated:
        return _in_progress("LessUpdated", f"Updated: {updated}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    if updated > avail:
        return _in_progress("LessAvailable", f"Available: {avail}/{updated}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if not progressing:
        return _in_progress("ReplicaSetNotAvailable", "ReplicaSet not Available")
    if not available:
        return _in_progress("DeploymentNotAvailable", "Deployment not Available")
    return _current(f"Deployment is available. Replicas: {replicas}")


def _statefulset(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    if _str(obj, "spec.updateStrategy.type", "") == "OnDelete":
        return _current("StatefulSet is using the ondelete update strategy")
    spec = _int(obj, "spec.replicas", 1)
    ready = _int(obj, "status.readyReplicas", 0)
    current = _int(obj, "status.currentReplicas", 0)
    updated = _int(obj, "status.updatedReplicas", 0)
    replicas = _int(obj, "status.replicas", 0)
    partition = _int(obj, "spec.updateStrategy.rollingUpdate.partition", -1)
    if spec > replicas:
        return _in_progress("LessReplicas", f"Replicas: {replicas}/{spec}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    if partition != -1:
        if updated < spec - partition:
            return _in_progress("PartitionRollout", f"updated: {updated}/{spec - partition}")
        return _current(f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return _in_progress("LessCurrent", f"current: {current}/{spec}")
    if _str(obj, "status.currentRevision", "") != _str(obj, "status.updateRevision", ""):
        return _in_progress("RevisionMismatch", "Waiting for updated revision to match current")
    return _current(f"All replicas scheduled as expected. Replicas: {replicas}")


def _daemonset(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    # The controller always sets these once it has acted; unset means it has not yet.
    if _strict_int(obj, "metadata.generation") is None:
        return _in_progress("NoGeneration", "DaemonSet metadata.generation not found")
    if _strict_int(obj, "status.observedGeneration") is None:
        return _in_progress("NoObservedGeneration", "DaemonSet status.observedGeneration not found")
    desired = _int(obj, "status.desiredNumberScheduled", -1)
    current = _int(obj, "status.currentNumberScheduled", 0)
    updated = _int(obj, "status.updatedNumberScheduled", 0)
    available = _int(obj, "status.numberAvailable", 0)
    ready = _int(obj, "status.numberReady", 0)
    if desired == -1:
        return _in_progress("NoDesiredNumber", "Missing .status.desiredNumberScheduled")
    if desired > current:
        return _in_progress("LessCurrent", f"Current: {current}/{desired}")
    if desired > updated:
        return _in_progress("LessUpdated", f"Updated: {updated}/{desired}")
    if desired > available:
        return _in_progress("LessAvailable", f"Available: {available}/{desired}")
    if desired > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{desired}")
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _replicaset(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    if _has(conditions, "ReplicaFailure", "True"):
        return _in_progress("ReplicaFailure", "Replica Failure condition. Check Pods")
    spec = _int(obj, "spec.replicas", 1)
    replicas = _int(obj, "status.replicas", 0)
    ready = _int(obj, "status.readyReplicas", 0)
    available = _int(obj, "status.availableReplicas", 0)
    labelled = _int(obj, "status.fullyLabeledReplicas", 0)
    if spec > labelled:
        return _in_progress("LessLabelled", f"Labelled: {labelled}/{spec}")
    if spec > available:
        return _in_progress("LessAvailable", f"Available: {available}/{spec}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    return _current(f"ReplicaSet is available. Replicas: {replicas}")


def _pvc(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    phase = _str(obj, "status.phase", "unknown")
    if phase != "Bound":
        return _in_progress("NotBound", f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


def _crash_looping(obj: Mapping[str, Any]) -> list[str]:
    try:
        statuses = _nested(obj, "status.containerStatuses")
    except _UnreadableError:
        return []
    if not isinstance(statuses, list):
        return []
    names = []
    for cs in statuses:
        if not isinstance(cs, Mapping) or not isinstance(cs.get("name"), str):
            continue
        state = cs.get("state")
        waiting = state.get("waiting") if isinstance(state, Mapping) else None
        if isinstance(waiting, Mapping) and waiting.get("reason") == "CrashLoopBackOff":
            names.append(cs["name"])
    return names


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _pod(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    phase = _str(obj, "status.phase", "")
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        return _current("Pod has completed, but not successfully")
    if phase == "Running":
        if _has(conditions, "Ready", "True"):
            return _current("Pod is Ready")
        looping = _crash_looping(obj)
        if looping:
            return _failed("ContainerCrashLooping", f"Containers in CrashLoop state: {','.join(looping)}")
        return _in_progress("PodRunningNotReady", "Pod is running but is not Ready")
    if phase == "Pending":
        c = _has(conditions, "PodScheduled", "False")
        if c is not None and c.reason == "Unschedulable":
            created = _timestamp(_str(obj, "metadata.creationTimestamp", ""))
            if created is not None and now - SCHEDULE_WINDOW < created:
                return _in_progress("PodNotScheduled", "Pod has not been scheduled")
            return _failed("PodUnschedulable", "Pod could not be scheduled")
        return _in_progress("PodPending", "Pod is in the Pending phase")
    if phase == "":
        return _in_progress("PodNotObserved", "Pod phase not available")
    raise _UnreadableError(f"unknown phase {phase[:MAX_REASON]}")


def _pdb(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    # The generic rules have seen observedGeneration; the disruption controller sets no conditions.
    return _current("AllowedDisruptions has been computed.")


def _job(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    parallelism = _int(obj, "spec.parallelism", 1)
    completions = _int(obj, "spec.completions", parallelism)
    succeeded = _int(obj, "status.succeeded", 0)
    active = _int(obj, "status.active", 0)
    failed = _int(obj, "status.failed", 0)
    suspended = _bool(obj, "spec.suspend", False)
    for c in conditions:
        if c.status != "True":
            continue
        if c.type == "Complete":
            return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
        if c.type == "Failed":
            return _failed("JobFailed", f"Job Failed. failed: {failed}/{completions}")
        if c.type == "Suspended" and suspended:
            return _current("Job is suspended")
    if _str(obj, "status.startTime", "") == "":
        return _in_progress("JobNotStarted", "Job not started")
    # kstatus calls a started Job Current; Flux's Job reader, followed here, waits for it to finish:
    # otherwise waiting stops at a running Job and never sees it fail.
    return _in_progress(
        "JobInProgress", f"Job in progress. success:{succeeded}, active: {active}, failed: {failed}"
    )


def _service(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    # kstatus asks a LoadBalancer only for its cluster IP, not for status.loadBalancer.ingress.
    if _str(obj, "spec.type", "ClusterIP") == "LoadBalancer" and _str(obj, "spec.clusterIP", "") == "":
        return _in_progress("NoIPAssigned", "ClusterIP not set. Service type: LoadBalancer")
    return _current("Service is ready")


def _crd(obj: Mapping[str, Any], conditions: list[_Condition], now: datetime) -> Health:
    for c in conditions:
        if c.type == "NamesAccepted" and c.status == "False":
            return _failed(c.reason, c.message)
        if c.type == "Established":
            if c.status == "False" and c.reason != "Installing":
                return _failed(c.reason, c.message)
            if c.status == "True":
                return _current("CRD is established")
    return _in_progress("Installing", "Install in progress")


_KINDS = {
    ("", "Service"): _service,
    ("", "Pod"): _pod,
    ("", "Secret"): _always_ready,
    ("", "ConfigMap"): _always_ready,
    ("", "PersistentVolumeClaim"): _pvc,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("batch", "CronJob"): _always_ready,
    ("batch", "Job"): _job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def compute(obj: Mapping[str, Any] | None, *, now: datetime | None = None) -> Health:
    """The health of an object as the API server returned it; None (no such object) is NotFound.
    ``now`` is the time an unschedulable Pod's age is measured at (the current time by default)."""
    if obj is None:
        return NOT_FOUND
    if not isinstance(obj, Mapping):
        return Health(Status.UNKNOWN, "Unreadable", f"not an object: {type(obj).__name__}")
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    kind = kind if isinstance(kind, str) else ""
    try:
        found, conditions = _generic(obj, kind)
        if found is not None:
            return found
        rule = _KINDS.get((group, kind))
        if rule is not None:
            return rule(obj, conditions, now or datetime.now(UTC))
        return _ready_condition(conditions) or _current("Resource is current")
    except _UnreadableError as e:
        return Health(Status.UNKNOWN, "Unreadable", _cut(str(e), MAX_MESSAGE))
