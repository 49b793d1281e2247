"""ConstraintTemplates and Constraints from manifests: checked, compiled, or coded problems.

Anything wrong fails closed: a template that does not compile, parameters that fail the
template's schema, a constraint without a template — each is a blocking problem, never a pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.parse import selectors
from acm_lite.policy import shapes
from acm_lite.policy.cel import CelError, CelProgram, CelUnsupportedError
from acm_lite.policy.rego import RegoError, RegoProgram, RegoUnsupportedError
from acm_lite.validate import crd_schema

TEMPLATES_GROUP = "templates.gatekeeper.sh"
CONSTRAINTS_GROUP = "constraints.gatekeeper.sh"
EXPANSION_GROUP = "expansion.gatekeeper.sh"
TARGET = "admission.k8s.gatekeeper.sh"
ACTIONS = ("deny", "warn", "dryrun")
ENFORCEMENT_POINTS = ("*", "gator.gatekeeper.sh", "acm-lite")


CONFIG_GROUP = "config.gatekeeper.sh"
SYNCSET_GROUP = "syncset.gatekeeper.sh"


def is_policy_object(obj: Manifest) -> bool:
    return obj.group in (TEMPLATES_GROUP, CONSTRAINTS_GROUP, EXPANSION_GROUP, CONFIG_GROUP, SYNCSET_GROUP)


@dataclass
class Template:
    kind: str
    name: str
    manifest: Manifest
    program: RegoProgram | CelProgram
    schema: dict[str, Any] | None
    reads_old: bool = True  # its code mentions oldObject (else its UPDATE reviews leave it out)
    notes: list[Problem] = field(default_factory=list)  # non-blocking: the CEL fallen back from

    @property
    def engine(self) -> str:
        return "Rego" if isinstance(self.program, RegoProgram) else "CEL"


@dataclass
class Constraint:
    kind: str
    name: str
    manifest: Manifest
    template: Template
    actions: tuple[str, ...]
    match: dict[str, Any] = field(default_factory=dict)
    parameters: Any = None

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


REGO_SOURCE = {"rego": shapes.Required(str), "libs": [str]}


def _code_sources(target: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The CEL and Rego sources of a target whose shape was checked."""
    cel_source = rego_source = None
    for entry in target.get("code") or []:
        if entry.get("engine") == "K8sNativeValidation":
            cel_source = entry.get("source")
        elif entry.get("engine") == "Rego":
            rego_source = entry.get("source")
    if target.get("rego"):
        rego_source = {"rego": target["rego"], "libs": target.get("libs") or []}
    return cel_source, rego_source


def _sources_error(target: dict[str, Any]) -> str | None:
    for i, entry in enumerate(target.get("code") or []):
        shape = {"K8sNativeValidation": shapes.CEL_SOURCE, "Rego": REGO_SOURCE}.get(entry["engine"])
        wrong = shapes.check(entry["source"], shape, f"spec.targets[0].code[{i}].source") if shape else None
        if wrong:
            return wrong
    return None


def _schema_of(spec: dict[str, Any]) -> Any:
    crd = spec.get("crd") or {}
    return ((crd.get("spec") or {}).get("validation") or {}).get("openAPIV3Schema")


def _kind_of(spec: dict[str, Any]) -> Any:
    return (((spec.get("crd") or {}).get("spec") or {}).get("names") or {}).get("kind")


def _template_error(obj: Manifest) -> str | None:
    """Why the template cannot be compiled: its shape, kind, name, target, sources or schema."""
    wrong = shapes.check(obj.body, shapes.TEMPLATE)
    if wrong:
        return wrong
    spec = obj.spec
    kind = _kind_of(spec)
    if not isinstance(kind, str) or not kind:
        return "spec.crd.spec.names.kind is missing"
    if obj.name != kind.lower():
        return f"metadata.name must be {kind.lower()!r} (the kind, lower-cased)"
    targets = spec["targets"]
    if len(targets) != 1 or targets[0].get("target") != TARGET:
        return f"exactly one target {TARGET} is required"
    schema = _schema_of(spec)
    return _sources_error(targets[0]) or (
        crd_schema.problem(schema, "spec.crd.spec.validation.openAPIV3Schema") if schema is not None else None
    )


def _program(obj: Manifest) -> tuple[RegoProgram | CelProgram | Problem | None, list[Problem]]:
    """The template's compiled program (None when it has no source) as Gatekeeper chooses it, CEL
    (``K8sNativeValidation``) before Rego, and the notes to report with it. CEL that acm-lite
    cannot evaluate falls back to the template's Rego (noted), or is a coded problem. Raises
    RegoError or CelError when the chosen code does not compile."""
    cel_source, rego_source = _code_sources(obj.spec["targets"][0])
    rego = rego_source if isinstance(rego_source, dict) and rego_source.get("rego") else None
    if isinstance(cel_source, dict):
        try:
            return CelProgram(cel_source), []
        except CelUnsupportedError as e:
            if rego is None:
                return Problem.about(errors.CEL_UNSUPPORTED, f"{e}; the template has no Rego code", obj), []
            note = Problem.about(
                errors.CEL_FALLBACK_TO_REGO,
                f"its CEL uses {e.construct}, which acm-lite does not evaluate; "
                "its Rego is evaluated instead",
                obj,
            )
            return RegoProgram(obj.name, rego["rego"], list(rego.get("libs") or [])), [note]
    if rego is not None:
        return RegoProgram(obj.name, rego["rego"], list(rego.get("libs") or [])), []
    return None, []


