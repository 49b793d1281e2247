"""`acm-lite policy test` as a user runs it in place of `gator test`: inputs from files,
directories and stdin, gator's output shapes, and gator's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from acm_lite.source import oci
from tests.integration.test_artifact_sources import layer
from tests.support.registry import Registry
from tests.unit.repo_builder import write

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8steamlabel
spec:
  crd:
    spec:
      names:
        kind: K8sTeamLabel
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8steamlabel

      violation[{"msg": msg, "details": {"missing": "team"}}] {
        not input.review.object.metadata.labels.team
        input.review.operation != "DELETE"
        msg := sprintf("%v %v has no team label", [input.review.kind.kind, input.review.object.metadata.name])
      }
"""


def constraint(name: str, action: str | None = None, scoped: str | None = None) -> str:
    spec = {"match": {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]}}
    if action:
        spec["enforcementAction"] = action
    if scoped:
        spec["scopedEnforcementActions"] = [
            {"action": scoped, "enforcementPoints": [{"name": "gator.gatekeeper.sh"}]}
        ]
    body = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sTeamLabel",
        "metadata": {"name": name},
        "spec": spec,
    }
    return yaml.safe_dump(body)


def configmap(name: str, team: str | None = None, namespace: str = "apps") -> str:
    meta: dict[str, object] = {"name": name, "namespace": namespace}
    if team:
        meta["labels"] = {"team": team}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}})


def cli(*args: str, stdin: str | None = None, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACM_LITE_CACHE": str(cache)} if cache else None
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", "policy", "test", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def test_files_and_directories_deny_exits_1_with_gators_lines(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "policies/template.yaml": TEMPLATE,
            "policies/nested/constraint.yaml": constraint("cm-team"),
            "policies/README.md": "not read: only .yaml, .yml and .json files are",
            "bad.yaml": configmap("no-team"),
            "good.yaml": configmap("has-team", team="a"),
        },
    )
    run = cli(
        "-f", str(tmp_path / "policies"), "-f", str(tmp_path / "bad.yaml"), "-f", str(tmp_path / "good.yaml")
    )
    assert run.returncode == 1, run.stderr
    assert (
        run.stdout
        == 'v1/ConfigMap apps/no-team: ["cm-team"] Message: "ConfigMap no-team has no team label"\n'
    )

    clean = cli("-f", str(tmp_path / "policies"), "-f", str(tmp_path / "good.yaml"))
    assert (clean.returncode, clean.stdout) == (0, ""), clean.stderr


def test_stdin_with_policies_from_a_directory(tmp_path: Path) -> None:
    write(tmp_path, {"p/template.yaml": TEMPLATE, "p/constraint.yaml": constraint("cm-team")})
    piped = cli("-f", str(tmp_path / "p"), stdin=configmap("piped"))
    assert piped.returncode == 1
    assert '"cm-team"' in piped.stdout and "piped has no team label" in piped.stdout
    dash = cli("-f", "-", stdin=TEMPLATE + "---\n" + constraint("cm-team") + "---\n" + configmap("dashed"))
    assert dash.returncode == 1 and "dashed has no team label" in dash.stdout


def test_json_output_is_gators_result_shape(tmp_path: Path) -> None:
    write(tmp_path, {"all.yaml": TEMPLATE + "---\n" + constraint("cm-team") + "---\n" + configmap("bad")})
    run = cli("-f", str(tmp_path / "all.yaml"), "-o", "json")
    assert run.returncode == 1
    results = json.loads(run.stdout)
    assert len(results) == 1
    result = results[0]
    assert list(result) == [
        "target",
        "msg",
        "metadata",
        "constraint",
        "enforcementAction",
        "violatingObject",
        "trace",
    ]
    assert result["target"] == "admission.k8s.gatekeeper.sh"
    assert result["msg"] == "ConfigMap bad has no team label"
    assert result["metadata"] == {"details": {"missing": "team"}}
    assert result["constraint"]["metadata"]["name"] == "cm-team"
    assert result["enforcementAction"] == "deny"
    assert result["violatingObject"]["metadata"]["name"] == "bad"
    assert result["trace"] is None
    write(tmp_path, {"ok.yaml": TEMPLATE + "---\n" + constraint("cm-team") + "---\n" + configmap("ok", "a")})
    clean = cli("-f", str(tmp_path / "ok.yaml"), "-o", "json")
    assert (clean.returncode, clean.stdout.strip()) == (0, "null")


def test_yaml_output_is_gators_result_shape(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"all.yaml": TEMPLATE + "---\n" + constraint("cm-team", "warn") + "---\n" + configmap("bad")},
    )
    run = cli("-f", str(tmp_path / "all.yaml"), "-o", "yaml")
    assert run.returncode == 0  # warn prints but does not fail, as in gator
    results = yaml.safe_load(run.stdout)
    assert list(results[0]) == ["result", "violatingObject", "trace"]
    framework = results[0]["result"]
    assert framework["msg"] == "ConfigMap bad has no team label"
    assert framework["enforcementaction"] == "warn"
    assert framework["scopedenforcementactions"] == []
    assert framework["constraint"]["object"]["metadata"]["name"] == "cm-team"
    assert results[0]["violatingObject"]["metadata"]["name"] == "bad"


