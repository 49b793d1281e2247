"""RootSync objects as the daemon's syncs: the sync one object describes, the syncs a config file
lists, and the RootSyncs of a cluster followed as they come and go. Reads the config file and
lists RootSyncs in the cluster; the syncs themselves run in the daemon's workers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.errors import AcmError, Problem
from acm_lite.parse import reader
from acm_lite.plan import ignorefields
from acm_lite.reconcile import model, pipeline
from acm_lite.reconcile.daemon import Daemon
from acm_lite.source.helm import DEFAULT_VALUES_KEY, HelmSpec, ValuesFileRef
from acm_lite.source.oci import OciSpec
from acm_lite.status import store

log = logging.getLogger("acm_lite.serve")  # the name `acm-lite serve`'s records have always had


def spec_of(item: dict[str, Any]) -> pipeline.SyncSpec | None:
    """The sync a RootSync object describes (None without a repository)."""
    spec = item.get("spec") or {}
    artifact = _artifact_spec(item, spec)
    if artifact is not None:
        return artifact
    git = spec.get("git") or {}
    if not git.get("repo"):
        return None
    return pipeline.SyncSpec(
        repo=git["repo"],
        name=item["metadata"]["name"],
        revision=_revision(git),
        dir=git.get("dir", "."),
        source_format=spec.get("sourceFormat", "hierarchy"),
        cluster_name=spec.get("clusterName"),
        namespace=spec.get("namespace"),
        reconcile_timeout=_reconcile_timeout(item, spec),
        ignore_fields=_ignore_fields(spec),
    )


def _revision(git: dict[str, Any]) -> str:
    """What to check out, as Config Sync chooses it: ``revision`` unless it is empty or ``HEAD``,
    then ``branch`` when one is given. Without either, the remote's default branch (``HEAD``);
    Config Sync falls back to ``master`` there, for compatibility with its old git-sync."""
    revision = git.get("revision")
    if isinstance(revision, str) and revision not in ("", "HEAD"):
        return revision
    branch = git.get("branch")
    if isinstance(branch, str) and branch:
        return branch
    return "HEAD"


def _reconcile_timeout(item: dict[str, Any], spec: dict[str, Any]) -> float | None:
    """spec.override.reconcileTimeout in seconds; None when unset, or (logged) unreadable, so the
    daemon's default applies."""
    override = spec.get("override")
    text = override.get("reconcileTimeout") if isinstance(override, dict) else None
    if text is None:
        return None
    seconds = model.parse_duration(text)
    if seconds is None:
        log.warning(
            "reconcileTimeout not read; the default applies",
            extra={"fields": {"sync": item["metadata"]["name"], "value": errors.shown(text)}},
        )
    return seconds


def _ignore_fields(spec: dict[str, Any]) -> tuple[ignorefields.IgnoreRule, ...]:
    """spec.override.ignoreFields as given: a malformed rule fails the sync's passes (KNV1061,
    naming the sync) rather than being dropped, since dropping it would apply the fields."""
    override = spec.get("override")
    return ignorefields.from_spec(override.get("ignoreFields")) if isinstance(override, dict) else ()


def _artifact_spec(item: dict[str, Any], spec: dict[str, Any]) -> pipeline.SyncSpec | None:
    """The sync of a RootSync whose source is a Helm chart or an OCI image (None otherwise)."""
    common = {
        "name": item["metadata"]["name"],
        "cluster_name": spec.get("clusterName"),
        "namespace": spec.get("namespace"),
        "reconcile_timeout": _reconcile_timeout(item, spec),
        "ignore_fields": _ignore_fields(spec),
    }
    kind = spec.get("sourceType")
    helm = spec.get("helm") or {}
    if kind == model.HELM and helm.get("repo") and helm.get("chart"):
        chart = HelmSpec(
            repo=str(helm["repo"]),
            chart=str(helm["chart"]),
            version=str(helm.get("version") or ""),
            release_name=str(helm.get("releaseName") or ""),
            namespace=str(helm.get("namespace") or ""),
            values=yaml.safe_dump(helm["values"]) if isinstance(helm.get("values"), dict) else "",
            include_crds=bool(helm.get("includeCRDs")),
            deploy_namespace=str(helm.get("deployNamespace") or ""),
            values_file_refs=_values_file_refs(helm.get("valuesFileRefs")),
            auth=str(helm.get("auth") or "none"),
            secret_ref=str((helm.get("secretRef") or {}).get("name") or ""),
        )
        return pipeline.SyncSpec(
            repo=chart.display, source_format="unstructured", source_type=model.HELM, helm=chart, **common
        )
    image = (spec.get("oci") or {}).get("image")
    if kind == model.OCI and image:
        given = spec.get("oci") or {}
        source = OciSpec(
            image=str(image), dir=str(given.get("dir") or "."), auth=str(given.get("auth") or "none")
        )
        return pipeline.SyncSpec(
            repo=source.image,
            source_format=spec.get("sourceFormat", "hierarchy"),
            source_type=model.OCI,
            oci=source,
            **common,
        )
    return None


def _values_file_refs(given: Any) -> tuple[ValuesFileRef, ...]:
    """``spec.helm.valuesFileRefs``: each a ConfigMap name and data key (``values.yaml`` when
    none is named); an entry that is not a mapping has no name (``KNV1061`` when fetched)."""
    if not isinstance(given, list):
        return ()
    return tuple(
        ValuesFileRef(
            name=str(ref.get("name") or "") if isinstance(ref, dict) else "",
            data_key=str(ref.get("dataKey") or DEFAULT_VALUES_KEY)
            if isinstance(ref, dict)
            else DEFAULT_VALUES_KEY,
        )
        for ref in given
    )


def from_config(path: Path) -> list[pipeline.SyncSpec]:
    """The syncs of a config file: a YAML file of RootSync objects, each with spec.git.repo."""
    loaded = reader.load_documents(path)
    if isinstance(loaded, Problem):
        raise AcmError(errors.INVALID_FLEET, f"cannot read config: {loaded.message}", path=str(path))
    docs = [d for d in loaded if d]
    specs = []
    for i, doc in enumerate(docs):
        spec = spec_of(doc) if isinstance(doc, dict) and doc.get("kind") == "RootSync" else None
        if spec is None:
            raise AcmError(
                errors.INVALID_FLEET, f"document {i + 1} is not a RootSync with spec.git.repo", path=str(path)
            )
        specs.append(spec)
    return specs


class RootSyncs:
    """Keep one worker per RootSync in the cluster, starting and stopping them as objects come
    and go (a deleted RootSync stops being synced; its objects are left as they are). Each
    ``refresh`` lists them again; ``connect`` reaches the cluster they are in, which they sync."""

    def __init__(self, daemon: Daemon, connect: Callable[[], Cluster]):
        self.daemon, self.connect = daemon, connect
        self.cluster = connect()
        self.specs: dict[str, pipeline.SyncSpec] = {}
        self.refresh()

    def refresh(self) -> None:
        try:
            items = store.list_syncs(self.cluster)
        except AcmError:
            return  # the API server is away; try again next round
        except Exception:  # a bug must not end the daemon: the syncs already running go on
            log.exception("listing RootSyncs failed")
            return
        wanted = {item["metadata"]["name"]: found for item in items if (found := spec_of(item)) is not None}
        for name in [n for n in self.specs if wanted.get(n) != self.specs[n]]:
            self.daemon.remove(name)
            del self.specs[name]
        for name, spec in wanted.items():
            if name not in self.specs:
                self.specs[name] = spec
                self.daemon.add(spec, self.connect)
