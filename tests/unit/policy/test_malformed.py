"""Every field of a valid template, constraint, expansion and gator suite replaced by a value of
each other type: `vet` and `policy verify` answer with coded errors, never an internal error
(exit 70) or a traceback."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cli.main import main
from acm_lite.policy import sandbox
from tests.unit.repo_builder import write

REPLACEMENTS: list[Any] = ["x", 5, [], {}, None]
CODE_PREFIXES = ("ACM", "KNV")

TEMPLATE: dict[str, Any] = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "needslabel"},
    "spec": {
        "crd": {
            "spec": {
                "names": {"kind": "NeedsLabel"},
                "validation": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"key": {"type": "string", "pattern": "^[a-z]+$"}},
                    }
                },
            }
        },
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": "package needslabel\nimport data.lib.labels\n"
                'violation[{"msg": msg}] {\n'
                "  not labels.has(input.review.object, input.parameters.key)\n"
                '  msg := sprintf("no %v label", [input.parameters.key])\n}\n',
                "libs": ["package lib.labels\nhas(obj, key) { obj.metadata.labels[key] }\n"],
            }
        ],
    },
}
CEL_TEMPLATE: dict[str, Any] = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "fewreplicas"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "FewReplicas"}}},
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "code": [
                    {
                        "engine": "K8sNativeValidation",
                        "source": {
                            "variables": [{"name": "n", "expression": "object.spec.replicas"}],
                            "validations": [{"expression": "variables.n <= 3", "message": "too many"}],
                        },
                    }
                ],
            }
        ],
    },
}
CONSTRAINT: dict[str, Any] = {
    "apiVersion": "constraints.gatekeeper.sh/v1beta1",
    "kind": "NeedsLabel",
    "metadata": {"name": "team"},
    "spec": {
        "enforcementAction": "deny",
        "scopedEnforcementActions": [{"action": "warn", "enforcementPoints": [{"name": "acm-lite"}]}],
        "match": {
            "kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}],
            "namespaces": ["shop"],
            "excludedNamespaces": ["kube-system"],
            "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "scope": "Namespaced",
            "name": "web*",
            "source": "All",
        },
        "parameters": {"key": "team"},
    },
}
EXPANSION: dict[str, Any] = {
    "apiVersion": "expansion.gatekeeper.sh/v1alpha1",
    "kind": "ExpansionTemplate",
    "metadata": {"name": "pods"},
    "spec": {
        "applyTo": [{"groups": ["apps"], "versions": ["v1"], "kinds": ["Deployment"]}],
        "templateSource": "spec.template",
        "generatedGVK": {"group": "", "version": "v1", "kind": "Pod"},
        "enforcementAction": "warn",
    },
}
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "registry.acme.io/web:1"}]},
        },
    },
}
SUITE: dict[str, Any] = {
    "apiVersion": "test.gatekeeper.sh/v1alpha1",
    "kind": "Suite",
    "tests": [
        {
            "name": "labels",
            "template": "template.yaml",
            "constraint": "constraint.yaml",
            "expansion": "expansion.yaml",
            "cases": [
                {
                    "name": "missing",
                    "object": "deployment.yaml",
                    "inventory": ["namespace.yaml"],
                    "assertions": [
                        {"violations": "yes", "message": "no team"},
                        {"violations": 1, "message": "^no [a-z]+ label$"},
                    ],
                }
            ],
        }
    ],
}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field and list item below ``value`` (not the root), outermost first."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        if prefix == () and key in ("apiVersion", "kind"):
            continue  # another kind is another object, not a malformed one
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replaced(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return out


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def variants(name: str, doc: dict[str, Any]) -> Iterator[Any]:
    for path in paths(doc):
        original = _at(doc, path)
        for value in REPLACEMENTS:
            if type(value) is type(original) and not isinstance(value, dict | list):
                continue  # the same type: not malformed
            label = f"{name}:{'.'.join(map(str, path))}={json.dumps(value)}"
            yield pytest.param(name, replaced(doc, path, value), id=label)


def _files(**override: Any) -> dict[str, Any]:
    files: dict[str, Any] = {
        "template.yaml": TEMPLATE,
        "constraint.yaml": CONSTRAINT,
        "expansion.yaml": EXPANSION,
        "deployment.yaml": DEPLOYMENT,
        "cel.yaml": CEL_TEMPLATE,
        "namespace.yaml": NAMESPACE,
        "suite.yaml": SUITE,
    }
    files.update(override)
    return files


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _assert_coded(code: int, out: str, err: str) -> None:
    assert code in (0, 1), (code, out[-2000:], err[-2000:])
    assert "internal error" not in err and "Traceback" not in err + out, err[-2000:]


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table runs hundreds of policy passes: in this process, not a forked child each (the
    child only re-raises what the pass raises; the sandbox has its own tests)."""
    if hasattr(sandbox, "run"):
        monkeypatch.setattr(sandbox, "run", lambda task, budget=None: task(sandbox.Progress()))


POLICY_DOCS = {
    "template.yaml": TEMPLATE,
    "cel.yaml": CEL_TEMPLATE,
    "constraint.yaml": CONSTRAINT,
    "expansion.yaml": EXPANSION,
}