def test_exit_codes_follow_the_enforcement_action(tmp_path: Path) -> None:
    cases = {
        "deny": (constraint("c", "deny"), 1),
        "default": (constraint("c"), 1),
        "warn": (constraint("c", "warn"), 0),
        "dryrun": (constraint("c", "dryrun"), 0),
        "scoped-deny": (constraint("c", "scoped", scoped="deny"), 1),
        "scoped-warn": (constraint("c", "scoped", scoped="warn"), 0),
    }
    for name, (body, code) in cases.items():
        write(tmp_path, {f"{name}.yaml": TEMPLATE + "---\n" + body + "---\n" + configmap("bad")})
        run = cli("-f", str(tmp_path / f"{name}.yaml"), "-o", "json")
        assert run.returncode == code, (name, run.stdout, run.stderr)
        results = json.loads(run.stdout)
        assert len(results) == 1, name
        if name.startswith("scoped"):
            assert results[0]["enforcementAction"] == "scoped"
            assert results[0]["scopedActions"] == [name.split("-")[1]]
    mixed = TEMPLATE + "---\n" + constraint("a-warn", "warn") + "---\n" + constraint("b-deny") + "---\n"
    write(tmp_path, {"mixed.yaml": mixed + configmap("bad")})
    everything = cli("-f", str(tmp_path / "mixed.yaml"))
    assert everything.returncode == 1
    assert '["a-warn"]' in everything.stdout and '["b-deny"]' in everything.stdout
    deny_only = cli("-f", str(tmp_path / "mixed.yaml"), "--deny-only")
    assert deny_only.returncode == 1
    assert '["a-warn"]' not in deny_only.stdout and '["b-deny"]' in deny_only.stdout


def test_admission_review_is_reviewed_as_its_request(tmp_path: Path) -> None:
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "operation": "DELETE",
            "oldObject": yaml.safe_load(configmap("leaving")),
        },
    }
    created = {**review, "request": {"operation": "CREATE", "object": yaml.safe_load(configmap("arriving"))}}
    write(
        tmp_path,
        {
            "p.yaml": TEMPLATE + "---\n" + constraint("cm-team"),
            "delete.yaml": yaml.safe_dump(review),
            "create.yaml": yaml.safe_dump(created),
        },
    )
    deleted = cli("-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "delete.yaml"))
    assert (deleted.returncode, deleted.stdout) == (0, ""), deleted.stderr
    arriving = cli("-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "create.yaml"), "-o", "json")
    assert arriving.returncode == 1
    assert json.loads(arriving.stdout)[0]["violatingObject"]["metadata"]["name"] == "arriving"


def test_broken_inputs_are_coded_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "notes.txt": "hello",
            "broken.yaml": "a: [",
            "p.yaml": TEMPLATE + "---\n" + constraint("cm-team"),
            "review.yaml": (
                "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {operation: CREATE}\n"
            ),
            "orphan.yaml": constraint("no-template").replace("K8sTeamLabel", "K8sNoSuchKind"),
        },
    )
    nothing = cli()
    assert nothing.returncode == 1 and "ACM3007" in nothing.stderr and "no input data" in nothing.stderr
    for args in (["-f", str(tmp_path / "missing.yaml")], ["-f", str(tmp_path / "notes.txt")]):
        run = cli(*args)
        assert run.returncode == 1 and "ACM3007" in run.stderr, (args, run.stderr)
    broken = cli("-f", str(tmp_path / "broken.yaml"))
    assert broken.returncode == 1 and "ACM3007" in broken.stderr and "broken.yaml" in broken.stderr
    review = cli("-f", str(tmp_path / "p.yaml"), "-f", str(tmp_path / "review.yaml"))
    assert review.returncode == 1 and "ACM3007" in review.stderr and "review.yaml" in review.stderr
    orphan = cli("-f", str(tmp_path / "orphan.yaml"), "-f", str(tmp_path / "p.yaml"))
    assert orphan.returncode == 1 and "ACM3003" in orphan.stderr


def test_policies_from_an_oci_image(oci_registry: Registry, tmp_path: Path) -> None:
    image = oci_registry.image(f"policies/{uuid.uuid4().hex[:8]}", "v1")
    oci.push(
        image,
        layer(
            {
                "templates/team.yaml": yaml.safe_load(TEMPLATE),
                "constraints/c.yaml": yaml.safe_load(constraint("c")),
            }
        ),
    )
    write(tmp_path, {"bad.yaml": configmap("bad"), "good.yaml": configmap("good", "a")})
    cache = tmp_path / "cache"
    denied = cli("--plain-http", "--image", image, "-f", str(tmp_path / "bad.yaml"), cache=cache)
    assert denied.returncode == 1, denied.stderr
    assert denied.stdout == 'v1/ConfigMap apps/bad: ["c"] Message: "ConfigMap bad has no team label"\n'
    clean = cli("-i", image, "-f", str(tmp_path / "good.yaml"), cache=cache)
    assert (clean.returncode, clean.stdout) == (0, ""), clean.stderr
    missing = cli(
        "-i", oci_registry.image("policies/absent", "v1"), "-f", str(tmp_path / "good.yaml"), cache=cache
    )
    assert missing.returncode == 1 and "ACM3007" in missing.stderr and "policies/absent" in missing.stderr


def test_an_idle_stdin_pipe_is_skipped_when_files_are_given(tmp_path: Path) -> None:
    write(tmp_path, {"all.yaml": TEMPLATE + "---\n" + constraint("c") + "---\n" + configmap("bad")})
    run = subprocess.Popen(
        [sys.executable, "-m", "acm_lite", "policy", "test", "-f", str(tmp_path / "all.yaml")],
        stdin=subprocess.PIPE,  # left open and silent, as a CI runner's stdin can be
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert run.stdin is not None and run.stdout is not None and run.stderr is not None
    try:
        code = run.wait(timeout=120)
        out, err = run.stdout.read(), run.stderr.read()
    finally:
        run.stdin.close()
        run.kill()
        run.wait()
    assert code == 1 and "bad has no team label" in out
    assert "stdin not read" in err
