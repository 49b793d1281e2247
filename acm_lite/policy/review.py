"""Evaluate every constraint against every declared object (and the mock objects expansion makes),
as Gatekeeper's admission review would see them: a CREATE, or an UPDATE whose ``oldObject`` is the
live object when the object exists already (``sync``, ``diff``). No I/O.

Templates compile once; each object is serialised once and its review reused for every
constraint that matches it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId
from acm_lite.policy import expansion as expansion_mod
from acm_lite.policy import match as match_mod
from acm_lite.policy.cel import CelProgram
from acm_lite.policy.model import Constraint, PolicySet
from acm_lite.policy.rego import RegoError, RegoProgram

SEVERITY = {"deny": 2, "warn": 1, "dryrun": 0}
CODES = {"deny": errors.POLICY_VIOLATION, "warn": errors.POLICY_WARNING, "dryrun": errors.POLICY_DRYRUN}
Mark = Callable[[int, int], None]
USER = {"username": "acm-lite", "groups": ["system:authenticated"]}


@dataclass(frozen=True)
class Violation:
    constraint: Constraint
    action: str
    message: str
    obj: dict[str, Any]
    source: str
    details: Any = None

    def problem(self) -> Problem:
        meta = self.obj.get("metadata") or {}
        group, _, version = str(self.obj.get("apiVersion", "")).rpartition("/")
        return Problem(
            CODES[self.action],
            f"[{self.action}] {self.constraint.label}: {self.message}",
            source=self.source,
            obj={
                "group": group,
                "version": version,
                "kind": str(self.obj.get("kind")),
                "namespace": str(meta.get("namespace", "")),
                "name": str(meta.get("name", "")),
            },
        )


def inventory(objs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``data.inventory`` as Gatekeeper's sync builds it: cluster[gv][kind][name] and
    namespace[ns][gv][kind][name]."""
    tree: dict[str, Any] = {"cluster": {}, "namespace": {}}
    for body in objs:
        meta = body.get("metadata") or {}
        gv, kind, name = body.get("apiVersion", ""), body.get("kind", ""), meta.get("name", "")
        if meta.get("namespace"):
            tree["namespace"].setdefault(meta["namespace"], {}).setdefault(gv, {}).setdefault(kind, {})[
                name
            ] = body
        else:
            tree["cluster"].setdefault(gv, {}).setdefault(kind, {})[name] = body
    return tree


