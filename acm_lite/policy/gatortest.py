"""``gator test``: every object given is reviewed against the templates and constraints given
with it, and each violation is reported in gator's result shape. No I/O.

As gator: ConstraintTemplates and Constraints are recognised by group and kind, every object
(policies included) is reviewed and is in ``data.inventory``, a Namespace given is the
namespace of the objects in it, and ExpansionTemplates expand what they match. An
``AdmissionReview`` is reviewed as its request (operation, object, oldObject, userInfo), as
``gator verify`` reviews one. The run is the same policy pass as ``vet`` and ``sync``
(``review.check``), in the policy sandbox.

``read`` reads the files and directories given (as gator: ``.yaml``, ``.yml`` and ``.json``
files, directories recursively), with the reader's bounds on every file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.parse import files, reader
from acm_lite.policy import model, review, sandbox, stopped_problem, verify
from acm_lite.policy.rego import RegoProgram
from acm_lite.policy.review import Subject, Violation

TARGET = model.TARGET
MAX_FILES = 10_000


def _input_error(message: str, source: str, hint: str | None = None) -> errors.AcmError:
    return errors.AcmError(errors.POLICY_INPUT_INVALID, message, path=source, hint=hint)


def _manifests(docs: list[Any] | Problem, source: str) -> list[Manifest]:
    if isinstance(docs, Problem):
        raise _input_error(f"{source}: {docs.code.id} {docs.message}", source)
    out = []
    for i, doc in enumerate(docs):
        if doc is None or doc == {}:
            continue
        if not isinstance(doc, dict):
            raise _input_error(f"{source}: document {i} is not an object", source)
        out.append(Manifest(doc, source))
    return out


def read_text(text: str, name: str) -> list[Manifest]:
    """The objects of text given on stdin (YAML or JSON)."""
    return _manifests(reader.load_text(text, name), name)


def read(paths: list[Path]) -> list[Manifest]:
    """The objects of each file, and of every ``.yaml``/``.yml``/``.json`` file below each
    directory, in the order given (a directory's files in path order)."""
    out: list[Manifest] = []
    for path in paths:
        if path.is_dir():
            walked = files.walk(path, MAX_FILES)
            if walked.problems:
                first = walked.problems[0]
                raise _input_error(f"{path}/{first.source}: {first.code.id} {first.message}", str(path))
            for rel in walked.files:
                out += _manifests(reader.load_documents(path / rel), str(path / rel))
            continue
        if not path.exists():
            raise _input_error(f"{path}: no such file or directory", str(path))
        if not path.name.endswith(files.MANIFEST_SUFFIXES):
            raise _input_error(
                f"{path}: must be a .yaml, .yml or .json file, or a directory",
                str(path),
                hint="name a manifest file or a directory of them, as gator test does",
            )
        out += _manifests(reader.load_documents(path), str(path))
    return out


@dataclass
class Outcome:
    """gator's results (sorted as gator sorts them) and what stopped the run."""

    results: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def enforceable(result: dict[str, Any]) -> bool:
    """A result that makes ``gator test`` exit 1: action deny, or a scoped deny."""
    return result.get("enforcementAction") == "deny" or "deny" in (result.get("scopedActions") or [])


def _is_admission_review(body: dict[str, Any]) -> bool:
    return body.get("kind") == "AdmissionReview" and str(body.get("apiVersion", "")).startswith(
        "admission.k8s.io/"
    )


def _result(violation: Violation, original: dict[str, Any], implied_action: str | None) -> dict[str, Any]:
    constraint = violation.constraint
    declared = str(constraint.manifest.spec.get("enforcementAction") or "deny")
    action = implied_action or declared
    out: dict[str, Any] = {"target": TARGET}
    if violation.message:
        out["msg"] = violation.message
    if isinstance(constraint.template.program, RegoProgram):
        out["metadata"] = {"details": violation.details if violation.details is not None else {}}
    out["constraint"] = constraint.manifest.body
    out["enforcementAction"] = action
    if action == "scoped":
        out["scopedActions"] = list(constraint.actions)
    out["violatingObject"] = original
    out["trace"] = None
    return out


def _subjects(
    docs: list[Manifest], namespaces: dict[str, dict[str, Any]]
) -> tuple[list[Subject], list[Problem]]:
    subjects, problems = [], []
    for i, doc in enumerate(docs):
        found = verify.subject_of(doc.body, doc.source, namespaces)
        if isinstance(found, str):
            problems.append(Problem.about(errors.POLICY_INPUT_INVALID, found, doc))
            continue
        found.index = i
        subjects.append(found)
    return subjects, problems


def _run(docs: list[Manifest], progress: sandbox.Progress) -> Outcome:
    policy_docs = [d for d in docs if model.is_policy_object(d)]
    policies = model.build(policy_docs, progress.mark)
    expansions, broken = review.load_expansions(policies)
    outcome = Outcome(problems=list(policies.problems) + broken)
    plain = [d.body for d in docs if not _is_admission_review(d.body)]
    namespaces = {
        str((b.get("metadata") or {}).get("name", "")): b
        for b in plain
        if b.get("kind") == "Namespace" and b.get("apiVersion") == "v1"
    }
    inventory = review.inventory(plain)
    for template in policies.templates.values():
        if isinstance(template.program, RegoProgram):
            template.program.set_inventory(inventory, id(inventory))
    subjects, wrong = _subjects(docs, namespaces)
    outcome.problems += wrong
    positions = [policies.positions.get(id(c.manifest), -1) for c in policies.constraints]
    for subject in subjects:
        for one in review.with_expansions(subject, expansions):
            for position, constraint in zip(positions, policies.constraints, strict=True):
                progress.mark(position, subject.index)
                found = review.check(constraint, one)
                if isinstance(found, Problem):
                    outcome.problems.append(found)
                    continue
                implied = one.implied_by.enforcement_action if one.implied_by is not None else None
                outcome.results += [_result(v, subject.body, implied) for v in found]
    outcome.results.sort(key=lambda r: (r["enforcementAction"], r.get("msg", "")))
    return outcome


def run(docs: list[Manifest]) -> Outcome:
    """Review ``docs`` (objects, templates, constraints, expansion templates, AdmissionReviews)
    as ``gator test`` does."""
    found = sandbox.run(lambda progress: _run(docs, progress))
    if isinstance(found, sandbox.Stopped):
        policy_docs = [d for d in docs if model.is_policy_object(d)]
        return Outcome(problems=[stopped_problem(found, docs, policy_docs)])
    return found
