"""Read a fleet file: the clusters of a fleet, with their names and labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acm_lite.errors import INVALID_FLEET, AcmError

API_VERSION = "acm-lite.io/v1alpha1"
KIND = "Fleet"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class FleetCluster:
    """One cluster of a fleet."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    kubeconfig: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class Fleet:
    name: str
    clusters: tuple[FleetCluster, ...]


def _cluster(entry: Any, index: int, path: str) -> FleetCluster:
    where = f"spec.clusters[{index}]"
    if not isinstance(entry, dict):
        raise AcmError(INVALID_FLEET, f"{where} must be a mapping", path=path)
    name = entry.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise AcmError(INVALID_FLEET, f"{where}.name {name!r} is not a DNS label", path=path,
                       hint="use lower-case letters, digits and '-', at most 63 characters")
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise AcmError(INVALID_FLEET, f"{where}.labels must map strings to strings", path=path)
    return FleetCluster(name, dict(labels), entry.get("kubeconfig"), entry.get("context"))


def load(path: Path) -> Fleet:
    """Parse a fleet file; a coded error names the file and entry at fault."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise AcmError(INVALID_FLEET, f"cannot read fleet file: {e}", path=str(path)) from e
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise AcmError(INVALID_FLEET, f"not a {KIND} (apiVersion {API_VERSION})", path=str(path))
    entries = (doc.get("spec") or {}).get("clusters")
    if not isinstance(entries, list) or not entries:
        raise AcmError(INVALID_FLEET, "spec.clusters must list at least one cluster",
                       path=str(path))
    clusters = tuple(_cluster(e, i, str(path)) for i, e in enumerate(entries))
    names = [c.name for c in clusters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AcmError(INVALID_FLEET, f"cluster names repeat: {', '.join(dupes)}", path=str(path))
    return Fleet((doc.get("metadata") or {}).get("name", path.stem), clusters)
