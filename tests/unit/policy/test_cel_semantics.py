"""The CEL engine evaluates as the API server's ValidatingAdmissionPolicy does, under Gatekeeper's
k8scel driver: lazy variables, missing fields, failure policy, messages, match conditions,
objects as served, and the engine choice (CEL before Rego, Rego when acm-lite cannot do the CEL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from acm_lite import policy
from acm_lite.objects import Manifest
from acm_lite.policy import cel
from acm_lite.policy.cel import CelError, CelProgram, as_served


def violations(source: dict[str, Any], obj: dict[str, Any], params: Any = None) -> list[str]:
    data = {
        "object": obj,
        "oldObject": None,
        "params": {},
        "request": {"operation": "CREATE"},
        "namespaceObject": None,
        "variables": {"params": params, "anyObject": obj},
    }
    return [v["msg"] for v in CelProgram(source).violations(data)]


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"replicas": 1}}


def test_an_unused_failing_variable_is_no_error() -> None:
    source = {
        "variables": [{"name": "broken", "expression": "object.spec.missing.deeper"}],
        "validations": [{"expression": "object.spec.replicas == 1"}],
    }
    assert violations(source, POD) == []


def test_a_failing_variable_read_behind_a_short_circuit_is_no_error() -> None:
    source = {
        "variables": [{"name": "broken", "expression": "object.spec.missing"}],
        "validations": [{"expression": "object.spec.replicas == 1 || variables.broken == 2"}],
    }
    assert violations(source, POD) == []


def test_a_failing_variable_that_is_read_is_the_error_kubernetes_reports() -> None:
    source = {
        "variables": [
            {"name": "broken", "expression": "object.spec.missing"},
            {"name": "uses", "expression": "variables.broken + 1"},
        ],
        "validations": [{"expression": "variables.uses == 2"}],
    }
    assert violations(source, POD) == [
        "expression 'variables.uses == 2' resulted in error: composited variable \"uses\" fails to "
        'evaluate: composited variable "broken" fails to evaluate: no such key: missing'
    ]


def test_variables_are_evaluated_once_per_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated: list[str] = []
    original = cel._Evaluation._eval_raw

    def counting(self: Any, compiled: cel.Compiled) -> Any:
        evaluated.append(compiled.source)
        return original(self, compiled)

    monkeypatch.setattr(cel._Evaluation, "_eval_raw", counting)
    source = {
        "variables": [
            {"name": "n", "expression": "object.spec.replicas * 10"},
            {"name": "unused", "expression": "object.spec.replicas * 100"},
        ],
        "validations": [
            {"expression": "variables.n > 5", "messageExpression": "'n is ' + string(variables.n)"},
            {"expression": "variables.n < 5", "messageExpression": "'n is ' + string(variables.n)"},
        ],
    }
    assert violations(source, POD) == ["n is 10"]
    assert evaluated.count("object.spec.replicas * 10") == 1
    assert "object.spec.replicas * 100" not in evaluated


def test_missing_fields_behind_has_and_optionals_are_not_errors() -> None:
    source = {
        "validations": [
            {"expression": "!has(object.spec.hostNetwork) || !object.spec.hostNetwork"},
            {"expression": "object.?spec.?hostPID.orValue(false) == false"},
            {"expression": "!object.?metadata.?labels.?team.hasValue()", "message": "team label set"},
        ]
    }
    assert violations(source, POD) == []
    labelled = copy.deepcopy(POD)
    labelled["metadata"]["labels"] = {"team": "a"}
    assert violations(source, labelled) == ["team label set"]


def test_a_plain_read_of_a_missing_field_is_no_such_key_and_fails_closed() -> None:
    source = {"validations": [{"expression": "object.spec.hostNetwork == false"}]}
    assert violations(source, POD) == [
        "expression 'object.spec.hostNetwork == false' resulted in error: no such key: hostNetwork"
    ]


def test_errors_are_worded_as_cel_go_words_them() -> None:
    cases = {
        "object.spec.containers[3].name == 'a'": "index '3' out of range in list size '0'",
        "object.spec.replicas / 0 == 1": "division by zero",
        "object.metadata['labels'] == {}": "no such key: labels",
    }
    obj = {**POD, "spec": {"replicas": 1, "containers": []}}
    for expression, error in cases.items():
        source = {"validations": [{"expression": expression}]}
        assert violations(source, obj) == [f"expression '{expression}' resulted in error: {error}"]


def test_failure_policy_ignore_admits_on_errors() -> None:
    source = {"failurePolicy": "Ignore", "validations": [{"expression": "object.spec.hostNetwork == false"}]}
    assert violations(source, POD) == []
    source["validations"].append({"expression": "object.spec.replicas > 3"})
    assert violations(source, POD) == ["failed expression: object.spec.replicas > 3"]


def test_messages_fall_back_as_the_api_server_does() -> None:
    failing = "object.spec.replicas > 3"
    cases = [
        ({"messageExpression": "'too few: ' + string(object.spec.replicas)"}, "too few: 1"),
        ({"messageExpression": "'  padded  '"}, "padded"),
        ({"messageExpression": "'two\\nlines'", "message": "fixed"}, "fixed"),
        ({"messageExpression": "'" + "x" * 6000 + "'", "message": "fixed"}, "fixed"),
        ({"messageExpression": "1", "message": "fixed"}, "fixed"),
        ({"messageExpression": "object.nope", "message": "fixed"}, "fixed"),
        ({"message": "  fixed  "}, "fixed"),
        ({}, f"failed expression: {failing}"),
    ]
    for extra, expected in cases:
        source = {"validations": [{"expression": failing, **extra}]}
        assert violations(source, POD) == [expected], extra


def test_match_conditions_skip_or_fail_by_policy() -> None:
    never = {"name": "never", "expression": "false"}
    broken = {"name": "broken", "expression": "object.nope == 1"}
    validation = [{"expression": "false", "message": "denied"}]
    assert violations({"matchConditions": [never, broken], "validations": validation}, POD) == []
    assert violations({"matchConditions": [broken], "validations": validation}, POD) == [
        "expression 'object.nope == 1' resulted in error: no such key: nope"
    ]
    ignored = {"matchConditions": [broken], "validations": validation, "failurePolicy": "Ignore"}
    assert violations(ignored, POD) == []
    assert violations(
        {"matchConditions": [{"name": "t", "expression": "true"}], "validations": validation}, POD
    ) == ["denied"]


def test_numeric_quantities_are_strings_as_the_api_server_serves_them() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": 2, "memory": "1Gi"}}}]},
    }
    source = {
        "validations": [
            {
                "expression": (
                    "quantity(object.spec.containers[0].resources.limits.cpu).isLessThan(quantity('1'))"
                ),
                "messageExpression": "'cpu ' + string(object.spec.containers[0].resources.limits.cpu)",
            }
        ]
    }
    assert violations(source, pod) == ["cpu 2"]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] == 2  # the object itself is untouched
    served = as_served(
        {
            "kind": "CronJob",
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "initContainers": [{"resources": {"requests": {"cpu": 0.5, "memory": 1000}}}]
                            }
                        }
                    }
                }
            },
        }
    )
    requests = served["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["resources"]
    assert requests["requests"] == {"cpu": "500m", "memory": "1k"}
    assert as_served({"kind": "ResourceQuota", "spec": {"hard": {"pods": 10}}})["spec"]["hard"] == {
        "pods": "10"
    }
    unchanged = {"kind": "ConfigMap", "data": {"cpu": 2}}
    assert as_served(unchanged) is unchanged


def test_int_or_string_fields_keep_their_type_and_string_reads_both() -> None:
    source = {"validations": [{"expression": "string(object.spec.port) == '8080'"}]}
    assert violations(source, {"kind": "Service", "spec": {"port": 8080}}) == []
    assert violations(source, {"kind": "Service", "spec": {"port": "8080"}}) == []


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ({"failurePolicy": "Sometimes", "validations": []}, "unrecognized failure policy: Sometimes"),
        ({"failurePolicy": "", "validations": []}, "unrecognized failure policy: "),
        ({"variables": [{"name": "params", "expression": "1"}]}, "params is not a valid variable name"),
        ({"variables": [{"name": "anyObject", "expression": "1"}]}, "anyObject is not a valid variable name"),
        ({"variables": [{"name": "gatekeeper_internal_x", "expression": "1"}]}, "not a valid variable name"),
        (
            {"matchConditions": [{"name": "gatekeeper_internal_m", "expression": "true"}]},
            "invalid match condition",
        ),
    ],
)
def test_sources_gatekeeper_refuses_do_not_compile(source: dict[str, Any], words: str) -> None:
    with pytest.raises(CelError, match=words):
        CelProgram(source)


def test_the_authorizer_is_not_declared_as_in_gatekeeper() -> None:
    with pytest.raises(CelError, match="authorizer variable is not available"):
        CelProgram(
            {"validations": [{"expression": "authorizer.group('').resource('pods').check('get').allowed()"}]}
        )


def _template(name: str, expression: str, rego: str | None) -> dict[str, Any]:
    code: list[dict[str, Any]] = [
        {
            "engine": "K8sNativeValidation",
            "source": {"validations": [{"expression": expression, "message": "cel"}]},
        }
    ]
    if rego is not None:
        code.append({"engine": "Rego", "source": {"rego": rego}})
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": name},
        "spec": {
            "crd": {"spec": {"names": {"kind": name.capitalize()}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": code}],
        },
    }


REGO = 'package {name}\nviolation[{{"msg": "rego"}}] {{\n  input.review.object.metadata.name == "bad"\n}}\n'


def _check(template: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    kind = template["spec"]["crd"]["spec"]["names"]["kind"]
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind,
        "metadata": {"name": "c"},
        "spec": {},
    }
    objs = [
        Manifest(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": "x"}}, "cm.yaml"
        )
        for n in names
    ]
    found = policy.check(objs, [Manifest(template, "t.yaml"), Manifest(constraint, "c.yaml")])
    return [(p.code.id, p.message) for p in found]


def test_cel_is_chosen_before_rego_when_both_are_given() -> None:
    template = _template("both", "object.metadata.name != 'bad'", REGO.format(name="both"))
    assert [m for _, m in _check(template, ["bad", "good"])] == ["[deny] Both/c: cel"]


def test_unsupported_cel_falls_back_to_the_rego_twin_and_says_so() -> None:
    expression = "object.data.transformList(k, v, v).size() == 0"
    template = _template("fallback", expression, REGO.format(name="fallback"))
    found = _check(template, ["bad", "good"])
    assert found[0][0] == "ACM3020"
    assert "uses transformList" in found[0][1] and "Rego is evaluated instead" in found[0][1]
    assert found[1:] == [("ACM3100", "[deny] Fallback/c: rego")]


def test_unsupported_cel_without_rego_fails_closed_with_a_code() -> None:
    template = _template("nofallback", "[1].all(i, v, v > 0)", None)
    found = _check(template, ["good"])
    assert [c for c, _ in found] == ["ACM3021", "ACM3001"]  # the template, then its constraint
    assert "two-variable comprehensions" in found[0][1]
    assert "template nofallback is invalid" in found[1][1]


def test_invalid_cel_is_not_an_unsupported_construct() -> None:
    template = _template("invalid", "object.metadata.name +", REGO.format(name="invalid"))
    found = _check(template, ["good"])
    assert found[0][0] == "ACM3001"
