"""Schemas a repository supplies are checked as Kubernetes checks a CRD's schema, and validated
with RE2 and no retrieval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acm_lite.cli.main import main
from acm_lite.validate import crd_schema
from tests.unit.repo_builder import write


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        *[
            (
                {"type": "object", "properties": {"a": {keyword: value}}},
                f"properties.a.{keyword} is not supported",
            )
            for keyword, value in (
                ("$ref", "http://127.0.0.1/x"),
                ("$schema", "x"),
                ("id", "x"),
                ("definitions", {}),
                ("dependencies", {}),
                ("additionalItems", {}),
                ("patternProperties", {"^(a+)+$": {}}),
                # Draft 7 keywords Kubernetes' schemas lack, where a pattern could hide
                ("propertyNames", {"pattern": "(a)\\1"}),
                ("contains", {}),
                ("if", {}),
                ("then", {}),
                ("else", {}),
                ("const", 1),
                ("$id", "x"),
            )
        ],
        ({"type": 5}, "openAPIV3Schema.type must be one of"),
        ({"type": "thing"}, "openAPIV3Schema.type must be one of"),
        ({"properties": []}, "openAPIV3Schema.properties must be an object"),
        ({"properties": {"a": 5}}, "openAPIV3Schema.properties.a must be an object"),
        ({"items": [{}]}, "openAPIV3Schema.items must be an object"),
        ({"required": "a"}, "openAPIV3Schema.required must be a list"),
        ({"minLength": "x"}, "openAPIV3Schema.minLength: 'x' is not of type 'integer'"),
        ({"pattern": 5}, "openAPIV3Schema.pattern must be a string"),
        ({"pattern": "(?<=a)b"}, "not a valid RE2 regular expression"),
        ({"pattern": "(a)\\1"}, "not a valid RE2 regular expression"),
        ({"allOf": [{"pattern": "(?=x)"}]}, "allOf[0].pattern is not a valid RE2"),
        (nested(70), "nests deeper than 64 levels"),
        ("x", "openAPIV3Schema must be an object"),
    ],
)
def test_unusable_schemas_are_named(schema: Any, expected: str) -> None:
    wrong = crd_schema.problem(schema)
    assert wrong is not None and expected in wrong


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "$ref": {"type": "string"},
                "definitions": {"type": "object"},
            },
        },
        {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[a-z]+$"}},
        {"type": "array", "items": {"type": "integer", "minimum": 0}},
        nested(60),
    ],
)
def test_usable_schemas_pass(schema: Any) -> None:
    assert crd_schema.problem(schema) is None


def test_patterns_match_with_re2() -> None:
    validator = crd_schema.validator({"type": "string", "pattern": "^(a+)+$"})
    assert list(validator.iter_errors("a" * 5000 + "b"))
    assert not list(validator.iter_errors("aaaa"))


def test_a_crd_group_of_the_wrong_type_is_coded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(
        tmp_path,
        {
            "crd.yaml": {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.acme.io"},
                "spec": {
                    "group": [],
                    "names": {"kind": "Widget", "plural": "widgets"},
                    "scope": "Namespaced",
                    "versions": [],
                },
            }
        },
    )
    code = main(["vet", str(tmp_path), "--source-format", "unstructured"])
    out, err = capsys.readouterr()
    assert code == 1 and "KNV1048" in out and "internal error" not in err


@pytest.mark.parametrize(
    "version", [5, "x", [], {"name": "v1", "schema": 5}, {"name": "v1", "schema": {"openAPIV3Schema": "x"}}]
)
def test_malformed_crd_versions_are_not_an_internal_error(
    version: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        {
            "crd.yaml": {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.acme.io"},
                "spec": {
                    "group": "acme.io",
                    "names": {"kind": "Widget", "plural": "widgets"},
                    "scope": "Namespaced",
                    "versions": [version],
                },
            },
            "w.yaml": {
                "apiVersion": "acme.io/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "namespace": "default"},
            },
        },
    )
    code = main(["vet", str(tmp_path), "--source-format", "unstructured"])
    _, err = capsys.readouterr()
    assert code in (0, 1) and "internal error" not in err


def test_a_pattern_the_check_never_saw_fails_closed() -> None:
    """The validator itself refuses a pattern RE2 cannot compile, wherever it sits."""
    validator = crd_schema.validator({"type": "string", "pattern": "(a)\\1"})
    errors = list(validator.iter_errors("aa"))
    assert len(errors) == 1 and "not valid RE2" in errors[0].message
