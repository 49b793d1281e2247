"""The hostile policy and schema corpus (tests/hostile/policy), through the CLI in a subprocess:
a crash of the policy engine would show as a negative or 13x exit code, a hang as a timeout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "hostile" / "policy"


def cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def vet(case: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    run = cli("vet", str(case), "--source-format", "unstructured", "-o", "json", **env)
    assert run.returncode == 1, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    return run, json.loads(run.stdout)["errors"]


@pytest.mark.parametrize(
    "case",
    [
        "rego-mutual-recursion",
        "rego-self-recursive-function",
        "rego-self-recursive-rule",
        "rego-recursion-through-package-ref",
        "rego-recursion-through-libs",
    ],
)
def test_recursive_rego_is_refused_before_evaluation(case: str) -> None:
    _, found = vet(CORPUS / case)
    assert {e["code"] for e in found} == {"ACM3001"}
    template = [e for e in found if e["source"] == "template.yaml"]
    assert template and "rego_recursion_error" in template[0]["message"]


def test_cel_library_bombs_are_refused_or_answered_at_once() -> None:
    _, found = vet(CORPUS / "cel-library-bombs")
    messages = sorted(e["message"] for e in found)
    assert {e["code"] for e in found} == {"ACM3100"}
    assert len(messages) == 2
    assert "quantity exponent 999999999 is beyond what acm-lite evaluates" in messages[0]
    assert "lists.range(1000000000) is larger than acm-lite evaluates" in messages[1]


def test_a_huge_literal_range_is_refused_at_compile_time() -> None:
    _, found = vet(CORPUS / "rego-huge-range-literal")
    assert {e["code"] for e in found} == {"ACM3001"}
    assert any("numbers.range would build" in e["message"] for e in found)


def test_a_rewrite_that_would_blow_up_is_refused_at_compile_time() -> None:
    _, found = vet(CORPUS / "rego-rewrite-blowup")
    assert {e["code"] for e in found} == {"ACM3001"}
    assert any("too large when rewritten" in e["message"] for e in found)


@pytest.mark.parametrize(
    "case", ["rego-huge-range-parameter", "rego-huge-sprintf-width", "rego-cartesian-loop"]
)
def test_runaway_evaluation_is_stopped_and_coded(case: str) -> None:
    _, found = vet(CORPUS / case, ACM_LITE_POLICY_EVAL_SECONDS="3")
    [error] = found
    assert error["code"] == "ACM3004" and error["source"] == "configmap.yaml"
    assert error["message"].startswith("Hostile/hostile could not be evaluated")


def test_a_policy_that_stalls_the_parser_is_stopped_while_compiling() -> None:
    _, found = vet(CORPUS / "rego-parser-blowup", ACM_LITE_POLICY_EVAL_SECONDS="3")
    [error] = found
    assert error["code"] == "ACM3001" and error["source"] == "template.yaml"
    assert "while compiling (took longer than 3 s)" in error["message"]


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []  # noqa: RUF012 - shared by the server's handler instances

    def do_GET(self) -> None:
        _Recorder.requests.append(self.path)
        body = b'{"type": "object"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _with_url(case: str, url: str, tmp_path: Path) -> Path:
    target = tmp_path / case
    shutil.copytree(CORPUS / case, target)
    for file in target.iterdir():
        file.write_text(file.read_text().replace("{URL}", url))
    return target


@pytest.mark.parametrize(
    ("case", "code"), [("crd-ref-remote", "ACM1020"), ("template-parameter-ref-remote", "ACM3001")]
)
def test_a_remote_ref_is_refused_and_never_fetched(
    case: str, code: str, recorder: str, tmp_path: Path
) -> None:
    _, found = vet(_with_url(case, recorder, tmp_path))
    assert code in {e["code"] for e in found}
    assert any("$ref is not supported" in e["message"] for e in found)
    assert _Recorder.requests == []


def test_the_recorder_records(recorder: str) -> None:
    """The server the SSRF tests rely on does see a request made to it."""
    import urllib.request

    with urllib.request.urlopen(f"{recorder}/probe") as answer:
        assert answer.status == 200
    assert _Recorder.requests == ["/probe"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("crd-pattern-redos", "ACM1006"),
        ("crd-pattern-not-re2", "ACM1020"),
        ("template-parameter-pattern-redos", "ACM3002"),
    ],
)
def test_repository_patterns_run_in_re2(case: str, code: str) -> None:
    _, found = vet(CORPUS / case)
    assert [e["code"] for e in found] == [code]


def test_a_backtracking_suite_message_pattern_runs_in_re2() -> None:
    run = cli("policy", "verify", str(CORPUS / "suite-message-redos"), "-o", "json")
    assert run.returncode == 0, run.stdout


def test_a_suite_message_pattern_re2_cannot_compile_is_coded() -> None:
    run = cli("policy", "verify", str(CORPUS / "suite-message-not-re2"), "-o", "json")
    assert run.returncode == 1
    [case] = json.loads(run.stdout)["cases"]
    assert case["message"].startswith("ACM3006 PolicySuiteInvalid")
    assert "not a valid RE2 regular expression" in case["message"]


def test_schema_errors_never_show_secret_data() -> None:
    run, found = vet(CORPUS / "secret-data-in-schema-error")
    assert {e["code"] for e in found} == {"ACM1006"}
    text = (
        run.stdout
        + run.stderr
        + cli("vet", str(CORPUS / "secret-data-in-schema-error"), "--source-format", "unstructured").stdout
    )
    for value in ("czNjcjN0LWRhdGE=", "12345678901234", "s3cr3t-string-data", "czNjcjN0LXdob2xlLWRhdGE="):
        assert value not in text
    messages = " ".join(e["message"] for e in found)
    for field in ("data.password", "data.token", "stringData.api-key"):
        assert field in messages


def test_validators_never_retrieve_even_a_ref_that_slipped_through(recorder: str) -> None:
    """Defence in depth: the validators built for repository schemas have no retrieval at all."""
    from referencing.exceptions import Unresolvable

    from acm_lite.validate import crd_schema

    validator = crd_schema.validator({"type": "object", "properties": {"a": {"$ref": f"{recorder}/a.json"}}})
    with pytest.raises(Unresolvable):
        list(validator.iter_errors({"a": 1}))
    assert _Recorder.requests == []


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("rego-mutual-recursion", "ACM3001"),
        ("rego-huge-range-parameter", "ACM3004"),
        ("rego-parser-blowup", "ACM3001"),
    ],
)
def test_the_calling_process_survives(case: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `sync` and the daemon call, in this very process: a crash would end the test run."""
    from acm_lite import policy
    from acm_lite.parse import reader

    monkeypatch.setenv("ACM_LITE_POLICY_EVAL_SECONDS", "3")
    found = reader.read(CORPUS / case).manifests
    objs = [m for m in found if m.kind == "ConfigMap"]
    problems = policy.check(objs, [m for m in found if m not in objs])
    assert problems and {p.code.id for p in problems} == {code}
