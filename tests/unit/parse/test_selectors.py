from __future__ import annotations

from typing import Any

import pytest

from acm_lite.parse import selectors

LABELS = {"env": "prod", "provider": "eks"}


@pytest.mark.parametrize(
    ("spec", "matches"),
    [
        ({"matchLabels": {"env": "prod"}}, True),
        ({"matchLabels": {"env": "prod", "provider": "aks"}}, False),
        ({"matchExpressions": [{"key": "provider", "operator": "In", "values": ["eks", "aks"]}]}, True),
        ({"matchExpressions": [{"key": "provider", "operator": "NotIn", "values": ["eks"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, False),
        ({}, True),
    ],
)
def test_matching(spec: dict[str, Any], matches: bool) -> None:
    assert selectors.parse(spec).matches(LABELS) is matches


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}, "operator"),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "needs values"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "takes no"),
        ({"matchExpressions": [{"operator": "Exists"}]}, "key"),
        ({"matchLabels": {"a": 1}}, "matchLabels"),
        ("env=prod", "must be an object"),
    ],
)
def test_malformed_selectors(spec: Any, message: str) -> None:
    with pytest.raises(selectors.SelectorError, match=message):
        selectors.parse(spec)
