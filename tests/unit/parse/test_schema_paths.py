"""The compiled fast path and jsonschema agree on what is valid, so the fast path may only skip
work, never let anything through."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from acm_lite import declare
from acm_lite.objects import Manifest
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.validate import schema

SAMPLE = Path(__file__).resolve().parents[3] / "sample-repo"


def _corpus() -> list[dict[str, Any]]:
    source = declare.load(SAMPLE, declare.HIERARCHY)
    result = declare.declare(source, ClusterTarget("eks-prod"), declare.Options(schema=False))
    valid = [o.body for o in result.objects if o.group != "ops.acme.io"]
    broken = []
    for body in valid:
        bad = copy.deepcopy(body)
        bad["spec" if "spec" in bad else "metadata"]["unknownField"] = 1
        broken.append(bad)
        if bad["kind"] == "Deployment":
            wrong = copy.deepcopy(body)
            wrong["spec"]["replicas"] = "three"
            broken.append(wrong)
            nested = copy.deepcopy(body)
            nested["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "x"}]
            broken.append(nested)
    return valid + broken


@pytest.mark.parametrize("body", _corpus(), ids=lambda b: f"{b['kind']}-{b['metadata']['name']}")
def test_fast_path_agrees_with_jsonschema(body: dict[str, Any]) -> None:
    manifest = Manifest(body, "x.yaml")
    compiled = schema._compiled_validator(manifest.group, manifest.version, manifest.kind)
    assert compiled is not None
    slow = schema.SchemaChecker([]).check(manifest)
    try:
        compiled(body)
        fast_valid = True
    except schema.fastjsonschema.JsonSchemaValueException:
        fast_valid = False
    assert fast_valid == (slow == [])


def test_many_objects_of_a_kind_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    objs = [
        Manifest(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"c{i}", "namespace": "x"},
                "data": {"k": "v"},
            },
            "a.yaml",
        )
        for i in range(schema.COMPILE_FROM)
    ]
    bad = Manifest({**objs[0].body, "data": {"k": 1}}, "b.yaml")
    checker = schema.SchemaChecker([*objs, bad])
    assert [checker.check(o) for o in objs] == [[]] * len(objs)
    problems = checker.check(bad)  # the fast path says no; jsonschema says why
    assert [p.code.id for p in problems] == ["ACM1006"]
    assert "data.k: 1 is not of type 'string', 'null'" in problems[0].message
