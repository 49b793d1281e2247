"""What the applier's unit tests serve instead of an API server: aggregated discovery documents
built from a static list of resources. Pure: no I/O."""

from __future__ import annotations

from typing import Any, NamedTuple


class Served(NamedTuple):
    """One resource the fake API server serves; a kind's first version listed is preferred."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True


NAMESPACES = Served("", "v1", "namespaces", "Namespace", namespaced=False)
CONFIGMAPS = Served("", "v1", "configmaps", "ConfigMap")
DEPLOYMENTS = Served("apps", "v1", "deployments", "Deployment")
CRDS = Served(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
)
BUILTIN = (NAMESPACES, CONFIGMAPS, DEPLOYMENTS, CRDS)


def discovery(served: tuple[Served, ...]) -> dict[str, dict[str, Any]]:
    """The two aggregated discovery documents (``/api`` and ``/apis``) serving ``served``."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s in served:
        versions = groups.setdefault(s.group, {})
        versions.setdefault(s.version, []).append(
            {
                "resource": s.plural,
                "responseKind": {"kind": s.kind},
                "scope": "Namespaced" if s.namespaced else "Cluster",
            }
        )

    def document(names: list[str]) -> dict[str, Any]:
        return {
            "kind": "APIGroupDiscoveryList",
            "items": [
                {
                    "metadata": {"name": name},
                    "versions": [{"version": v, "resources": r} for v, r in groups[name].items()],
                }
                for name in names
            ],
        }

    return {"/api": document([g for g in groups if not g]), "/apis": document([g for g in groups if g])}