def load_template(obj: Manifest) -> Template | Problem:
    wrong = _template_error(obj)
    if wrong:
        return Problem.about(errors.TEMPLATE_INVALID, wrong, obj)
    try:
        program, notes = _program(obj)
    except RegoUnsupportedError as e:
        return Problem.about(errors.REGO_UNSUPPORTED, str(e), obj)
    except (RegoError, CelError) as e:
        return Problem.about(errors.TEMPLATE_INVALID, f"does not compile: {e}", obj)
    if program is None:
        return Problem.about(errors.TEMPLATE_INVALID, "the target has neither rego nor code", obj)
    if isinstance(program, Problem):
        return program
    template = Template(_kind_of(obj.spec), obj.name, obj, program, _schema_of(obj.spec), notes=notes)
    cel_source, rego_source = _code_sources(obj.spec["targets"][0])
    source = cel_source if isinstance(program, CelProgram) else rego_source
    template.reads_old = "oldObject" in json.dumps(source)
    return template


def _actions(spec: dict[str, Any]) -> tuple[str, ...] | str:
    action = spec.get("enforcementAction") or "deny"
    if action in ACTIONS:
        return (action,)
    if action != "scoped":
        return f"enforcementAction {action!r} is not one of deny, warn, dryrun, scoped"
    chosen = []
    for scoped in spec.get("scopedEnforcementActions") or []:
        points = {p.get("name") for p in scoped.get("enforcementPoints") or []}
        if points & set(ENFORCEMENT_POINTS) and scoped.get("action") in ACTIONS:
            chosen.append(scoped["action"])
    return tuple(chosen)


def load_constraint(obj: Manifest, templates: dict[str, Template]) -> Constraint | Problem:
    template = templates.get(obj.kind)
    if template is None:
        return Problem.about(
            errors.TEMPLATE_MISSING,
            f"no ConstraintTemplate defines kind {obj.kind}",
            obj,
            hint=f"add a ConstraintTemplate named {obj.kind.lower()!r}",
        )
    wrong = shapes.check(obj.body, shapes.CONSTRAINT) or _selectors_error(obj.spec)
    if wrong:
        return Problem.about(errors.CONSTRAINT_INVALID, wrong, obj)
    spec = obj.spec
    actions = _actions(spec)
    if isinstance(actions, str):
        return Problem.about(errors.CONSTRAINT_INVALID, actions, obj)
    parameters = spec.get("parameters")
    if template.schema is not None and parameters is not None:
        checker = crd_schema.validator(template.schema)
        found = sorted(checker.iter_errors(parameters), key=lambda e: list(e.absolute_path))
        if found:
            where = ".".join(str(p) for p in found[0].absolute_path) or "(root)"
            return Problem.about(
                errors.CONSTRAINT_INVALID, f"spec.parameters.{where}: {found[0].message}", obj
            )
    return Constraint(obj.kind, obj.name, obj, template, actions, spec.get("match") or {}, parameters)


def _selectors_error(spec: dict[str, Any]) -> str | None:
    """A malformed selector is the constraint's error, found once, not at every object."""
    match = spec.get("match") or {}
    for key in ("labelSelector", "namespaceSelector"):
        if match.get(key) is not None:
            try:
                selectors.parse(match[key])
            except selectors.SelectorError as e:
                return f"spec.match.{key}: {e}"
    return None


@dataclass
class PolicySet:
    templates: dict[str, Template] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)
    expansions: list[Manifest] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # id(manifest) -> index in the input

    @property
    def empty(self) -> bool:
        return not self.constraints and not self.problems


def _no_mark(_policy_index: int, _object_index: int) -> None:
    return None


def build(objs: list[Manifest], mark: Callable[[int, int], None] = _no_mark) -> PolicySet:
    """Templates, constraints and expansion templates among ``objs``, compiled; ``mark(i, -1)``
    is called before the i-th object is compiled."""
    policies = PolicySet(positions={id(obj): i for i, obj in enumerate(objs)})
    for i, obj in enumerate(objs):
        mark(i, -1)
        if obj.group == TEMPLATES_GROUP and obj.kind == "ConstraintTemplate":
            loaded = load_template(obj)
            if isinstance(loaded, Problem):
                policies.problems.append(loaded)
            else:
                policies.templates[loaded.kind] = loaded
                policies.problems += loaded.notes
        elif obj.group == EXPANSION_GROUP and obj.kind == "ExpansionTemplate":
            policies.expansions.append(obj)
    broken = {p.obj["name"] for p in policies.problems if p.obj and p.blocking}
    for obj in objs:
        if obj.group != CONSTRAINTS_GROUP:
            continue
        if obj.kind.lower() in broken:  # fail closed: its template did not load
            policies.problems.append(
                Problem.about(
                    errors.TEMPLATE_INVALID,
                    f"constraint cannot be evaluated: template {obj.kind.lower()} is invalid",
                    obj,
                )
            )
            continue
        constraint = load_constraint(obj, policies.templates)
        if isinstance(constraint, Problem):
            policies.problems.append(constraint)
        else:
            policies.constraints.append(constraint)
    return policies
