"""ExpansionTemplates: the pod templates of workloads become mock Pods that Pod constraints see.

As Gatekeeper: ``applyTo`` picks the workloads, ``templateSource`` the field to lift,
``generatedGVK`` the kind it becomes; the mock is named ``<workload>-<kind>`` in the workload's
namespace, and generated objects are expanded again (a CronJob → Job → Pod chain). No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.policy import shapes

MAX_DEPTH = 3


@dataclass(frozen=True)
class Expansion:
    name: str
    apply_to: tuple[tuple[frozenset[str], frozenset[str], frozenset[str]], ...]
    source_path: tuple[str, ...]
    generated: tuple[str, str, str]  # group, version, kind
    enforcement_action: str | None

    def applies(self, body: dict[str, Any]) -> bool:
        group, _, version = str(body.get("apiVersion", "")).rpartition("/")
        kind = body.get("kind")
        return any(
            ({"*"} & groups or group in groups)
            and ({"*"} & versions or version in versions)
            and ({"*"} & kinds or kind in kinds)
            for groups, versions, kinds in self.apply_to
        )

    def expand(self, body: dict[str, Any]) -> dict[str, Any] | None:
        source: Any = body
        for part in self.source_path:
            source = source.get(part) if isinstance(source, dict) else None
        if not isinstance(source, dict):
            return None
        group, version, kind = self.generated
        meta = dict(source.get("metadata") or {})
        parent = body.get("metadata") or {}
        meta["name"] = f"{parent.get('name', '')}-{kind}".lower()
        if parent.get("namespace"):
            meta["namespace"] = parent["namespace"]
        return {
            **source,
            "apiVersion": f"{group}/{version}" if group else version,
            "kind": kind,
            "metadata": meta,
        }


def load(obj: Manifest) -> Expansion | Problem:
    wrong = shapes.check(obj.body, shapes.EXPANSION)
    if wrong:
        return Problem.about(errors.EXPANSION_INVALID, wrong, obj)
    spec = obj.spec
    gvk = spec.get("generatedGVK") or {}
    source = spec.get("templateSource")
    if not isinstance(source, str) or not source or not gvk.get("kind"):
        return Problem.about(
            errors.EXPANSION_INVALID, "templateSource and generatedGVK.kind are required", obj
        )
    apply_to = tuple(
        (
            frozenset(a.get("groups") or []),
            frozenset(a.get("versions") or []),
            frozenset(a.get("kinds") or []),
        )
        for a in spec.get("applyTo") or []
    )
    if not apply_to:
        return Problem.about(errors.EXPANSION_INVALID, "applyTo must name at least one kind", obj)
    action = spec.get("enforcementAction")
    return Expansion(
        obj.name,
        apply_to,
        tuple(source.split(".")),
        (str(gvk.get("group", "")), str(gvk.get("version", "v1")), str(gvk["kind"])),
        action if isinstance(action, str) and action else None,
    )


def expand_all(
    body: dict[str, Any], expansions: list[Expansion], depth: int = 0
) -> list[tuple[dict[str, Any], Expansion]]:
    """Every object generated from ``body`` (recursively), with the expansion that made it."""
    if depth >= MAX_DEPTH:
        return []
    out = []
    for expansion in expansions:
        if expansion.applies(body):
            generated = expansion.expand(body)
            if generated is not None:
                out.append((generated, expansion))
                out += expand_all(generated, expansions, depth + 1)
    return out
