"""Deciding "unchanged": every declared field must equal the live value, after the API server's
normalisations, and anything else is a difference with its path."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from acm_lite.plan import compare

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "paused": False,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "web:1",
                        "ports": [{"containerPort": 80}],
                        "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"cpu": 1}},
                    }
                ],
                "volumes": [],
            },
        },
    },
}


def live_of(declared: dict[str, Any]) -> dict[str, Any]:
    """What the API server gives back: server fields added, zero values dropped, quantities
    normalised."""
    declared = copy.deepcopy(declared)
    container = {
        "name": "web",
        "image": "web:1",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1"}},
    }
    return {
        **declared,
        "metadata": {
            **declared["metadata"],
            "uid": "u-1",
            "resourceVersion": "7",
            "managedFields": [{"manager": "acm-lite"}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container], "dnsPolicy": "ClusterFirst"},
            },
        },
        "status": {"replicas": 0},
    }


def test_live_with_server_fields_defaults_and_normalised_quantities_is_unchanged() -> None:
    assert compare.difference(DEPLOYMENT, live_of(DEPLOYMENT)) is None


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda live: live["spec"].update(replicas=3), "spec.replicas"),
        (lambda live: live["metadata"]["labels"].update(app="other"), "metadata.labels.app"),
        (lambda live: live["metadata"].pop("labels"), "metadata.labels"),
        (
            lambda live: live["spec"]["template"]["spec"]["containers"][0].update(image="web:2"),
            "spec.template.spec.containers[0].image",
        ),
        (
            lambda live: live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"].update(
                cpu="600m"
            ),
            "spec.template.spec.containers[0].resources.requests.cpu",
        ),
        (
            lambda live: live["spec"]["template"]["spec"]["containers"][0]["ports"].append(
                {"containerPort": 81}
            ),
            "spec.template.spec.containers[0].ports",
        ),
        (
            lambda live: live["spec"]["template"]["spec"].update(containers={}),
            "spec.template.spec.containers",
        ),
        (lambda live: live["spec"].update(replicas="2"), "spec.replicas"),  # a string is not an int
        (lambda live: live["spec"].update(replicas=2.0), "spec.replicas"),
    ],
)
def test_any_other_difference_is_found_with_its_path(change: Any, path: str) -> None:
    live = live_of(DEPLOYMENT)
    change(live)
    assert compare.difference(DEPLOYMENT, live) == path


def test_booleans_are_not_numbers_and_zero_values_may_be_absent() -> None:
    assert compare.first_difference({"a": True}, {"a": 1}) == "a"
    assert compare.first_difference({"a": 1}, {"a": True}) == "a"
    assert compare.first_difference({"a": 0, "b": "", "c": {}, "d": [], "e": None, "f": False}, {}) is None
    assert compare.first_difference({"a": 1}, {}) == "a"
    assert compare.first_difference({"a": {"b": 1}}, {"a": "text"}) == "a"
    assert compare.first_difference({"a": 1}, []) == "(root)"


def test_quantities_are_compared_by_value_only_under_resource_keys() -> None:
    assert compare.first_difference({"limits": {"memory": "1024Mi"}}, {"limits": {"memory": "1Gi"}}) is None
    assert (
        compare.first_difference({"hard": {"requests.storage": "1e3"}}, {"hard": {"requests.storage": "1k"}})
        is None
    )
    assert compare.first_difference({"spec": {"storage": "0.5Gi"}}, {"spec": {"storage": "512Mi"}}) is None
    assert compare.first_difference({"data": {"size": "1Gi"}}, {"data": {"size": "1024Mi"}}) == "data.size"
    assert compare.parse_quantity("100m") == compare.parse_quantity("0.1")
    assert compare.parse_quantity("ten") is None


def test_non_string_keys_and_list_indexes_are_spelt_apart() -> None:
    assert compare.first_difference({"m": {1: "a"}}, {"m": {1: "b"}}) == "m.1"
    assert compare.first_difference({"l": [{"x": 1}, {"x": 2}]}, {"l": [{"x": 1}, {"x": 3}]}) == "l[1].x"


def test_secret_string_data_is_compared_with_the_stored_data() -> None:
    declared = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"password": "hunter2"},
    }
    stored: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "uid": "1"},
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    }
    assert compare.difference(declared, stored) is None
    stored["data"]["password"] = base64.b64encode(b"other").decode()
    assert compare.difference(declared, stored) == "stringData"
    stored["data"]["password"] = "not base64!"
    assert compare.difference(declared, stored) == "stringData"


def test_a_declared_empty_list_or_map_the_api_server_returns_as_null_is_unchanged() -> None:
    declared = {"kind": "ClusterRole", "rules": [], "aggregationRule": {}}
    live = {"kind": "ClusterRole", "rules": None, "aggregationRule": None}
    assert compare.difference(declared, live) is None
    assert compare.difference({"rules": [{"verbs": ["get"]}]}, {"rules": None}) == "rules"
