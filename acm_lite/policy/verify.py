"""Run gator ``Suite`` files (``test.gatekeeper.sh/v1alpha1``) as ``gator verify`` does.

Each test names a template, a constraint and optionally an expansion; each case an object (or an
AdmissionReview), optional inventory files, and assertions: ``violations`` (yes, no or a count;
yes by default) of the results whose message matches ``message`` (an unanchored regex).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.objects import Manifest
from acm_lite.policy import model, review
from acm_lite.policy.rego import RegoProgram
from acm_lite.policy.review import Subject

SUITE_API = "test.gatekeeper.sh/v1alpha1"


@dataclass(frozen=True)
class CaseResult:
    suite: str
    test: str
    case: str
    passed: bool
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "test": self.test, "case": self.case, "passed": self.passed,
                "message": self.message}


def find_suites(paths: list[Path]) -> list[Path]:
    """Suite files under each path (other YAML files are ignored, as gator does)."""
    found = []
    for path in paths:
        files = [path] if path.is_file() else sorted(path.rglob("*.y*ml"))
        for file in files:
            try:
                docs = list(yaml.safe_load_all(file.read_text()))
            except (OSError, yaml.YAMLError):
                continue
            if any(isinstance(d, dict) and d.get("kind") == "Suite"
                   and d.get("apiVersion") == SUITE_API for d in docs):
                found.append(file)
    return found


def _read(base: Path, rel: str) -> list[dict[str, Any]]:
    path = (base / rel).resolve()
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as e:
        raise AcmError(errors.POLICY_SUITE_INVALID, f"cannot read {rel}: {e}", path=str(path)) from e
    if not all(isinstance(d, dict) for d in docs):
        raise AcmError(errors.POLICY_SUITE_INVALID, f"{rel} must hold objects", path=str(path))
    return docs


def _one(base: Path, rel: str) -> Manifest:
    docs = _read(base, rel)
    if len(docs) != 1:
        raise AcmError(errors.POLICY_SUITE_INVALID, f"{rel} must hold exactly one object",
                       path=str(base / rel))
    return Manifest(docs[0], rel)


def _subject(body: dict[str, Any], rel: str, namespaces: dict[str, dict[str, Any]]) -> Subject:
    if body.get("kind") == "AdmissionReview":
        request = body.get("request") or {}
        obj = request.get("object") or request.get("oldObject") or {}
        meta = obj.get("metadata") or {}
        reviewed = review.review_of(obj, request.get("operation", "CREATE"),
                                    request.get("oldObject"))
        reviewed["userInfo"] = request.get("userInfo") or review.USER
        subject = Subject(obj, rel, namespaces.get(meta.get("namespace", "")), "Original")
        subject.review_json_text = json.dumps(reviewed)
        return subject
    namespace = (body.get("metadata") or {}).get("namespace", "")
    return Subject(body, rel, namespaces.get(namespace), "Original")


def _count_ok(want: Any, matching: int) -> str | None:
    if want is None or want is True or want == "yes":
        return None if matching > 0 else "want at least 1 violation"
    if want is False or want == "no":
        return None if matching == 0 else f"want none, got {matching}"
    if isinstance(want, int) and want >= 0:
        return None if matching == want else f"want exactly {want}, got {matching}"
    return f"invalid assertion violations: {want!r} (yes, no or a non-negative integer)"


def _run_case(base: Path, test: model.PolicySet, case: dict[str, Any]) -> str:
    """'' when every assertion holds, else why not."""
    inventory = [d for rel in case.get("inventory") or [] for d in _read(base, str(rel))]
    namespaces = {(d.get("metadata") or {}).get("name", ""): d for d in inventory
                  if d.get("kind") == "Namespace" and d.get("apiVersion") == "v1"}
    body = _one(base, str(case["object"])).body
    if body.get("kind") == "Namespace" and body.get("apiVersion") == "v1":
        namespaces.setdefault(body["metadata"]["name"], body)
    subject = _subject(body, str(case["object"]), namespaces)
    for template in test.templates.values():
        if isinstance(template.program, RegoProgram):
            template.program.set_inventory(review.inventory(inventory), id(inventory))
    expansions, broken = review.load_expansions(test)
    if broken:  # a malformed expansion fails the case; it never silently checks less
        return "; ".join(p.message for p in broken)
    messages: list[str] = []
    for one in review.with_expansions(subject, expansions):
        for constraint in test.constraints:
            outcome = review.check(constraint, one)
            if isinstance(outcome, errors.Problem):
                return outcome.message
            messages += [v.message for v in outcome]
    for assertion in case.get("assertions") or [{}]:
        pattern = assertion.get("message")
        matching = sum(1 for m in messages if pattern is None or re.search(str(pattern), m))
        wrong = _count_ok(assertion.get("violations"), matching)
        if wrong:
            about = f" matching {pattern!r}" if pattern is not None else ""
            return f"{wrong}{about}; got messages {messages}"
    return ""


def _policies(base: Path, test: dict[str, Any]) -> model.PolicySet:
    objs = [_one(base, str(test["template"])), _one(base, str(test["constraint"]))]
    if test.get("expansion"):
        objs += [Manifest(d, str(test["expansion"])) for d in _read(base, str(test["expansion"]))]
    return model.build(objs)


def run_suite(path: Path) -> Iterator[CaseResult]:
    base = path.parent
    for doc in yaml.safe_load_all(path.read_text()):
        if not isinstance(doc, dict) or doc.get("kind") != "Suite":
            continue
        suite = str(path)
        for test in doc.get("tests") or []:
            name = str(test.get("name", ""))
            try:
                policies = _policies(base, test)
            except AcmError as e:
                yield CaseResult(suite, name, "(setup)", False, e.message)
                continue
            if policies.problems:
                yield CaseResult(suite, name, "(setup)", False,
                                 "; ".join(p.render() for p in policies.problems))
                continue
            for case in test.get("cases") or []:
                try:
                    failure = _run_case(base, policies, case)
                except (AcmError, KeyError) as e:
                    failure = e.message if isinstance(e, AcmError) else f"missing field {e}"
                yield CaseResult(suite, name, str(case.get("name", "")), not failure, failure)
