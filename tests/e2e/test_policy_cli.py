"""`acm-lite policy verify` and policy enforcement through `vet`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.repo_builder import write

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_verify_the_library() -> None:
    text = cli("policy", "verify", "policies")
    assert text.returncode == 0, text.stdout[-2000:]
    last = text.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0 failed") and int(last.split()[0]) >= 50
    data = json.loads(cli("policy", "verify", "policies", "-o", "json").stdout)
    assert data["failed"] == 0 and data["passed"] == len(data["cases"])
    assert set(data["cases"][0]) == {"suite", "test", "case", "passed", "message"}


def test_a_failing_case_fails_the_run(tmp_path: Path) -> None:
    template = (ROOT / "policies/templates/block-nodeport/template.yaml").read_text()
    write(
        tmp_path,
        {
            "template.yaml": template,
            "constraint.yaml": (
                ROOT / "policies/templates/block-nodeport/samples/constraint.yaml"
            ).read_text(),
            "svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: NodePort}\n",
            "suite.yaml": "apiVersion: test.gatekeeper.sh/v1alpha1\nkind: Suite\ntests:\n"
            "- name: t\n  template: template.yaml\n  constraint: constraint.yaml\n"
            "  cases:\n  - name: wrongly-expects-none\n    object: svc.yaml\n"
            "    assertions: [{violations: no}]\n"
            "  - name: missing-file\n    object: nope.yaml\n",
        },
    )
    run = cli("policy", "verify", str(tmp_path), "-o", "json")
    assert run.returncode == 1
    cases = {c["case"]: c for c in json.loads(run.stdout)["cases"]}
    assert not cases["wrongly-expects-none"]["passed"]
    assert "want none, got 1" in cases["wrongly-expects-none"]["message"]
    assert "cannot read nope.yaml" in cases["missing-file"]["message"]


def test_vet_blocks_on_deny_and_reports_warn(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "deploy.yaml": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "agent", "namespace": "ops"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "agent",
                                    "image": "registry.acme.io/agent:1",
                                    "securityContext": {"privileged": True},
                                }
                            ]
                        },
                    },
                },
            }
        },
    )
    run = cli(
        "vet",
        str(tmp_path),
        "--source-format",
        "unstructured",
        "--policy-bundle",
        "pod-security-baseline",
        "-o",
        "json",
    )
    assert run.returncode == 1
    [error] = json.loads(run.stdout)["errors"]
    assert error["code"] == "ACM3100" and error["source"] == "deploy.yaml"
    assert "AcmPrivilegedContainer/pss-baseline-privileged" in error["message"]
    assert error["object"]["kind"] == "Pod"
