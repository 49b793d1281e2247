"""The readers of label and annotation values in metadata.py."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite import metadata
from acm_lite.objects import Manifest, ObjectId


def annotated(**annotations: str) -> Manifest:
    return Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "annotations": annotations}},
        "a.yaml",
    )


def with_key(key: str, value: str) -> Manifest:
    return annotated(**{key: value})


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("apps/namespaces/ns/Deployment/web", ObjectId("apps", "Deployment", "ns", "web")),
        ("/Namespace/ns", ObjectId("", "Namespace", "", "ns")),
        (
            " rbac.authorization.k8s.io/ClusterRole/view ",
            ObjectId("rbac.authorization.k8s.io", "ClusterRole", "", "view"),
        ),
    ],
)
def test_parse_reference(ref: str, expected: ObjectId) -> None:
    assert metadata.parse_reference(ref) == expected


@pytest.mark.parametrize(
    "ref", ["web", "apps/Deployment", "apps/namespaces//Deployment/web", "apps//web", "a/b/c/d"]
)
def test_parse_reference_refuses_malformed(ref: str) -> None:
    with pytest.raises(ValueError, match=r"GROUP|empty"):
        metadata.parse_reference(ref)


def test_dependencies_skip_malformed_entries() -> None:
    obj = with_key(metadata.DEPENDS_ON, "/Namespace/ns, nonsense,,apps/namespaces/ns/Deployment/w")
    assert metadata.dependencies(obj) == [
        ObjectId("", "Namespace", "", "ns"),
        ObjectId("apps", "Deployment", "ns", "w"),
    ]
    assert metadata.dependencies(annotated()) == []


def test_is_disabled_and_local_config() -> None:
    assert metadata.is_disabled(with_key(metadata.MANAGED, "disabled"))
    assert not metadata.is_disabled(with_key(metadata.MANAGED, "enabled"))
    assert metadata.is_local_config(with_key(metadata.LOCAL_CONFIG, "true"))
    assert metadata.is_local_config(with_key(metadata.LOCAL_CONFIG, ""))
    assert not metadata.is_local_config(with_key(metadata.LOCAL_CONFIG, "false"))
    assert not metadata.is_local_config(annotated())


def test_cluster_name_selector_entries() -> None:
    obj = with_key(metadata.CLUSTER_NAME_SELECTOR_ANNOTATION, " east, ,west ,")
    assert metadata.cluster_name_selector(obj) == ["east", "west"]
    assert metadata.cluster_name_selector(annotated()) == []


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY, metadata.SYNC_LABEL: "root"}, "root"),
        ({metadata.SYNC_LABEL: "root"}, None),  # not acm-lite's
        ({metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY}, None),
        (None, None),
    ],
)
def test_owner(labels: dict[str, Any] | None, expected: str | None) -> None:
    live = {"metadata": {"labels": labels}}
    assert metadata.owner(live) == expected
    assert metadata.owner(None) is None


def test_live_annotation() -> None:
    live = {"metadata": {"annotations": {metadata.DELETION: metadata.DETACH, "n": 1}}}
    assert metadata.live_annotation(live, metadata.DELETION) == "detach"
    assert metadata.live_annotation(live, "n") == "1"
    assert metadata.live_annotation(live, metadata.COMMIT) is None
    assert metadata.live_annotation({}, metadata.COMMIT) is None
