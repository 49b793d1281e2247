"""Templates, constraints, enforcement actions, expansion and inventory, evaluated in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acm_lite import declare, policy
from acm_lite.objects import Manifest
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.policy import library, model, verify
from tests.unit.repo_builder import write

REGO_TEMPLATE = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "needsowner"},
    "spec": {
        "crd": {
            "spec": {
                "names": {"kind": "NeedsOwner"},
                "validation": {
                    "openAPIV3Schema": {"type": "object", "properties": {"key": {"type": "string"}}}
                },
            }
        },
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": (
                    "package needsowner\n"
                    'violation[{"msg": msg}] {\n'
                    "  not input.review.object.metadata.labels[input.parameters.key]\n"
                    '  msg := sprintf("%v has no %v label", [input.review.object.metadata.name,'
                    " input.parameters.key])\n}\n"
                ),
            }
        ],
    },
}
CEL_TEMPLATE = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "smallreplicas"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "SmallReplicas"}}},
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "code": [
                    {
                        "engine": "K8sNativeValidation",
                        "source": {
                            "validations": [
                                {
                                    "expression": "object.spec.replicas <= variables.params.max",
                                    "messageExpression": (
                                        "'replicas ' + string(object.spec.replicas) + ' > ' + "
                                        "string(variables.params.max)"
                                    ),
                                }
                            ]
                        },
                    }
                ],
            }
        ],
    },
}


def constraint(kind: str, name: str, action: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": dict(spec),
    }
    if action:
        body["spec"]["enforcementAction"] = action
    return body


def cm(name: str, labels: dict[str, str] | None = None) -> Manifest:
    return Manifest(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "x", "labels": labels or {}},
        },
        "cm.yaml",
    )


def run(objs: list[Manifest], *policy_bodies: dict[str, Any]) -> list[tuple[str, str]]:
    problems = policy.check(objs, [Manifest(b, "policy.yaml") for b in policy_bodies])
    return [(p.code.id, p.message) for p in problems]


def test_deny_warn_and_dryrun() -> None:
    objs = [cm("labelled", {"owner": "me"}), cm("bare")]
    for action, code in (("deny", "ACM3100"), ("warn", "ACM3101"), ("dryrun", "ACM3102"), (None, "ACM3100")):
        found = run(
            objs, REGO_TEMPLATE, constraint("NeedsOwner", "owner", action, parameters={"key": "owner"})
        )
        shown = action or "deny"
        assert found == [(code, f"[{shown}] NeedsOwner/owner: bare has no owner label")]


def test_scoped_enforcement_actions_pick_our_enforcement_point() -> None:
    scoped = constraint(
        "NeedsOwner",
        "owner",
        "scoped",
        parameters={"key": "owner"},
        scopedEnforcementActions=[
            {"action": "warn", "enforcementPoints": [{"name": "gator.gatekeeper.sh"}]},
            {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
        ],
    )
    assert [c for c, _ in run([cm("bare")], REGO_TEMPLATE, scoped)] == ["ACM3101"]


def test_cel_template() -> None:
    deployment = Manifest(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "x"},
            "spec": {"replicas": 9},
        },
        "d.yaml",
    )
    small = constraint(
        "SmallReplicas",
        "max-3",
        parameters={"max": 3},
        match={"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]},
    )
    assert run([deployment, cm("ignored")], CEL_TEMPLATE, small) == [
        ("ACM3100", "[deny] SmallReplicas/max-3: replicas 9 > 3")
    ]


@pytest.mark.parametrize(
    ("bodies", "code", "words"),
    [
        (
            [
                {
                    **REGO_TEMPLATE,
                    "spec": {
                        **REGO_TEMPLATE["spec"],
                        "targets": [
                            {"target": "admission.k8s.gatekeeper.sh", "rego": "package x\nviolation[{ {"}
                        ],
                    },
                },
                constraint("NeedsOwner", "c", parameters={"key": "owner"}),
            ],
            "ACM3001",
            "does not compile",
        ),
        (
            [REGO_TEMPLATE, constraint("NeedsOwner", "c", parameters={"key": 7})],
            "ACM3002",
            "spec.parameters.key",
        ),
        ([constraint("NobodyDefinesThis", "c")], "ACM3003", "no ConstraintTemplate"),
        ([REGO_TEMPLATE, constraint("NeedsOwner", "c", "block")], "ACM3002", "enforcementAction"),
        ([{**REGO_TEMPLATE, "metadata": {"name": "wrong"}}], "ACM3001", "metadata.name"),
    ],
)
def test_broken_policies_fail_closed(bodies: list[dict[str, Any]], code: str, words: str) -> None:
    found = run([cm("anything")], *bodies)
    assert [c for c, _ in found][:1] == [code]
    assert words in found[0][1]
    assert all(c.startswith("ACM30") for c, _ in found)  # never a silent pass


def test_a_cel_evaluation_error_fails_closed() -> None:
    no_replicas = Manifest(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "x"},
            "spec": {},
        },
        "d.yaml",
    )
    found = run([no_replicas], CEL_TEMPLATE, constraint("SmallReplicas", "c", parameters={"max": 3}))
    assert [c for c, _ in found] == ["ACM3100"]
    # the API server's words, as Gatekeeper's k8scel driver reports them
    assert found[0][1].endswith(
        "expression 'object.spec.replicas <= variables.params.max' resulted in error: no such key: replicas"
    )


def test_policy_objects_in_the_repo_are_enforced_and_not_applied(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "policy.yaml": [
                REGO_TEMPLATE,
                constraint(
                    "NeedsOwner",
                    "owner",
                    parameters={"key": "owner"},
                    match={"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]},
                ),
            ],
            "cm.yaml": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare"}}],
        },
    )
    result = declare.declare(
        declare.load(tmp_path, "unstructured"),
        ClusterTarget(None),
        declare.Options(source_format="unstructured"),
    )
    assert result.problems == []  # no KNV1021: Gatekeeper kinds are known, and not applied
    assert [o.kind for o in result.objects] == ["ConfigMap"]
    assert [o.kind for o in result.policy] == ["ConstraintTemplate", "NeedsOwner"]
    found = policy.check(result.objects, result.policy)
    assert [(p.code.id, p.source, p.obj["name"] if p.obj else "") for p in found] == [
        ("ACM3100", "cm.yaml", "bare")
    ]


def test_referential_templates_see_the_whole_declared_set() -> None:
    objs = [
        Manifest(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"rules": [{"host": "shop.acme.io"}]},
            },
            f"{name}.yaml",
        )
        for name, ns in (("a", "one"), ("b", "two"))
    ]
    sources = library.load(library.PolicySources(directories=(library.root() / "templates",)))
    unique = constraint("AcmUniqueIngressHost", "unique")
    found = policy.check(objs, [*sources, Manifest(unique, "u.yaml")])
    assert sorted(p.message for p in found) == [
        "[deny] AcmUniqueIngressHost/unique: host shop.acme.io is already served by Ingress one/a",
        "[deny] AcmUniqueIngressHost/unique: host shop.acme.io is already served by Ingress two/b",
    ]


def test_expansion_checks_pod_templates_of_every_workload_kind() -> None:
    spec = {
        "template": {
            "spec": {"containers": [{"name": "c", "image": "x:1", "securityContext": {"privileged": True}}]}
        }
    }
    workloads = [
        ("apps/v1", "Deployment", spec),
        ("apps/v1", "StatefulSet", spec),
        ("apps/v1", "DaemonSet", spec),
        ("apps/v1", "ReplicaSet", spec),
        ("batch/v1", "Job", spec),
        ("batch/v1", "CronJob", {"jobTemplate": {"spec": spec}}),
    ]
    objs = [
        Manifest(
            {
                "apiVersion": av,
                "kind": kind,
                "metadata": {"name": kind.lower(), "namespace": "x"},
                "spec": body,
            },
            "w.yaml",
        )
        for av, kind, body in workloads
    ]
    found = policy.check(objs, library.load(library.PolicySources(("pod-security-baseline",))))
    names = sorted(p.obj["name"] for p in found if p.obj)
    assert names == [
        "cronjob-job-pod",
        "daemonset-pod",
        "deployment-pod",
        "job-pod",
        "replicaset-pod",
        "statefulset-pod",
    ]
    assert all("[Implied by expand-workloads]" in p.message for p in found)


def test_every_library_suite_passes_and_every_template_has_one() -> None:
    root = library.root()
    found = verify.find_suites([root])
    results = [r for s, under in found for r in verify.run_suite(s, under)]
    suites = [s for s, _ in found]
    assert [r for r in results if not r.passed] == []
    templates = sorted(p.parent.name for p in (root / "templates").glob("*/template.yaml"))
    with_suites = sorted(s.parent.name for s in suites if s.parent.parent.name == "templates")
    assert templates == with_suites and len(templates) >= 21
    engines = {t.engine for t in model.build(library.read_directory(root / "templates")).templates.values()}
    assert engines == {"Rego", "CEL"}


def test_bundles_compile() -> None:
    for bundle in library.bundles():
        built = model.build(library.load(library.PolicySources((bundle,))))
        assert built.problems == [] and len(built.constraints) >= 5, bundle


def test_a_suite_with_a_malformed_expansion_fails_instead_of_checking_less(tmp_path: Path) -> None:
    import shutil

    root = library.root() / "templates" / "privileged-containers"
    shutil.copytree(root, tmp_path / "t")
    (tmp_path / "t" / "bad-expansion.yaml").write_text(
        "apiVersion: expansion.gatekeeper.sh/v1beta1\nkind: ExpansionTemplate\n"
        "metadata: {name: broken}\nspec: {applyTo: []}\n"
    )
    (tmp_path / "t" / "suite.yaml").write_text(
        "apiVersion: test.gatekeeper.sh/v1alpha1\nkind: Suite\ntests:\n- name: t\n"
        "  template: template.yaml\n  constraint: samples/constraint.yaml\n"
        "  expansion: bad-expansion.yaml\n  cases:\n  - name: c\n"
        "    object: samples/deployment.yaml\n    assertions: [{violations: no}]\n"
    )
    [result] = verify.run_suite(tmp_path / "t" / "suite.yaml")
    assert not result.passed and "generatedGVK" in result.message
