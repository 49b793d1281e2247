"""Where the pod templates of the built-in workload kinds live, for the rules that look inside
them (quantities, template labels). One table, so a kind added here is checked by every rule."""

from __future__ import annotations

from typing import Any

from acm_lite.objects import GroupKind, Manifest

# The path from the object to its PodTemplateSpec (metadata + spec); () for a Pod itself,
# whose own spec is the pod spec (its metadata is the object's).
POD_TEMPLATE_PATHS: dict[GroupKind, tuple[str, ...]] = {
    GroupKind("", "Pod"): (),
    GroupKind("", "PodTemplate"): ("template",),
    GroupKind("", "ReplicationController"): ("spec", "template"),
    GroupKind("apps", "Deployment"): ("spec", "template"),
    GroupKind("apps", "ReplicaSet"): ("spec", "template"),
    GroupKind("apps", "StatefulSet"): ("spec", "template"),
    GroupKind("apps", "DaemonSet"): ("spec", "template"),
    GroupKind("batch", "Job"): ("spec", "template"),
    GroupKind("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list field; anything else in it is the schema check's business."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def pod_template(obj: Manifest) -> tuple[str, dict[str, Any]] | None:
    """The dotted path and body of the object's pod template (for a Pod: the Pod), if any."""
    path = POD_TEMPLATE_PATHS.get(obj.group_kind)
    if path is None:
        return None
    node: Any = obj.body
    for step in path:
        node = mapping(node).get(step)
    return ".".join(path), mapping(node)


def pod_spec(obj: Manifest) -> tuple[str, dict[str, Any]] | None:
    """The dotted path and body of the object's pod spec, if it is a workload."""
    found = pod_template(obj)
    if found is None:
        return None
    path, template = found
    return (f"{path}.spec" if path else "spec"), mapping(template.get("spec"))
