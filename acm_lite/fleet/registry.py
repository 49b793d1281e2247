"""Fleet files: the clusters of a fleet — how to reach each, its labels, and what it syncs.

A ``Fleet`` (``acm-lite.io/v1alpha1``) is checked against a JSON Schema; every mistake is a coded
error naming the entry at fault (``spec.clusters[2] (cluster edge).labels.provider``). Relative
kubeconfig, Helm values-file and CA-file paths are relative to the fleet file.

A ``sync:`` (the fleet's default, or a cluster's) names a Git repository, a Helm chart or an OCI
image with Config Sync's RootSync field names: ``sourceType: git|helm|oci``, ``helm: {repo, chart,
version, releaseName, namespace, deployNamespace, values, valuesFiles, valuesFileRefs,
includeCRDs, auth, secretRef}``, ``oci: {image, dir, auth}``. ``auth`` and ``secretRef`` mean what
they mean in a RootSync: ``token`` reads the Secret ``secretRef`` names from the member cluster's
system namespace (``acm-lite-system`` unless ``--system-namespace`` names another); ``none`` sends
the environment's ``ACM_LITE_HELM_*`` / ``ACM_LITE_OCI_*`` credentials when they are set. A
cluster's ``sync`` overrides the default's fields one by one; its ``helm`` or ``oci`` replaces the
default's whole.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from acm_lite import api, metadata
from acm_lite.errors import INVALID_FLEET, AcmError, Problem, shown
from acm_lite.parse import reader
from acm_lite.plan import ignorefields
from acm_lite.plan.ignorefields import IgnoreRule
from acm_lite.source import helm as helm_source
from acm_lite.source import oci as oci_source
from acm_lite.source.helm import HelmSpec, ValuesFileRef
from acm_lite.source.oci import OciSpec

API_VERSION = api.API_VERSION
KIND = "Fleet"
_DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_USERINFO = re.compile(r"([A-Za-z][-+.A-Za-z0-9]*://)[^/@\s'\"]*@")  # credentials in a URL quoted
GIT, HELM, OCI = "git", "helm", "oci"
_TEXT = {"type": "string", "minLength": 1}
_OBJECT_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"}
_HELM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["repo", "chart"],
    "properties": {
        "repo": {"type": "string", "pattern": "^(https?|oci)://"},
        "chart": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$"},
        "version": {"type": "string"},
        "releaseName": {"type": "string", "pattern": _DNS_LABEL},
        "namespace": {"type": "string", "pattern": _DNS_LABEL},
        "deployNamespace": {"type": "string", "pattern": _DNS_LABEL},
        "values": {"type": "object"},
        "valuesFiles": {"type": "array", "items": _TEXT},
        "valuesFileRefs": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": _OBJECT_NAME, "dataKey": _TEXT},
            },
        },
        "includeCRDs": {"type": "boolean"},
        "auth": {"enum": list(helm_source.HELM_AUTH)},
        "secretRef": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": _OBJECT_NAME},
        },
        "caFile": _TEXT,
    },
    # as in a RootSync: token needs the Secret, and only token takes one
    "if": {"required": ["auth"], "properties": {"auth": {"const": helm_source.AUTH_TOKEN}}},
    "then": {"required": ["secretRef"]},
    "else": {"not": {"required": ["secretRef"]}},
}
_OCI = {
    "type": "object",
    "additionalProperties": False,
    "required": ["image"],
    "properties": {
        "image": _TEXT,
        "dir": _TEXT,
        "auth": {"enum": list(oci_source.OCI_AUTH)},
        "caFile": _TEXT,
    },
}
_SYNC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceType": {"enum": [GIT, HELM, OCI]},
        "repo": _TEXT,
        "revision": _TEXT,
        "dir": _TEXT,
        "sourceFormat": {"enum": ["hierarchy", "unstructured"]},
        "name": {"type": "string", "pattern": _DNS_LABEL},
        "helm": _HELM,
        "oci": _OCI,
        "ignoreFields": {"type": "array"},  # each rule is checked by plan.ignorefields
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
    source_type: str = GIT
    helm: HelmSpec | None = None
    oci: OciSpec | None = None
    ignore_fields: tuple[IgnoreRule, ...] = ()


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


def _where(error: jsonschema.ValidationError, doc: Any) -> str:
    """The entry at fault, a cluster also by its name: ``spec.clusters[1] (cluster edge).sync``."""
    parts = []
    path = list(error.absolute_path)
    for i, p in enumerate(path):
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
        if isinstance(p, int) and path[:i] == ["spec", "clusters"]:
            name = _cluster_name(doc, p)
            if name:
                parts.append(f" (cluster {name})")
    return "".join(parts).lstrip(".") or "(root)"


def _cluster_name(doc: Any, index: int) -> str:
    try:
        name = doc["spec"]["clusters"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return ""
    return shown(name) if isinstance(name, str) else ""


def _sync(raw: dict[str, Any] | None, default: FleetSync, base: Path) -> FleetSync:
    """One ``sync:`` over the default's: each field given wins; without ``sourceType``, a ``helm``,
    ``oci`` or ``repo`` given names the source (in that order), else the default's does."""
    raw = raw or {}
    inferred = next((k for k, field_ in ((HELM, "helm"), (OCI, "oci"), (GIT, "repo")) if field_ in raw), None)
    return FleetSync(
        repo=raw.get("repo", default.repo),
        revision=raw.get("revision", default.revision),
        dir=raw.get("dir", default.dir),
        source_format=raw.get("sourceFormat", default.source_format),
        name=raw.get("name", default.name),
        source_type=raw.get("sourceType") or inferred or default.source_type,
        helm=_helm(raw["helm"], base) if "helm" in raw else default.helm,
        oci=_oci(raw["oci"], base) if "oci" in raw else default.oci,
        ignore_fields=ignorefields.from_spec(raw["ignoreFields"])
        if "ignoreFields" in raw
        else default.ignore_fields,
    )


