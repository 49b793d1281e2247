"""Config Sync's ``spec.helm.deployNamespace``: the rendered chart moved into one namespace, as
Config Sync's helm-sync moves it (kpt's ``set-namespace`` function, run with no namespace
matcher, after ``helm template --namespace default``).

Every namespaced object gets the namespace, also one the chart put in another namespace; an
object of a kind acm-lite does not know is namespaced when it carries ``metadata.namespace``.
Namespace objects are renamed to it; a ClusterRoleBinding's subjects, a CRD's conversion
webhook service and an APIService's service have their namespace field set to it where they
have one; a ``config.kubernetes.io/depends-on`` naming a namespaced object of the chart follows
it. Objects marked ``config.kubernetes.io/local-config`` are left as they are. Cluster-scoped
objects are otherwise untouched.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from acm_lite import errors, kinds
from acm_lite.errors import AcmError
from acm_lite.objects import GroupKind

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LOCAL_CONFIG = "config.kubernetes.io/local-config"
DEPENDS_ON = "config.kubernetes.io/depends-on"
_NAMESPACED_REF = re.compile(r"\A([-.\w]*)/namespaces/([-.\w]*)/([-.\w]*)/([-.\w]*)\Z")


def deploy_to(output: bytes, namespace: str, about: str) -> bytes:
    """``helm template``'s ``output`` with its objects moved to ``namespace``."""
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(output, Loader=_LOADER)):
            raise AcmError(
                errors.RENDER_FAILED, f"{about} printed YAML aliases; deployNamespace cannot move them"
            )
        docs = [d for d in yaml.load_all(output, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as e:
        raise AcmError(
            errors.RENDER_FAILED, f"{about} printed YAML that cannot be read: {str(e)[:300]}"
        ) from None
    objects = [d for d in docs if isinstance(d, dict) and not _local_config(d)]
    before = {_ref(o) for o in objects if _namespaced(o)}
    for obj in objects:
        _move(obj, namespace)
    for obj in objects:
        _follow_depends_on(obj, before, namespace)
    return yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False).encode()


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _local_config(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    value = annotations.get(LOCAL_CONFIG) if isinstance(annotations, dict) else None
    return value not in (None, "", "false")


def _group_kind(obj: dict[str, Any]) -> GroupKind:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return GroupKind(group, str(obj.get("kind") or ""))


def _namespaced(obj: dict[str, Any]) -> bool:
    info = kinds.builtin().get(_group_kind(obj))
    if info is not None:
        return info.namespaced
    meta = obj.get("metadata")
    return isinstance(meta, dict) and "namespace" in meta


def _ref(obj: dict[str, Any]) -> str:
    """The object as a namespaced ``depends-on`` names it (no namespace is ``default``)."""
    meta = _metadata(obj)
    namespace = meta.get("namespace") or "default"
    return f"{_group_kind(obj).group}/namespaces/{namespace}/{obj.get('kind')}/{meta.get('name')}"


def _set(parent: Any, path: tuple[str, ...], namespace: str) -> None:
    """``namespace`` at ``path`` below ``parent``, only where that field is present."""
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if isinstance(parent, dict) and path[-1] in parent:
        parent[path[-1]] = namespace


def _move(obj: dict[str, Any], namespace: str) -> None:
    gk = _group_kind(obj)
    if _namespaced(obj):
        _metadata(obj)["namespace"] = namespace
    elif gk == kinds.NAMESPACE:
        _metadata(obj)["name"] = namespace
    elif gk == kinds.CRD:
        _set(obj, ("spec", "conversion", "webhook", "clientConfig", "service", "namespace"), namespace)
    elif gk == GroupKind("apiregistration.k8s.io", "APIService"):
        _set(obj, ("spec", "service", "namespace"), namespace)
    elif gk.kind == "ClusterRoleBinding" and isinstance(obj.get("subjects"), list):
        for subject in obj["subjects"]:
            _set(subject, ("namespace",), namespace)


def _follow_depends_on(obj: dict[str, Any], before: set[str], namespace: str) -> None:
    annotations = _metadata(obj).get("annotations")
    value = annotations.get(DEPENDS_ON) if isinstance(annotations, dict) else None
    if not isinstance(value, str) or value not in before or not _NAMESPACED_REF.match(value):
        return
    segments = value.split("/")
    segments[2] = namespace
    annotations[DEPENDS_ON] = "/".join(segments)  # type: ignore[index]
