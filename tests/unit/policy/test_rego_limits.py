"""Valid Rego v0 that OPA accepts and regorus reads or evaluates differently (each case of
docs/policy-engine-limits.md): the engine alone gets it wrong, the template as acm-lite compiles
it gives OPA's answer. The expected values are what OPA 1.4.2 (``opa eval --v0-compatible``)
answers for the same module and input.

If a case's first assertion starts failing, regorus has been fixed: the rewrite for it can go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import regorus

from acm_lite.policy import rego_source
from acm_lite.policy.rego import RegoError, RegoProgram


def engine_alone(rego: str, review_input: dict[str, Any]) -> list[str] | str:
    """Messages of ``violation`` as regorus alone gives them, or its error."""
    engine = regorus.Engine()
    engine.set_rego_v0(True)
    try:
        engine.add_policy("t.rego", rego)
        engine.set_input_json(json.dumps(review_input))
        found = json.loads(engine.eval_rule_as_json("data.t.violation"))
    except (RuntimeError, ValueError) as e:
        return f"error: {e}"
    return sorted(v["msg"] for v in found) if isinstance(found, list) else []


def compiled(rego: str, review_input: dict[str, Any]) -> list[str]:
    return sorted(v["msg"] for v in RegoProgram("t", rego, []).violations(review_input))


CASES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    # OPA: each further body is another definition. regorus: an else, refused for partial rules.
    "chained bodies of a partial rule": (
        'package t\nviolation[{"msg": m}] { input.a; m := "first" } { input.b; m := "second" }\n',
        {"a": True, "b": True},
        ["first", "second"],
    ),
    # regorus reads the second body as `else = true`: the rule is true, not 5.
    "chained bodies of a complete rule": (
        'package t\nv = 5 { false } { true }\nviolation[{"msg": m}] { m := sprintf("%v", [v]) }\n',
        {},
        ["5"],
    ),
    # regorus calls `input.limit` with the next line's parenthesised expression.
    "a line starting with a parenthesis": (
        'package t\nviolation[{"msg": "spread"}] {\n'
        "  input.limit\n  (input.max - input.min) < input.limit\n}\n",
        {"limit": 2, "max": 3, "min": 2},
        ["spread"],
    ),
    "sprintf with a missing argument": (
        'package t\nviolation[{"msg": m}] { m := sprintf("%v allowed: %v", ["x"]) }\n',
        {},
        ["x allowed: %!v(MISSING)"],
    ),
    "sprintf with an extra argument": (
        'package t\nviolation[{"msg": m}] { m := sprintf("%v", ["x", 2]) }\n',
        {},
        ["x%!(EXTRA int=2)"],
    ),
    "sprintf with a verb of the wrong kind": (
        'package t\nviolation[{"msg": m}] { m := sprintf("%d|%s", ["a", 1]) }\n',
        {},
        ["%!d(string=a)|%!s(int=1)"],
    ),
    # OPA evaluates a call's reference arguments before the negation: undefined fails the body.
    "not of a function with an undefined argument": (
        'package t\naccept("RunAsAny", _, _)\n'
        'violation[{"msg": "group"}] { not accept(input.rule, 1, input.ranges) }\n',
        {"rule": "RunAsAny"},
        [],
    ),
    "not of a builtin with an undefined argument": (
        'package t\nviolation[{"msg": "prefix"}] { not startswith(input.image, "good/") }\n',
        {},
        [],
    ),
    "not of a comparison with an undefined operand": (
        'package t\nviolation[{"msg": "low"}] { not input.replicas > 1 }\n',
        {},
        [],
    ),
    "not of a reference with an undefined index": (
        'package t\nviolation[{"msg": "key"}] { not input.allowed[input.name] }\n',
        {"allowed": {}},
        [],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_alone_differs_from_opa_and_the_compiled_template_does_not(name: str) -> None:
    rego, review_input, opa = CASES[name]
    assert engine_alone(rego, review_input) != opa
    assert compiled(rego, review_input) == opa


@pytest.mark.parametrize(
    ("rego", "review_input", "opa"),
    [
        # plain negations are left alone: an undefined reference or equality still negates to true
        ('package t\nviolation[{"msg": "no team"}] { not input.labels.team }\n', {}, ["no team"]),
        ('package t\nviolation[{"msg": "not a"}] { not input.kind == "a" }\n', {}, ["not a"]),
        # defined arguments: the negation means what it always meant
        (
            'package t\nhas(o, f) { o[f] }\nviolation[{"msg": c.name}] {\n'
            '  c := input.containers[_]\n  not has(c, "image")\n}\n',
            {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]},
            ["b"],
        ),
        # numbers read from YAML: integral floats and big integers compare as OPA compares them
        ('package t\nviolation[{"msg": "one"}] { input.n == 1 }\n', {"n": 1.0}, ["one"]),
        (
            'package t\nviolation[{"msg": "big"}] { input.n == 123456789012345678901234567890 }\n',
            {"n": 123456789012345678901234567890},
            ["big"],
        ),
        ('package t\nviolation[{"msg": m}] { m := sprintf("%v", [input.n + 1]) }\n', {"n": 2.0}, ["3"]),
    ],
)
def test_what_both_engines_already_agree_on_is_unchanged(
    rego: str, review_input: dict[str, Any], opa: list[str]
) -> None:
    assert engine_alone(rego, review_input) == opa
    assert compiled(rego, review_input) == opa


def test_rewrites_keep_every_line_where_it_was() -> None:
    rego = (
        "package t\n"
        'violation[{"msg": m}] { input.a; m := "a" } { input.b; m := "b" }\n'
        'violation[{"msg": m}] {\n  input.limit\n  (input.max - 1) > 0\n  m := sprintf("%v", [])\n}\n'
        'violation[{"msg": m}] {\n  m := input.x + "oops"\n}\n'
    )
    rewritten = rego_source.rewrite(rego)
    assert rewritten.count("\n") == rego.count("\n")
    with pytest.raises(RegoError, match=r"t\.rego:9"):
        RegoProgram("t", rego, []).violations({"x": 1})


def test_strings_and_comments_are_not_rewritten() -> None:
    rego = (
        "package t\n"
        "# not f(input.a) and } { in a comment\n"
        'violation[{"msg": m}] {\n  m := "not startswith(input.x, \\"y\\") } { sprintf("\n}\n'
    )
    assert rego_source.rewrite(rego) == rego
    assert compiled(rego, {}) == ['not startswith(input.x, "y") } { sprintf(']


def test_a_template_defining_its_own_sprintf_keeps_it() -> None:
    rego = 'package t\nsprintf(a, b) = "mine"\nviolation[{"msg": m}] { m := sprintf("%v", []) }\n'
    assert "acm_lite_builtins" not in rego_source.rewrite(rego)


@pytest.mark.parametrize(
    ("text", "kinds", "plan"),
    [
        ("%v and %v", ["int"], ["%v and %%!v(MISSING)", [0], []]),
        ("%v", ["string", "int", "float64"], ["%v", [0], [[1, "int"], [2, "float64"]]]),
        ("100%% %d", ["int"], ["100%% %d", [0], []]),
        ("%5.2f|%-3s", ["float64", "string"], ["%5.2f|%-3s", [0, 1], []]),
        ("%d", ["string"], ["%%!d(string=%v)", [0], []]),
        (1, ["int"], [1, [], []]),
    ],
)
def test_sprintf_plan(text: Any, kinds: Any, plan: list[Any]) -> None:
    assert rego_source.sprintf_plan(text, kinds) == plan


def test_external_data_is_refused_naming_the_line() -> None:
    from acm_lite import errors
    from acm_lite.objects import Manifest
    from acm_lite.policy import model

    rego = 'package t\nviolation[{"msg": "x"}] {\n  r := external_data({"provider": "p", "keys": ["k"]})\n}\n'
    with pytest.raises(RegoError, match=r"t\.rego:3: external_data\(\) is not supported"):
        RegoProgram("t", rego, [])
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "k8sext"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "K8sExt"}}},
            "targets": [
                {"target": "admission.k8s.gatekeeper.sh", "rego": rego.replace("package t", "package k8sext")}
            ],
        },
    }
    loaded = model.load_template(Manifest(template, "template.yaml"))
    assert isinstance(loaded, errors.Problem) and loaded.code is errors.REGO_UNSUPPORTED
    # a template's own function of that name is its own, and runs
    own = 'package t\nexternal_data(x) = {"responses": []}\nviolation[{"msg": "x"}] { external_data({}) }\n'
    assert compiled(own, {}) == ["x"]


def test_hostile_rewrites_are_bounded() -> None:
    long_head = "violation[{" + ", ".join(f'"k{i}": {i}' for i in range(2000)) + "}]"
    chained = "package t\n" + long_head + " { true }" + " { true }" * 2000 + "\n"
    with pytest.raises(RegoError, match="too large when rewritten"):
        RegoProgram("t", chained, [])
    negations = "package t\np { " + "not " * 5000 + "input.x }\n"
    with pytest.raises(rego_source.RewriteError, match="too many negations"):
        rego_source.rewrite(negations)
