"""Referential data: which kinds' live objects ``data.inventory`` holds in ``sync``, ``diff`` and
the daemon, as Gatekeeper's sync configuration would cache them, and how they join the declared
set. No I/O (the reconcile layer lists the kinds).

The kinds are, as in Gatekeeper, the union of the ``Config`` named ``config``
(``config.gatekeeper.sh/v1alpha1``, ``spec.sync.syncOnly``) and every ``SyncSet``
(``syncset.gatekeeper.sh/v1alpha1``, ``spec.gvks``) among the policies. Without either, acm-lite
reads the kinds the templates need: the GVKs of a template's
``metadata.gatekeeper.sh/requires-sync-data`` annotation, and for a Rego template whose code
reads ``data.inventory``, the kinds its constraints match (``spec.match.kinds``; ``*`` is
skipped). CEL templates get no inventory, as in Gatekeeper.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId
from acm_lite.policy import model

REQUIRES_SYNC_DATA = "metadata.gatekeeper.sh/requires-sync-data"
CONFIG_NAME = "config"  # Gatekeeper reads only the Config of this name
MAX_KINDS = 200  # more kinds than any sync configuration needs; the rest is refused


@dataclass(frozen=True, order=True)
class SyncKind:
    """A kind to read: ``version`` empty for the version the cluster prefers."""

    group: str
    version: str
    kind: str

    def __str__(self) -> str:
        gv = f"{self.group}/{self.version}" if self.group else self.version
        return f"{gv or self.group or 'core'}, Kind={self.kind}"


@dataclass
class Wanted:
    """The kinds to read, whether a Config or SyncSet named them, and what was malformed."""

    kinds: list[SyncKind] = field(default_factory=list)
    configured: bool = False
    problems: list[Problem] = field(default_factory=list)


def _entries(obj: Manifest, path: tuple[str, ...], label: str) -> list[SyncKind] | Problem:
    value: Any = obj.body
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        return Problem.about(errors.SYNC_CONFIG_INVALID, f"{label} must be a list", obj)
    out = []
    for i, entry in enumerate(value):
        fields = {
            k: entry.get(k, "") if isinstance(entry, dict) else None for k in ("group", "version", "kind")
        }
        if not isinstance(entry, dict) or not all(isinstance(v, str) for v in fields.values()):
            return Problem.about(
                errors.SYNC_CONFIG_INVALID,
                f"{label}[{i}] must be an object of strings group, version, kind",
                obj,
            )
        if not fields["kind"]:
            return Problem.about(errors.SYNC_CONFIG_INVALID, f"{label}[{i}].kind is missing", obj)
        out.append(SyncKind(str(fields["group"]), str(fields["version"]), str(fields["kind"])))
    return out


def _configured(policy_objects: list[Manifest]) -> tuple[list[SyncKind], list[Problem], bool]:
    kinds: list[SyncKind] = []
    problems: list[Problem] = []
    configured = False
    for obj in policy_objects:
        if obj.group == model.CONFIG_GROUP and obj.kind == "Config" and obj.name == CONFIG_NAME:
            found = _entries(obj, ("spec", "sync", "syncOnly"), "spec.sync.syncOnly")
        elif obj.group == model.SYNCSET_GROUP and obj.kind == "SyncSet":
            found = _entries(obj, ("spec", "gvks"), "spec.gvks")
        else:
            continue
        configured = True
        if isinstance(found, Problem):
            problems.append(found)
        else:
            kinds += found
    return kinds, problems, configured


def _annotated(template: Manifest) -> list[SyncKind] | Problem:
    """The GVKs of Gatekeeper's requires-sync-data annotation: [[{groups, versions, kinds}]]."""
    meta = template.body.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    text = annotations.get(REQUIRES_SYNC_DATA) if isinstance(annotations, dict) else None
    if text is None:
        return []
    try:
        clauses = json.loads(str(text).strip('\n"'))
    except ValueError as e:
        return Problem.about(errors.SYNC_CONFIG_INVALID, f"{REQUIRES_SYNC_DATA} is not JSON: {e}", template)
    wrong = Problem.about(
        errors.SYNC_CONFIG_INVALID,
        f"{REQUIRES_SYNC_DATA} must be a list of lists of {{groups, versions, kinds}}",
        template,
    )
    if not isinstance(clauses, list) or not all(isinstance(c, list) for c in clauses):
        return wrong
    out = []
    for clause in (c for requirement in clauses for c in requirement):
        if not isinstance(clause, dict):
            return wrong
        lists = [clause.get(k) or [] for k in ("groups", "versions", "kinds")]
        if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in lists):
            return wrong
        out += [SyncKind(g, v, k) for g in lists[0] for v in lists[1] for k in lists[2]]
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _reads_inventory(template: Manifest) -> bool:
    """Whether the template's program is Rego that mentions ``data.inventory`` (a malformed
    template is the model's to report)."""
    spec = template.body.get("spec")
    targets = _list(spec.get("targets")) if isinstance(spec, dict) else []
    target = targets[0] if targets and isinstance(targets[0], dict) else {}
    sources: list[Any] = [target.get("rego"), *_list(target.get("libs"))]
    for entry in _list(target.get("code")):
        if not isinstance(entry, dict):
            continue
        if entry.get("engine") == "K8sNativeValidation":
            return False  # the CEL code is what runs, and CEL has no inventory
        source = entry.get("source")
        if entry.get("engine") == "Rego" and isinstance(source, dict):
            sources += [source.get("rego"), *_list(source.get("libs"))]
    return any(isinstance(s, str) and "data.inventory" in s for s in sources)


