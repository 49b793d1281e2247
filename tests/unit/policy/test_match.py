"""spec.match, matcher by matcher, as Gatekeeper decides it."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite.policy.match import MatchError, glob, matches

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "shop-prod", "labels": {"app": "web"}},
}
ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}}
NAMESPACE = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "shop-prod", "labels": {"env": "prod"}},
}


@pytest.mark.parametrize(
    ("pattern", "candidate", "expected"),
    [
        ("kube-*", "kube-system", True),
        ("kube-*", "my-kube", False),
        ("*-prod", "shop-prod", True),
        ("*-prod", "prod-shop", False),
        ("*shop*", "my-shop-prod", True),
        ("shop", "shop", True),
        ("shop", "shop2", False),
    ],
)
def test_glob(pattern: str, candidate: str, expected: bool) -> None:
    assert glob(pattern, candidate) is expected


@pytest.mark.parametrize(
    ("match", "obj", "expected"),
    [
        ({}, POD, True),
        ({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, POD, True),
        ({"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod"]}]}, POD, False),
        ({"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}, ROLE, True),
        ({"kinds": [{"kinds": ["ClusterRole"]}]}, ROLE, True),
        ({"scope": "Namespaced"}, POD, True),
        ({"scope": "Namespaced"}, ROLE, False),
        ({"scope": "Cluster"}, ROLE, True),
        ({"scope": "Cluster"}, NAMESPACE, True),
        ({"namespaces": ["shop-*"]}, POD, True),
        ({"namespaces": ["blog"]}, POD, False),
        ({"namespaces": ["blog"]}, ROLE, True),  # no namespace: cannot be excluded by namespace
        ({"excludedNamespaces": ["*-prod"]}, POD, False),
        ({"excludedNamespaces": ["*-prod"]}, NAMESPACE, False),  # a Namespace is its own namespace
        ({"labelSelector": {"matchLabels": {"app": "web"}}}, POD, True),
        (
            {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}},
            POD,
            False,
        ),
        ({"name": "web-*"}, POD, True),
        ({"name": "api"}, POD, False),
        ({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, NAMESPACE, True),
        ({"namespaceSelector": {"matchLabels": {"env": "dev"}}}, NAMESPACE, False),
        ({"namespaceSelector": {"matchLabels": {"env": "dev"}}}, ROLE, True),
    ],
)
def test_matchers(match: dict[str, Any], obj: dict[str, Any], expected: bool) -> None:
    assert matches(match, obj, None if obj is not POD else NAMESPACE) is expected


def test_namespace_selector_reads_the_namespace_object() -> None:
    selector = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}
    assert matches(selector, POD, NAMESPACE)
    dev = {**NAMESPACE, "metadata": {"name": "shop-prod", "labels": {"env": "dev"}}}
    assert not matches(selector, POD, dev)
    with pytest.raises(MatchError, match="neither declared nor on the cluster"):
        matches(selector, POD, None)


def test_source_separates_original_and_generated_objects() -> None:
    assert matches({}, POD, None, "Generated")  # the default is All
    assert matches({"source": "Generated"}, POD, None, "Generated")
    assert not matches({"source": "Original"}, POD, None, "Generated")
    assert not matches({"source": "Generated"}, POD, None, "Original")


def test_a_malformed_selector_is_an_error_not_a_pass() -> None:
    with pytest.raises(MatchError):
        matches({"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}, POD, None)