@pytest.mark.parametrize(("name", "doc"), [v for n, d in POLICY_DOCS.items() for v in variants(n, d)])
@pytest.mark.usefixtures("in_process")
def test_vet_codes_every_malformed_policy_object(
    name: str, doc: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(**{name: doc})
    del files["suite.yaml"], files["namespace.yaml"]
    write(tmp_path, {**files, "namespace.yaml": NAMESPACE})
    code, out, err = _run(["vet", str(tmp_path), "--source-format", "unstructured", "-o", "json"], capsys)
    _assert_coded(code, out, err)
    if code == 1:
        found = json.loads(out)["errors"]
        assert found and all(e["code"].startswith(CODE_PREFIXES) for e in found)


@pytest.mark.parametrize(
    ("name", "doc"),
    [v for n, d in {**POLICY_DOCS, "suite.yaml": SUITE}.items() if n != "cel.yaml" for v in variants(n, d)],
)
@pytest.mark.usefixtures("in_process")
def test_verify_codes_every_malformed_suite_and_policy(
    name: str, doc: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, _files(**{name: doc}))
    code, out, err = _run(["policy", "verify", str(tmp_path), "-o", "json"], capsys)
    _assert_coded(code, out, err)
    if code == 1:
        failed = [c for c in json.loads(out)["cases"] if not c["passed"]]
        for case in failed:
            assert case["message"]
            if case["case"] in ("(setup)", "(suite)"):
                assert case["message"].startswith(CODE_PREFIXES), case


def test_the_valid_fixture_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The variants start from objects that pass, so each error comes from the replacement."""
    write(tmp_path, _files())
    code, out, _ = _run(["policy", "verify", str(tmp_path), "-o", "json"], capsys)
    assert code == 0, out
    repo = tmp_path / "repo"
    files = _files()
    del files["suite.yaml"]
    write(repo, {**files, "deployment.yaml": replaced(DEPLOYMENT, ("metadata", "labels", "team"), "a")})
    code, out, _ = _run(["vet", str(repo), "--source-format", "unstructured", "-o", "json"], capsys)
    assert code == 0, out


@pytest.mark.parametrize(
    ("target", "doc", "expected"),
    [
        ("template.yaml", replaced(TEMPLATE, ("spec",), "x"), "spec must be an object"),
        ("template.yaml", replaced(TEMPLATE, ("spec", "targets"), {}), "spec.targets must be a list"),
        (
            "template.yaml",
            replaced(TEMPLATE, ("spec", "targets", 0, "rego"), 5),
            "spec.targets[0].rego must be a string",
        ),
        (
            "template.yaml",
            replaced(TEMPLATE, ("spec", "targets", 0, "libs"), "x"),
            "spec.targets[0].libs must be a list",
        ),
        (
            "template.yaml",
            replaced(TEMPLATE, ("spec", "targets", 0, "code"), "x"),
            "spec.targets[0].code must be a list",
        ),
        (
            "template.yaml",
            replaced(TEMPLATE, ("spec", "crd", "spec", "validation", "openAPIV3Schema", "type"), 5),
            "openAPIV3Schema.type must be one of",
        ),
        (
            "template.yaml",
            replaced(TEMPLATE, ("spec", "crd", "spec", "validation", "openAPIV3Schema", "properties"), []),
            "properties must be an object",
        ),
        (
            "constraint.yaml",
            replaced(CONSTRAINT, ("spec", "match", "kinds"), "Pod"),
            "spec.match.kinds must be a list",
        ),
        (
            "constraint.yaml",
            replaced(CONSTRAINT, ("spec", "parameters"), []),
            "spec.parameters must be an object",
        ),
        (
            "constraint.yaml",
            replaced(CONSTRAINT, ("spec", "match", "labelSelector"), 5),
            "spec.match.labelSelector must be an object",
        ),
        (
            "constraint.yaml",
            replaced(CONSTRAINT, ("spec", "enforcementAction"), 5),
            "spec.enforcementAction must be a string",
        ),
        ("expansion.yaml", replaced(EXPANSION, ("spec", "applyTo"), "x"), "spec.applyTo must be a list"),
    ],
)
def test_the_error_names_the_field(
    target: str, doc: dict[str, Any], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _files(**{target: doc})
    del files["suite.yaml"]
    write(tmp_path, files)
    code, out, _ = _run(["vet", str(tmp_path), "--source-format", "unstructured", "-o", "json"], capsys)
    assert code == 1
    messages = [e["message"] for e in json.loads(out)["errors"]]
    assert any(expected in m for m in messages), messages
    assert any(e["source"] == target for e in json.loads(out)["errors"])


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (replaced(SUITE, ("tests",), "x"), "tests must be a list"),
        (replaced(SUITE, ("tests", 0, "cases"), 5), "tests[0].cases must be a list"),
        (
            replaced(SUITE, ("tests", 0, "cases", 0, "assertions"), [5]),
            "tests[0].cases[0].assertions[0] must be an object",
        ),
        (
            replaced(SUITE, ("tests", 0, "cases", 0, "assertions", 0, "violations"), "many"),
            "violations must be yes, no or a non-negative integer",
        ),
        (replaced(SUITE, ("tests", 0, "cases", 0, "object"), "nope.yaml"), "cannot read nope.yaml"),
        (replaced(SUITE, ("tests", 0, "template"), "../../../etc/passwd"), "is outside"),
    ],
)
def test_suite_errors_are_coded(
    doc: dict[str, Any], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, _files(**{"suite.yaml": doc}))
    code, out, _ = _run(["policy", "verify", str(tmp_path), "-o", "json"], capsys)
    assert code == 1
    [case] = json.loads(out)["cases"]
    assert case["message"].startswith("ACM3006 PolicySuiteInvalid") and expected in case["message"]


def test_a_missing_path_is_coded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["policy", "verify", str(tmp_path / "nope")], capsys)
    assert code == 1 and "ACM1048 PathNotFound" in err
