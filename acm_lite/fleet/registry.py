"""Fleet files: the clusters of a fleet — how to reach each, its labels, and what it syncs.

A ``Fleet`` (``acm-lite.io/v1alpha1``) is checked against a JSON Schema; every mistake is a coded
error naming the entry at fault (``spec.clusters[2].labels.provider``). Relative kubeconfig paths
are relative to the fleet file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from acm_lite import api, metadata
from acm_lite.errors import INVALID_FLEET, AcmError, Problem
from acm_lite.parse import reader

API_VERSION = api.API_VERSION
KIND = "Fleet"
_DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_SYNC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "repo": {"type": "string", "minLength": 1},
        "revision": {"type": "string", "minLength": 1},
        "dir": {"type": "string", "minLength": 1},
        "sourceFormat": {"enum": ["hierarchy", "unstructured"]},
        "name": {"type": "string", "pattern": _DNS_LABEL},
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["apiVersion", "kind", "spec"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
        "spec": {
            "type": "object",
            "required": ["clusters"],
            "additionalProperties": False,
            "properties": {
                "sync": _SYNC,
                "clusters": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "pattern": _DNS_LABEL},
                            "kubeconfig": {"type": "string", "minLength": 1},
                            "kubeconfigSecretRef": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "namespace": {"type": "string"},
                                    "key": {"type": "string"},
                                },
                            },
                            "context": {"type": "string", "minLength": 1},
                            "labels": {
                                "type": "object",
                                "additionalProperties": {"type": "string", "maxLength": 63},
                            },
                            "sync": _SYNC,
                        },
                        "not": {"required": ["kubeconfig", "kubeconfigSecretRef"]},
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class FleetSync:
    repo: str | None = None
    revision: str = "HEAD"
    dir: str = "."
    source_format: str = "hierarchy"
    name: str = api.DEFAULT_SYNC


@dataclass(frozen=True)
class FleetCluster:
    """One cluster of a fleet."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    kubeconfig: str | None = None
    context: str | None = None
    secret_ref: dict[str, str] | None = None
    sync: FleetSync = field(default_factory=FleetSync)

    @property
    def provider(self) -> str:
        return self.labels.get(metadata.PROVIDER_LABEL, "")


@dataclass(frozen=True)
class Fleet:
    name: str
    clusters: tuple[FleetCluster, ...]
    path: str = ""

    def select(self, names: list[str] | None) -> list[FleetCluster]:
        """The named clusters (all by default); an unknown name is a coded error."""
        if not names:
            return list(self.clusters)
        known = {c.name: c for c in self.clusters}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise AcmError(
                INVALID_FLEET,
                f"no cluster named {', '.join(unknown)} in the fleet",
                path=self.path,
                hint=f"clusters: {', '.join(known)}",
            )
        return [known[n] for n in names]


def _where(error: jsonschema.ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
    return "".join(parts).lstrip(".") or "(root)"


def _sync(raw: dict[str, Any] | None, default: FleetSync) -> FleetSync:
    raw = raw or {}
    return FleetSync(
        repo=raw.get("repo", default.repo),
        revision=raw.get("revision", default.revision),
        dir=raw.get("dir", default.dir),
        source_format=raw.get("sourceFormat", default.source_format),
        name=raw.get("name", default.name),
    )


def _kubeconfig(value: str | None, base: Path) -> str | None:
    if value is None:
        return None
    expanded = Path(os.path.expandvars(os.path.expanduser(value)))
    return str(expanded if expanded.is_absolute() else (base / expanded))


def load(path: Path) -> Fleet:
    """Parse and check a fleet file."""
    docs = reader.load_documents(path)
    if isinstance(docs, Problem):
        raise AcmError(INVALID_FLEET, f"cannot read fleet file: {docs.message}", path=str(path))
    if len(docs) != 1:
        raise AcmError(INVALID_FLEET, f"a fleet file holds one document, not {len(docs)}", path=str(path))
    doc = docs[0]
    errors = sorted(
        jsonschema.Draft7Validator(SCHEMA).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))
    )
    if errors:
        shown = "; ".join(f"{_where(e)}: {e.message}" for e in errors[:5])
        raise AcmError(
            INVALID_FLEET,
            shown,
            path=str(path),
            hint=f"a {KIND} ({API_VERSION}) lists spec.clusters[] with name, kubeconfig "
            "or kubeconfigSecretRef, context, labels and sync",
        )
    spec = doc["spec"]
    default = _sync(spec.get("sync"), FleetSync())
    clusters = tuple(
        FleetCluster(
            name=c["name"],
            labels=dict(c.get("labels") or {}),
            kubeconfig=_kubeconfig(c.get("kubeconfig"), path.parent),
            context=c.get("context"),
            secret_ref=c.get("kubeconfigSecretRef"),
            sync=_sync(c.get("sync"), default),
        )
        for c in spec["clusters"]
    )
    names = [c.name for c in clusters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AcmError(INVALID_FLEET, f"cluster names repeat: {', '.join(dupes)}", path=str(path))
    return Fleet((doc.get("metadata") or {}).get("name", path.stem), clusters, str(path))