def _helm(raw: dict[str, Any], base: Path) -> HelmSpec:
    values = raw.get("values")
    return HelmSpec(
        repo=raw["repo"],
        chart=raw["chart"],
        version=raw.get("version", ""),
        release_name=raw.get("releaseName", ""),
        namespace=raw.get("namespace", ""),
        values=yaml.safe_dump(values, sort_keys=True) if values else "",
        values_files=tuple(Path(_relative(f, base)) for f in raw.get("valuesFiles") or ()),
        include_crds=bool(raw.get("includeCRDs", False)),
        ca_file=Path(_relative(raw["caFile"], base)) if raw.get("caFile") else None,
        deploy_namespace=raw.get("deployNamespace", ""),
        values_file_refs=tuple(
            ValuesFileRef(ref["name"], ref.get("dataKey", helm_source.DEFAULT_VALUES_KEY))
            for ref in raw.get("valuesFileRefs") or ()
        ),
        auth=raw.get("auth", helm_source.AUTH_NONE),
        secret_ref=(raw.get("secretRef") or {}).get("name", ""),
    )


def _oci(raw: dict[str, Any], base: Path) -> OciSpec:
    return OciSpec(
        image=raw["image"],
        dir=raw.get("dir", "."),
        ca_file=Path(_relative(raw["caFile"], base)) if raw.get("caFile") else None,
        auth=raw.get("auth", "none"),
    )


def _relative(value: str, base: Path) -> str:
    expanded = Path(os.path.expandvars(os.path.expanduser(value)))
    return str(expanded if expanded.is_absolute() else (base / expanded))


def _kubeconfig(value: str | None, base: Path) -> str | None:
    return None if value is None else _relative(value, base)


def _check_source(sync: FleetSync, where: str, path: Path) -> None:
    """The source ``sourceType`` names must be given (after the default's fields are merged in)."""
    needed = {HELM: (sync.helm, "helm: {repo, chart}"), OCI: (sync.oci, "oci: {image}")}.get(sync.source_type)
    if needed is not None and needed[0] is None:
        raise AcmError(
            INVALID_FLEET,
            f"{where}: sourceType {sync.source_type} needs {needed[1]}",
            path=str(path),
            hint=f"add {needed[1]} to this sync or to spec.sync",
        )


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
        shown = _USERINFO.sub(r"\1", "; ".join(f"{_where(e, doc)}: {e.message}" for e in errors[:5]))
        raise AcmError(
            INVALID_FLEET,
            shown,
            path=str(path),
            hint=f"a {KIND} ({API_VERSION}) lists spec.clusters[] with name, kubeconfig "
            "or kubeconfigSecretRef, context, labels and sync",
        )
    spec = doc["spec"]
    default = _sync(spec.get("sync"), FleetSync(), path.parent)
    clusters = tuple(
        FleetCluster(
            name=c["name"],
            labels=dict(c.get("labels") or {}),
            kubeconfig=_kubeconfig(c.get("kubeconfig"), path.parent),
            context=c.get("context"),
            secret_ref=c.get("kubeconfigSecretRef"),
            sync=_sync(c.get("sync"), default, path.parent),
        )
        for c in spec["clusters"]
    )
    for i, cluster in enumerate(clusters):
        _check_source(cluster.sync, f"spec.clusters[{i}] (cluster {cluster.name}).sync", path)
    names = [c.name for c in clusters]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AcmError(INVALID_FLEET, f"cluster names repeat: {', '.join(dupes)}", path=str(path))
    return Fleet((doc.get("metadata") or {}).get("name", path.stem), clusters, str(path))