def _matched_kinds(constraint: Manifest) -> list[SyncKind]:
    spec = constraint.body.get("spec")
    match = spec.get("match") if isinstance(spec, dict) else None
    out = []
    for entry in _list(match.get("kinds") if isinstance(match, dict) else None):
        if isinstance(entry, dict):
            out += [
                SyncKind(g, "", k)
                for g in _list(entry.get("apiGroups"))
                for k in _list(entry.get("kinds"))
                if isinstance(g, str) and isinstance(k, str) and "*" not in (g, k)
            ]
    return out


def _default(policy_objects: list[Manifest]) -> tuple[list[SyncKind], list[Problem]]:
    kinds: list[SyncKind] = []
    problems: list[Problem] = []
    referential: set[str] = set()  # the kinds of templates whose Rego reads data.inventory
    for obj in policy_objects:
        if obj.group != model.TEMPLATES_GROUP or obj.kind != "ConstraintTemplate":
            continue
        annotated = _annotated(obj)
        if isinstance(annotated, Problem):
            problems.append(annotated)
        else:
            kinds += annotated
        if _reads_inventory(obj):
            referential.add(obj.name)
    for obj in policy_objects:
        if obj.group == model.CONSTRAINTS_GROUP and obj.kind.lower() in referential:
            kinds += _matched_kinds(obj)
    return kinds, problems


def wanted(policy_objects: list[Manifest]) -> Wanted:
    """The kinds whose live objects ``data.inventory`` holds (sorted, each once)."""
    kinds, problems, configured = _configured(policy_objects)
    if not configured:
        kinds, problems = _default(policy_objects)
    unique = sorted(set(kinds))
    if len(unique) > MAX_KINDS:
        problems.append(
            Problem(
                errors.SYNC_CONFIG_INVALID,
                f"the policies ask for the live objects of {len(unique)} kinds; at most {MAX_KINDS} are read",
            )
        )
        unique = unique[:MAX_KINDS]
    return Wanted(unique, configured, problems)


def live_inventory(
    live: Iterable[tuple[ObjectId, dict[str, Any]]], declared: set[ObjectId], pruned: set[ObjectId]
) -> list[dict[str, Any]]:
    """The live objects ``data.inventory`` holds beside the declared set: the declared object wins
    over its live self (the inventory is the state after the commit), and an object the pass
    will prune is left out (it will not exist then)."""
    return [body for oid, body in live if oid not in declared and oid not in pruned]
