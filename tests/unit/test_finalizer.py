"""The deletion propagation policy a RootSync asks for, and the order its objects are deleted in."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite.objects import ObjectId
from acm_lite.reconcile import finalizer


def item(annotations: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "root", "annotations": annotations or {}, **meta}}


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, "Orphan"),
        ({"configsync.gke.io/deletion-propagation-policy": "Foreground"}, "Foreground"),
        ({"acm-lite.io/deletion-propagation-policy": "Foreground"}, "Foreground"),
        ({"configsync.gke.io/deletion-propagation-policy": "Orphan"}, "Orphan"),
        ({"configsync.gke.io/deletion-propagation-policy": "foreground"}, "Orphan"),  # exact, as Config Sync
        (
            {
                "acm-lite.io/deletion-propagation-policy": "Orphan",
                "configsync.gke.io/deletion-propagation-policy": "Foreground",
            },
            "Orphan",
        ),
    ],
)
def test_policy(annotations: dict[str, str], expected: str) -> None:
    assert finalizer.policy(item(annotations)) == expected


def test_a_malformed_object_reads_as_orphan_without_finalizers() -> None:
    broken: dict[str, Any] = {"metadata": {"annotations": "x", "finalizers": [1, None]}}
    assert finalizer.policy(broken) == "Orphan"
    assert finalizer.finalizers(broken) == []
    assert not finalizer.deleting(broken)
    assert finalizer.deleting(item(deletionTimestamp="2026-01-01T00:00:00Z"))


def test_objects_are_deleted_in_reverse_apply_order() -> None:
    crd = ObjectId("apiextensions.k8s.io", "CustomResourceDefinition", "", "widgets.example.com")
    namespace = ObjectId("", "Namespace", "", "team")
    role = ObjectId("rbac.authorization.k8s.io", "ClusterRole", "", "reader")
    config = ObjectId("", "ConfigMap", "team", "a")
    widget = ObjectId("example.com", "Widget", "team", "w")
    levels = finalizer._reverse_levels({crd, namespace, role, config, widget})
    assert levels == [[config, widget], [role], [namespace], [crd]]


class Recorder:
    """Records the requests sent to it (the Client protocol)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((method, path, kwargs.get("body")))
        return {}


@pytest.mark.parametrize(("present", "expected"), [(True, ["other", finalizer.FINALIZER]), (False, None)])
def test_set_finalizer_patches_the_list_with_its_resource_version(present: bool, expected: Any) -> None:
    client = Recorder()
    before = ["other"] if present else [finalizer.FINALIZER]
    finalizer.set_finalizer(client, item(finalizers=before, resourceVersion="7", namespace="ns"), present)  # type: ignore[arg-type]
    [(method, path, body)] = client.sent
    assert (method, path) == ("PATCH", "/apis/acm-lite.io/v1alpha1/namespaces/ns/rootsyncs/root")
    assert body == {"metadata": {"finalizers": expected, "resourceVersion": "7"}}
    # already so: nothing is sent
    again = Recorder()
    finalizer.set_finalizer(again, item(finalizers=before), not present)  # type: ignore[arg-type]
    finalizer.set_finalizer(again, item(finalizers=[finalizer.FINALIZER]), True)  # type: ignore[arg-type]
    assert again.sent == []
