"""Run gator ``Suite`` files (``test.gatekeeper.sh/v1alpha1``) as ``gator verify`` does.

Each test names a template, a constraint and optionally an expansion; each case an object (or an
AdmissionReview), optional inventory files, and assertions: ``violations`` (yes, no or a count;
yes by default) of the results whose message matches ``message`` (an unanchored regex).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acm_lite import errors
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import Manifest
from acm_lite.parse import identity, reader
from acm_lite.policy import model, review, sandbox, shapes
from acm_lite.policy.rego import RegoProgram
from acm_lite.policy.review import Subject
from acm_lite.validate import crd_schema

SUITE_API = "test.gatekeeper.sh/v1alpha1"


@dataclass(frozen=True)
class CaseResult:
    suite: str
    test: str
    case: str
    passed: bool
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "test": self.test,
            "case": self.case,
            "passed": self.passed,
            "message": self.message,
        }


def find_suites(paths: list[Path]) -> list[tuple[Path, Path]]:
    """Suite files under each path, each with the directory its files must stay in (the path
    given, or a given file's directory). Other YAML files are ignored, as gator does."""
    found = []
    for path in paths:
        if not path.exists():
            raise AcmError(
                errors.PATH_NOT_FOUND,
                f"{path}: no such file or directory",
                path=str(path),
                hint="name a gator Suite file or a directory of them",
            )
        files = [path] if path.is_file() else sorted(path.rglob("*.y*ml"))
        root = path.parent if path.is_file() else path
        for file in files:
            docs = reader.load_documents(file)
            if isinstance(docs, Problem):
                continue  # not a suite gator could read either
            if any(
                isinstance(d, dict) and d.get("kind") == "Suite" and d.get("apiVersion") == SUITE_API
                for d in docs
            ):
                found.append((file, root))
    return found


class SuiteError(Exception):
    """A malformed suite, case or file it names: the coded message a case fails with."""

    def __init__(self, message: str, path: Path | str):
        super().__init__(f"{errors.POLICY_SUITE_INVALID}: {message} ({path})")
        self.detail = message


@dataclass(frozen=True)
class Place:
    """Where a suite's files are read from: relative to the suite, never outside ``root``."""

    base: Path
    root: Path

    def file(self, rel: str) -> Path:
        path = (self.base / rel).resolve()
        if not path.is_relative_to(self.root):
            raise SuiteError(f"{rel} is outside {self.root}", self.base)
        return path


def _read(place: Place, rel: str) -> list[dict[str, Any]]:
    path = place.file(rel)
    loaded = reader.load_documents(path)
    if isinstance(loaded, Problem):
        raise SuiteError(f"cannot read {rel}: {loaded.message}", path)
    docs = [d for d in loaded if d]
    if not all(isinstance(d, dict) for d in docs):
        raise SuiteError(f"{rel} must hold objects", path)
    return docs


def _one(place: Place, rel: str) -> Manifest:
    docs = _read(place, rel)
    if len(docs) != 1:
        raise SuiteError(f"{rel} must hold exactly one object", place.file(rel))
    return Manifest(docs[0], rel)


ADMISSION_REVIEW = {
    "request": shapes.Required({"object": dict, "oldObject": dict, "operation": str, "userInfo": dict})
}


OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
# the request's fields a review carries over as given (object and oldObject are the subject's)
REQUEST_FIELDS = (
    "uid",
    "kind",
    "resource",
    "subResource",
    "requestKind",
    "requestResource",
    "requestSubResource",
    "name",
    "namespace",
    "userInfo",
    "dryRun",
    "options",
)


def _checked(obj: dict[str, Any], rel: str) -> dict[str, Any]:
    """An object a case reviews or holds in its inventory, with the identity fields every later
    step reads well formed (as the reader checks manifests; metadata may be left out)."""
    found = identity.problem({**obj, "metadata": obj.get("metadata", {})})
    if found:
        raise SuiteError(f"{rel}: {found[1]}", rel)
    return obj


def _subject(body: dict[str, Any], rel: str, namespaces: dict[str, dict[str, Any]]) -> Subject:
    if body.get("kind") == "AdmissionReview":
        wrong = shapes.check(body, ADMISSION_REVIEW)
        if wrong:
            raise SuiteError(f"{rel}: {wrong}", rel)
        request = body["request"]
        if not request.get("object") and not request.get("oldObject"):
            raise SuiteError(f'{rel}: the request has no "object" or "oldObject" to review', rel)
        obj = _checked(request.get("object") or request.get("oldObject") or {}, rel)
        if request.get("object") and request.get("oldObject"):
            _checked(request["oldObject"], rel)
        operation = str(request.get("operation") or "CREATE")
        if operation not in OPERATIONS:
            raise SuiteError(f"{rel}: request.operation must be one of {', '.join(OPERATIONS)}", rel)
        if operation == "DELETE" and not request.get("oldObject"):
            raise SuiteError(f"{rel}: a DELETE request needs its oldObject (as Gatekeeper requires)", rel)
        extra = {k: v for k, v in request.items() if k in REQUEST_FIELDS}
        extra["userInfo"] = request.get("userInfo") or review.USER
        # both engines see the request as given: its operation, oldObject and userInfo
        return Subject(
            obj,
            rel,
            namespaces.get(_namespace_of(obj)),
            "Original",
            operation=operation,
            old=request.get("oldObject") or None,
            request=extra,
        )
    return Subject(_checked(body, rel), rel, namespaces.get(_namespace_of(body)), "Original")


def subject_of(body: dict[str, Any], rel: str, namespaces: dict[str, dict[str, Any]]) -> Subject | str:
    """The review of one object, or of an AdmissionReview's request; what is wrong with it
    otherwise (``policy test`` reviews what it is given the way a suite's case is reviewed)."""
    try:
        return _subject(body, rel, namespaces)
    except SuiteError as e:
        return e.detail


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _namespace_of(body: dict[str, Any]) -> str:
    return str(_metadata(body).get("namespace") or "")


def _count_ok(want: Any, matching: int) -> str | None:
    if want is None or want is True or want == "yes":
        return None if matching > 0 else "want at least 1 violation"
    if want is False or want == "no":
        return None if matching == 0 else f"want none, got {matching}"
    return None if matching == want else f"want exactly {want}, got {matching}"


def _assertion_error(assertion: dict[str, Any]) -> str | None:
    want = assertion.get("violations")
    if not (
        want is None
        or isinstance(want, bool)
        or want in ("yes", "no")
        or (isinstance(want, int) and want >= 0)
    ):
        return f"violations must be yes, no or a non-negative integer, not {want!r}"
    pattern = assertion.get("message")
    if pattern is not None:
        wrong = crd_schema.pattern_error(pattern)
        if wrong:
            return f"message {pattern!r} is not a valid RE2 regular expression: {wrong}"
    return None


def _namespaces(inventory: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    namespaces = {
        str(_metadata(d).get("name", "")): d
        for d in inventory
        if d.get("kind") == "Namespace" and d.get("apiVersion") == "v1"
    }
    if body.get("kind") == "Namespace" and body.get("apiVersion") == "v1":
        namespaces.setdefault(str(_metadata(body).get("name", "")), body)
    return namespaces


def _messages(test: model.PolicySet, subject: Subject) -> list[str] | str:
    expansions, broken = review.load_expansions(test)
    if broken:  # a malformed expansion fails the case; it never silently checks less
        return "; ".join(p.render() for p in broken)
    messages: list[str] = []
    for one in review.with_expansions(subject, expansions):
        for constraint in test.constraints:
            outcome = review.check(constraint, one)
            if isinstance(outcome, errors.Problem):
                return outcome.render()
            messages += [v.message for v in outcome]
    return messages


def _run_case(place: Place, test: model.PolicySet, case: dict[str, Any]) -> str:
    """'' when every assertion holds, else why not."""
    assertions = case.get("assertions") or [{}]
    for i, assertion in enumerate(assertions):
        wrong = _assertion_error(assertion)
        if wrong:
            raise SuiteError(f"assertions[{i}]: {wrong}", place.base)
    inventory = [_checked(d, rel) for rel in case.get("inventory") or [] for d in _read(place, rel)]
    body = _one(place, case["object"]).body
    subject = _subject(body, case["object"], _namespaces(inventory, body))
    for template in test.templates.values():
        if isinstance(template.program, RegoProgram):
            template.program.set_inventory(review.inventory(inventory), id(inventory))
    messages = _messages(test, subject)
    if isinstance(messages, str):
        return messages
    for assertion in assertions:
        pattern = assertion.get("message")
        matching = sum(
            1 for m in messages if pattern is None or crd_schema.compile_pattern(pattern).search(m)
        )
        wrong = _count_ok(assertion.get("violations"), matching)
        if wrong:
            about = f" matching {pattern!r}" if pattern is not None else ""
            return f"{wrong}{about}; got messages {messages}"
    return ""


def _policies(place: Place, test: dict[str, Any]) -> model.PolicySet:
    objs = [_one(place, test["template"]), _one(place, test["constraint"])]
    if test.get("expansion"):
        objs += [Manifest(d, test["expansion"]) for d in _read(place, test["expansion"])]
    return model.build(objs)


def _setup_failure(place: Place, test: dict[str, Any]) -> str:
    """Why the test's template and constraint cannot be used ('' when they can)."""
    try:
        policies = _policies(place, test)
    except SuiteError as e:
        return str(e)
    return "; ".join(p.render() for p in policies.problems if p.blocking)


def _case_failure(place: Place, test: dict[str, Any], case: dict[str, Any]) -> str:
    try:
        return _run_case(place, _policies(place, test), case)
    except SuiteError as e:
        return str(e)


def _guarded(task: Callable[[], str], what: str) -> str:
    """``task`` in the policy sandbox: a template that crashes or stalls the engine fails the
    case with a coded error."""
    outcome = sandbox.run(lambda _progress: task())
    if isinstance(outcome, sandbox.Stopped):
        return f"{errors.POLICY_EVALUATION_ERROR}: {what} could not be evaluated ({outcome.reason})"
    return outcome


def _documents(path: Path) -> list[Any] | str:
    loaded = reader.load_documents(path)
    if isinstance(loaded, Problem):
        return f"{errors.POLICY_SUITE_INVALID}: cannot read the suite: {loaded.message} ({path})"
    return loaded


def run_suite(path: Path, root: Path | None = None) -> Iterator[CaseResult]:
    """Every case of the suite file at ``path``; the files it names must be under ``root`` (by
    default the suite's directory)."""
    place = Place(path.parent, (root or path.parent).resolve())
    suite = str(path)
    docs = _documents(path)
    if isinstance(docs, str):
        yield CaseResult(suite, "", "(suite)", False, docs)
        return
    for d, doc in enumerate(docs):
        if not isinstance(doc, dict) or doc.get("kind") != "Suite":
            continue
        wrong = shapes.check(doc, shapes.SUITE)
        if wrong:
            yield CaseResult(
                suite, f"document {d}", "(suite)", False, f"{errors.POLICY_SUITE_INVALID}: {wrong} ({path})"
            )
            continue
        for test in doc.get("tests") or []:
            yield from _run_test(place, suite, test)


def _run_test(place: Place, suite: str, test: dict[str, Any]) -> Iterator[CaseResult]:
    name = str(test.get("name", ""))
    failure = _guarded(functools.partial(_setup_failure, place, test), f"test {name!r}")
    if failure:
        yield CaseResult(suite, name, "(setup)", False, failure)
        return
    for case in test.get("cases") or []:
        case_name = str(case.get("name", ""))
        failure = _guarded(functools.partial(_case_failure, place, test, case), f"case {name}/{case_name}")
        yield CaseResult(suite, name, case_name, not failure, failure)