def review_of(
    body: dict[str, Any],
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    request: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The admission request Gatekeeper's Rego sees as ``input.review``: ``body`` under review,
    ``old`` as ``oldObject``; ``request``, an AdmissionReview's own request, keeps its fields
    (kind, resource, userInfo, ...). On DELETE the object is the old object, as Gatekeeper sets it."""
    meta = body.get("metadata") or {}
    group, _, version = str(body.get("apiVersion", "")).rpartition("/")
    out = {
        "kind": {"group": group, "version": version, "kind": body.get("kind", "")},
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "operation": operation,
        "userInfo": USER,
        "dryRun": False,
    }
    out.update({k: v for k, v in (request or {}).items() if k not in ("object", "oldObject")})
    out["operation"] = operation
    out["object"] = old if operation == "DELETE" and old is not None else body
    out["oldObject"] = old
    return out


def cel_inputs(
    body: dict[str, Any],
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    request: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]:
    """``object``, ``oldObject`` and ``request`` as a ValidatingAdmissionPolicy sees them: on
    DELETE ``object`` is null (Gatekeeper's CEL driver unsets it; ``variables.anyObject`` holds
    the old object)."""
    review = review_of(body, operation, old, request)
    obj = None if operation == "DELETE" else body
    return obj, old, {k: v for k, v in review.items() if k not in ("object", "oldObject")}


@dataclass
class Subject:
    body: dict[str, Any]
    source: str
    namespace: dict[str, Any] | None
    origin: str  # Original or Generated
    implied_by: expansion_mod.Expansion | None = None
    review_json_text: str | None = field(default=None, repr=False)
    index: int = -1  # of the declared object it is (or was generated from)
    operation: str = "CREATE"
    old: dict[str, Any] | None = None  # the live object an UPDATE replaces (DELETE: the object)
    request: dict[str, Any] | None = None  # an AdmissionReview's own request fields
    review_json_without_old: str | None = field(default=None, repr=False)

    def review_json(self, with_old: bool = True) -> str:
        """The review as JSON, serialised once; ``with_old=False``: with ``oldObject`` null, for
        a template that never reads it (the engine then parses half the text for an UPDATE)."""
        if not with_old and self.old is not None and self.operation != "DELETE":
            if self.review_json_without_old is None:
                self.review_json_without_old = json.dumps(
                    review_of(self.body, self.operation, None, self.request)
                )
            return self.review_json_without_old
        if self.review_json_text is None:
            self.review_json_text = json.dumps(review_of(self.body, self.operation, self.old, self.request))
        return self.review_json_text


def _evaluate(constraint: Constraint, subject: Subject) -> list[dict[str, Any]]:
    program = constraint.template.program
    if isinstance(program, RegoProgram):
        params = json.dumps(constraint.parameters if constraint.parameters is not None else {})
        raw = (
            '{"review": '
            + subject.review_json(constraint.template.reads_old)
            + ', "parameters": '
            + params
            + "}"
        )
        return program.violations_raw(raw)
    assert isinstance(program, CelProgram)
    old_given = subject.old if constraint.template.reads_old or subject.operation == "DELETE" else None
    obj, old, request = cel_inputs(subject.body, subject.operation, old_given, subject.request)
    data = {
        "object": obj,
        "oldObject": old,
        "params": constraint.manifest.body,
        "request": request,
        "namespaceObject": subject.namespace,
        "variables": {"params": constraint.parameters, "anyObject": obj if obj is not None else old},
    }
    return program.violations(data)


def check(constraint: Constraint, subject: Subject) -> list[Violation] | Problem:
    try:
        if not match_mod.matches(constraint.match, subject.body, subject.namespace, subject.origin):
            return []
        found = _evaluate(constraint, subject)
    except (match_mod.MatchError, RegoError) as e:
        return Problem(
            errors.POLICY_EVALUATION_ERROR,
            f"{constraint.label} could not be evaluated ({e}); failing closed",
            source=subject.source,
        )
    if not found or not constraint.actions:
        return []
    action = max(constraint.actions, key=lambda a: SEVERITY[a])
    prefix = ""
    if subject.implied_by is not None:
        prefix = f"[Implied by {subject.implied_by.name}] "
        action = subject.implied_by.enforcement_action or action
    return [
        Violation(
            constraint, action, prefix + str(v.get("msg", "")), subject.body, subject.source, v.get("details")
        )
        for v in found
    ]


def load_expansions(policies: PolicySet) -> tuple[list[expansion_mod.Expansion], list[Problem]]:
    """The policy set's ExpansionTemplates, and a problem for each malformed one."""
    loaded = [expansion_mod.load(obj) for obj in policies.expansions]
    return ([e for e in loaded if not isinstance(e, Problem)], [e for e in loaded if isinstance(e, Problem)])


def with_expansions(subject: Subject, expansions: list[expansion_mod.Expansion]) -> list[Subject]:
    """``subject`` and every mock object the expansions generate from it."""
    return [
        subject,
        *(
            Subject(generated, subject.source, subject.namespace, "Generated", made_by, index=subject.index)
            for generated, made_by in expansion_mod.expand_all(subject.body, expansions)
        ),
    ]


def subjects(
    objs: list[Manifest],
    policies: PolicySet,
    namespaces: dict[str, dict[str, Any]],
    live: Mapping[ObjectId, dict[str, Any]] | None = None,
) -> tuple[list[Subject], list[Problem]]:
    """Each declared object as a review, with the mock objects expansion makes of it: an UPDATE of
    its ``live`` self when it exists (the live object is the ``oldObject``), else a CREATE."""
    expansions, problems = load_expansions(policies)
    live = live or {}
    out = []
    for i, obj in enumerate(objs):
        ns = namespaces.get(obj.namespace) if obj.namespace else None
        old = live.get(obj.id)
        operation = "CREATE" if old is None else "UPDATE"
        subject = Subject(obj.body, obj.source, ns, "Original", index=i, operation=operation, old=old)
        out += with_expansions(subject, expansions)
    return out, problems


def _no_mark(_policy_index: int, _object_index: int) -> None:
    return None


def evaluate(
    objs: list[Manifest],
    policies: PolicySet,
    live_namespaces: dict[str, dict[str, Any]] | None = None,
    *,
    extra_inventory: Iterable[dict[str, Any]] = (),
    mark: Mark = _no_mark,
    live: Mapping[ObjectId, dict[str, Any]] | None = None,
) -> tuple[list[Violation], list[Problem]]:
    """Violations of every constraint by ``objs``; problems for what could not be evaluated.
    ``live``: the live objects of declared identities (each is reviewed as an UPDATE of its live
    self); ``extra_inventory``: live objects ``data.inventory`` holds beside the declared set
    (the declared object wins for one identity). ``mark(constraint position, object index)`` is
    called before each evaluation (the position is the constraint's ``PolicySet.positions``
    entry)."""
    if not policies.constraints:
        return [], list(policies.problems)
    namespaces = dict(live_namespaces or {})
    namespaces.update({o.name: o.body for o in objs if o.kind == "Namespace" and not o.group})
    data = inventory([*extra_inventory, *(o.body for o in objs)])
    for template in {c.template.name: c.template for c in policies.constraints}.values():
        if isinstance(template.program, RegoProgram):
            template.program.set_inventory(data, id(data))
    found, problems = subjects(objs, policies, namespaces, live)
    problems = list(policies.problems) + problems
    violations: list[Violation] = []
    positions = [policies.positions.get(id(c.manifest), -1) for c in policies.constraints]
    for subject in found:
        for position, constraint in zip(positions, policies.constraints, strict=True):
            mark(position, subject.index)
            outcome = check(constraint, subject)
            if isinstance(outcome, Problem):
                problems.append(outcome)
            else:
                violations += outcome
    return violations, problems
