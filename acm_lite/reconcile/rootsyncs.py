"""RootSync objects as the daemon's syncs: the sync one object describes, the syncs a config file
lists, and the RootSyncs of a cluster followed as they come and go. Reads the config file and
lists RootSyncs in the cluster; the syncs themselves run in the daemon's workers."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from acm_lite import api, errors
from acm_lite.cluster.client import Cluster
from acm_lite.errors import AcmError, Problem
from acm_lite.parse import reader
from acm_lite.plan import ignorefields
from acm_lite.reconcile import finalizer, model, pipeline, reposyncs, sourcerefs
from acm_lite.reconcile.daemon import Daemon, Worker
from acm_lite.source.helm import DEFAULT_VALUES_KEY, HelmSpec, ValuesFileRef, invalid_sync
from acm_lite.source.oci import OciSpec
from acm_lite.status import store

log = logging.getLogger("acm_lite.serve")  # the name `acm-lite serve`'s records have always had


CONFIG_SYNC_GROUP = "configsync.gke.io"
MIN_PERIOD = 1.0  # seconds between a sync's polls, at the least
CONFIG_SYNC_VERSIONS = ("v1beta1", "v1alpha1")

# What each field of a RootSync's spec becomes (Config Sync's fields, and acm-lite's own).
_TOP = {"sourceFormat", "sourceType", "git", "oci", "helm", "override", "clusterName", "namespace"}
_REPO_TOP = _TOP - {"clusterName", "namespace"}  # a RepoSync's namespace is its own
MAX_ROLE_REFS = 32
MAX_NAME = 63  # a reconciler's name is a label value and a ServiceAccount's name
_GIT = {"repo", "branch", "revision", "dir", "period", "auth", "secretRef"}
_HELM = {
    "repo",
    "chart",
    "version",
    "releaseName",
    "namespace",
    "deployNamespace",
    "values",
    "valuesFileRefs",
    "includeCRDs",
    "period",
    "auth",
    "secretRef",
}
_OCI = {"image", "dir", "period", "auth"}
# settings of Config Sync's reconciler Pods, which acm-lite does not run: warned, then left out
_POD_SETTINGS = (
    "resources",
    "apiServerTimeout",
    "statusMode",
    "gitSyncDepth",
    "logLevels",
    "enableShellInRendering",
)
_REFUSED_HINTS = {
    "caCertSecretRef": "put the CA in the system trust store (Git) or pass --source-ca-file (Helm, OCI)",
    "proxy": "set HTTPS_PROXY in the daemon's environment (git reads it)",
    "noSSLVerify": "trust the server's CA instead of turning verification off",
    "gcpServiceAccountEmail": "use auth token with a secretRef",
}
_CLOUD_AUTH = ("gcenode", "gcpserviceaccount", "k8sserviceaccount")


def is_config_sync(item: dict[str, Any]) -> bool:
    """Whether ``item`` is Config Sync's own RootSync or RepoSync (``configsync.gke.io/v1beta1``
    or v1alpha1)."""
    group, _, version = str(item.get("apiVersion") or "").partition("/")
    return group == CONFIG_SYNC_GROUP and version in CONFIG_SYNC_VERSIONS


def kind_of(item: dict[str, Any]) -> str:
    """RepoSync for a RepoSync (acm-lite's or Config Sync's), RootSync for anything else."""
    return api.REPO_SYNC if item.get("kind") == api.REPO_SYNC else api.ROOT_SYNC


def subject(item: dict[str, Any]) -> str:
    """``RootSync NAME`` or ``RepoSync NAMESPACE/NAME``, for messages."""
    found = item.get("metadata")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    name = errors.shown(meta.get("name"))
    if kind_of(item) == api.REPO_SYNC:
        where = f"{meta.get('namespace')}/{meta.get('name')}"
        return f"RepoSync {errors.shown(where)}"
    return f"RootSync {name}"


def spec_of(item: dict[str, Any]) -> pipeline.SyncSpec | None:
    """The sync a RootSync object describes (None without a repository); a field acm-lite does not
    carry out raises ``ACM1108`` (or ``ACM1107``, a cloud identity) naming it."""
    return read(item)[0]


def read(item: dict[str, Any]) -> tuple[pipeline.SyncSpec | None, list[Problem]]:
    """The sync a RootSync or RepoSync describes, acm-lite's or Config Sync's own, and the
    warnings (``ACM1109``) of the fields it sets that acm-lite leaves out."""
    found, warnings = _read(item)
    if found is None or kind_of(item) != api.REPO_SYNC:
        return found, warnings
    return _as_repo_sync(item, found), warnings


def _as_repo_sync(item: dict[str, Any], found: pipeline.SyncSpec) -> pipeline.SyncSpec:
    """A RepoSync's sync: limited to its namespace, named after its reconciler as Config Sync
    names it (``ns-reconciler-<namespace>``...), run as the ServiceAccount of that name there,
    with the Roles of ``spec.override.roleRefs`` bound to it."""
    meta = item["metadata"]
    namespace, name = meta.get("namespace"), meta["name"]
    if not isinstance(namespace, str) or not api.valid_namespace(namespace):
        raise invalid_sync(f"{subject(item)}: a RepoSync needs metadata.namespace, a namespace name")
    if namespace in api.own_namespaces() or namespace.startswith("kube-"):
        raise errors_refused(
            item, "metadata.namespace", "is acm-lite's or the system's own: a RepoSync may not sync it"
        )
    reconciler = api.reconciler_name(namespace, name)
    if len(reconciler) > MAX_NAME:
        raise invalid_sync(
            f"{subject(item)}: its reconciler name {reconciler!r} is longer than {MAX_NAME} "
            "characters; shorten the RepoSync's name or namespace"
        )
    override = (item.get("spec") or {}).get("override")
    given = override.get("roleRefs") if isinstance(override, dict) else None
    return dataclasses.replace(
        found,
        name=reconciler,
        namespace=namespace,
        kind=api.REPO_SYNC,
        object_name=name,
        role_refs=_role_refs(item, namespace, given),
    )


def _role_refs(item: dict[str, Any], namespace: str, given: object) -> tuple[model.RoleRef, ...]:
    """``spec.override.roleRefs`` of a RepoSync: each a Role or ClusterRole by name, bound in the
    RepoSync's namespace (one naming another namespace is refused: a tenant's rights stop at its
    namespace)."""
    if given in (None, []):
        return ()
    if not isinstance(given, list) or len(given) > MAX_ROLE_REFS:
        raise errors_refused(item, "spec.override.roleRefs", f"is not a list of at most {MAX_ROLE_REFS}")
    refs = []
    for i, ref in enumerate(given):
        field = f"spec.override.roleRefs[{i}]"
        if not isinstance(ref, dict):
            raise errors_refused(item, field, "is not a mapping")
        for key in ref:
            if key not in ("kind", "name", "namespace"):
                raise errors_refused(item, f"{field}.{key}", "is not a field acm-lite knows")
        kind, name = ref.get("kind"), ref.get("name")
        if kind not in ("Role", "ClusterRole"):
            raise errors_refused(item, f"{field}.kind", f"is {errors.shown(kind)}, not Role or ClusterRole")
        if not isinstance(name, str) or not name or len(name) > 253 or "/" in name:
            raise errors_refused(item, f"{field}.name", "is not the name of a Role or ClusterRole")
        if ref.get("namespace") not in (None, "", namespace):
            raise errors_refused(
                item,
                f"{field}.namespace",
                f"is {errors.shown(ref.get('namespace'))}: a RepoSync's rights are bound in its own "
                f"namespace {namespace!r} only",
            )
        refs.append(model.RoleRef(str(kind), name))
    return tuple(dict.fromkeys(refs))


def _read(item: dict[str, Any]) -> tuple[pipeline.SyncSpec | None, list[Problem]]:
    spec = item.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors_refused(item, "spec", "is not a mapping")
    warnings = _check_fields(item, spec)
    artifact = _artifact_spec(item, spec)
    if artifact is not None:
        return artifact, warnings
    git = spec.get("git") or {}
    if not isinstance(git, dict) or not git.get("repo") or spec.get("sourceType", model.GIT) != model.GIT:
        return None, warnings
    auth, secret = _git_auth(item, git)
    return pipeline.SyncSpec(
        repo=str(git["repo"]),
        name=item["metadata"]["name"],
        revision=_revision(git),
        dir=str(git.get("dir") or "."),
        source_format=spec.get("sourceFormat") or _default_format(item),
        cluster_name=spec.get("clusterName"),
        namespace=spec.get("namespace"),
        reconcile_timeout=_reconcile_timeout(item, spec),
        period=_period(item, "git", git),
        git_auth=auth,
        git_secret_ref=secret,
        ignore_fields=_ignore_fields(spec),
    ), warnings


def _default_format(item: dict[str, Any]) -> str:
    """A RepoSync's repository is unstructured (Config Sync's namespace repositories are); a
    RootSync's default is hierarchy."""
    return "unstructured" if kind_of(item) == api.REPO_SYNC else "hierarchy"


def errors_refused(item: dict[str, Any], field: str, why: str, hint: str | None = None) -> AcmError:
    """``ACM1108`` about ``field`` of the RootSync or RepoSync ``item``."""
    return AcmError(
        errors.CONFIG_SYNC_FIELD_UNSUPPORTED,
        f"{subject(item)}: {field} {why}",
        hint=hint or "remove the field, or see docs/migrating-from-config-sync.md",
    )


def _check_fields(item: dict[str, Any], spec: dict[str, Any]) -> list[Problem]:
    """Refuse what acm-lite does not do; the warnings of what it leaves out."""
    repo_sync = kind_of(item) == api.REPO_SYNC
    for key in spec:
        if key not in (_REPO_TOP if repo_sync else _TOP):
            raise errors_refused(item, f"spec.{key}", "is not a field acm-lite knows")
    _check_format(item, spec.get("sourceFormat"), repo_sync)
    kind = spec.get("sourceType")
    if kind is not None and kind not in model.SOURCE_TYPES:
        raise errors_refused(item, "spec.sourceType", f"is {errors.shown(kind)}, not git, helm or oci")
    for section, known in (("git", _GIT), ("helm", _HELM), ("oci", _OCI)):
        given = spec.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise errors_refused(item, f"spec.{section}", "is not a mapping")
        for key, value in given.items():
            field = f"spec.{section}.{key}"
            if key == "noSSLVerify" and value in (False, None):
                continue  # verification on, as acm-lite always does
            if key == "gcpServiceAccountEmail":
                raise _cloud(field)
            if key not in known:
                why = (
                    "is not carried out by acm-lite"
                    if key in _REFUSED_HINTS
                    else "is not a field acm-lite knows"
                )
                raise errors_refused(item, field, why, _REFUSED_HINTS.get(key))
        if section == "git" and given.get("auth") in _CLOUD_AUTH:  # Helm, OCI: ACM1107 at the fetch
            raise _cloud("spec.git.auth")
    return _check_override(item, spec.get("override"))


def _check_format(item: dict[str, Any], fmt: object, repo_sync: bool) -> None:
    if fmt is not None and fmt not in ("hierarchy", "unstructured"):
        raise errors_refused(
            item, "spec.sourceFormat", f"is {errors.shown(fmt)}, not hierarchy or unstructured"
        )
    if repo_sync and fmt == "hierarchy":
        raise errors_refused(
            item,
            "spec.sourceFormat",
            "is hierarchy: a RepoSync's repository is unstructured, as in Config Sync",
        )


def _cloud(field: str) -> AcmError:
    return AcmError(
        errors.SOURCE_AUTH_UNSUPPORTED,
        f"{field} asks for a cloud identity, which acm-lite does not obtain",
        hint="use auth token with a secretRef (Git, Helm), or credentials from the daemon's environment",
    )


def _check_override(item: dict[str, Any], override: object) -> list[Problem]:
    if override is None:
        return []
    if not isinstance(override, dict):
        raise errors_refused(item, "spec.override", "is not a mapping")
    warnings = []
    for key, value in override.items():
        field = f"spec.override.{key}"
        if key in ("reconcileTimeout", "ignoreFields"):  # carried out (ignoreFields is acm-lite's)
            continue
        if key in _POD_SETTINGS:
            warnings.append(
                Problem(
                    errors.CONFIG_SYNC_FIELD_IGNORED,
                    f"{subject(item)}: {field} tunes Config Sync's reconciler Pods, "
                    "which acm-lite does not run; it is left out",
                    hint="set the daemon's resources and timeouts in the Helm chart's values",
                )
            )
        elif key == "namespaceStrategy" and value in (None, "", "implicit"):
            continue  # acm-lite creates the namespaces of namespaced objects it applies, as implicit
        elif key == "roleRefs" and (not value or kind_of(item) == api.REPO_SYNC):
            continue  # a RepoSync's are checked and carried out (_role_refs)
        elif key == "roleRefs":
            raise errors_refused(
                item,
                field,
                "is not carried out: a RootSync applies with the daemon's own rights",
                "limit the daemon's rights with the chart's rbac values instead",
            )
        elif key == "namespaceStrategy":
            raise errors_refused(
                item, field, f"is {errors.shown(value)}: acm-lite does only implicit (creates namespaces)"
            )
        else:
            raise errors_refused(item, field, "is not a field acm-lite knows")
    return warnings


def _git_auth(item: dict[str, Any], git: dict[str, Any]) -> tuple[str, str]:
    """``spec.git.auth`` and the name of ``spec.git.secretRef``, as Config Sync checks them."""
    auth = git.get("auth") or "none"
    ref = git.get("secretRef")
    secret = ref.get("name") if isinstance(ref, dict) else None
    secret = secret if isinstance(secret, str) else ""
    if auth not in sourcerefs.GIT_AUTH:
        raise errors_refused(
            item, "spec.git.auth", f"is {errors.shown(auth)}: acm-lite reads none, token and ssh"
        )
    if auth != "none" and not secret:
        raise invalid_sync(f"RootSyncs must specify spec.git.secretRef.name when spec.git.auth is {auth!r}")
    if auth == "none" and secret:
        raise invalid_sync("RootSyncs must not specify spec.git.secretRef.name when spec.git.auth is 'none'")
    return str(auth), secret


def _period(item: dict[str, Any], section: str, given: dict[str, Any]) -> float | None:
    """``spec.<section>.period`` in seconds (None: the daemon's ``--period``)."""
    text = given.get("period")
    if text is None:
        return None
    seconds = model.parse_duration(text)
    if seconds is None or seconds < MIN_PERIOD:
        raise invalid_sync(
            f"spec.{section}.period {errors.shown(text)} is not a duration such as 15s or 1m "
            f"(at least {MIN_PERIOD:g}s: a poll is a fetch)"
        )
    return seconds


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
            repo=chart.display,
            source_format="unstructured",
            source_type=model.HELM,
            helm=chart,
            period=_period(item, "helm", helm),
            **common,
        )
    image = (spec.get("oci") or {}).get("image")
    if kind == model.OCI and image:
        given = spec.get("oci") or {}
        source = OciSpec(
            image=str(image), dir=str(given.get("dir") or "."), auth=str(given.get("auth") or "none")
        )
        return pipeline.SyncSpec(
            repo=source.image,
            source_format=spec.get("sourceFormat", _default_format(item)),
            source_type=model.OCI,
            oci=source,
            period=_period(item, "oci", given),
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
    """The syncs of a config file: a YAML file of RootSync objects (acm-lite's, or Config Sync's
    own, read unchanged), each with a source. The warnings of fields left out are logged."""
    specs = []
    for spec, warnings in read_file(path):
        for warning in warnings:
            log.warning(warning.message, extra={"fields": {"code": warning.code.id, "file": str(path)}})
        specs.append(spec)
    return specs


def read_file(path: Path) -> list[tuple[pipeline.SyncSpec, list[Problem]]]:
    """Each RootSync of a YAML file as a sync, with its warnings; a document that is not a
    RootSync with a source is ``ACM4001``, a field acm-lite does not carry out ``ACM1108``, each
    naming the file."""
    loaded = reader.load_documents(path)
    if isinstance(loaded, Problem):
        raise AcmError(errors.INVALID_FLEET, f"cannot read config: {loaded.message}", path=str(path))
    docs = [d for d in loaded if d]
    specs = []
    for i, doc in enumerate(docs):
        spec: pipeline.SyncSpec | None = None
        warnings: list[Problem] = []
        if isinstance(doc, dict) and doc.get("kind") in (api.ROOT_SYNC, api.REPO_SYNC) and _named(doc):
            try:
                spec, warnings = read(doc)
            except AcmError as e:
                raise AcmError(
                    e.code, f"document {i + 1}: {e.message}", path=str(path), hint=e.hint
                ) from None
        if spec is None:
            raise AcmError(
                errors.INVALID_FLEET,
                f"document {i + 1} is not a RootSync or RepoSync with a source",
                path=str(path),
            )
        specs.append((spec, warnings))
    return specs


def sync_name(item: dict[str, Any]) -> str:
    """The name a sync object's sync runs under: a RootSync's name, a RepoSync's reconciler's."""
    meta = item["metadata"]
    if kind_of(item) == api.REPO_SYNC:
        return api.reconciler_name(str(meta.get("namespace")), str(meta["name"]))
    return str(meta["name"])


def _named(doc: dict[str, Any]) -> bool:
    metadata = doc.get("metadata")
    return isinstance(metadata, dict) and isinstance(metadata.get("name"), str) and bool(metadata["name"])


class RootSyncs:
    """Keep one worker per RootSync in the cluster (in the system namespace) and per RepoSync (in
    any namespace), starting and stopping them as objects come and go. Each ``refresh`` lists
    them again; ``connect`` reaches the cluster they are in, which they sync. A sync object asking
    for Foreground deletion gets a finalizer, and once deleted its objects are deleted before the
    finalizer is removed (a RepoSync's as its ServiceAccount); one deleted without it leaves its
    objects in place with acm-lite's marks taken off (see ``finalizer``). A RepoSync's
    ServiceAccount and RoleBindings are deleted once it is gone (see ``reposyncs``)."""

    def __init__(self, daemon: Daemon, connect: Callable[[], Cluster]):
        self.daemon, self.connect = daemon, connect
        self.cluster = connect()
        self.specs: dict[str, pipeline.SyncSpec] = {}
        self.seen: set[str] = set()  # every RootSync listed last time, with a source or not
        self.stopping: dict[str, list[Worker]] = {}  # workers of deleted RootSyncs, still ending
        self.retry: dict[str, tuple[int, float]] = {}  # failures in a row, next try (monotonic)
        self.orphaned: set[str] = set()  # RootSyncs gone without a finalizer, objects to unmark
        self.repo_namespaces: dict[str, str] = {}  # a RepoSync's sync name -> its namespace
        self.last_repo_syncs: list[dict[str, Any]] = []
        self.repo_denied = False  # listing RepoSyncs was refused (logged once)
        self.refresh()

    def refresh(self) -> None:
        try:
            items = store.list_syncs(self.cluster) + self._repo_syncs()
        except AcmError:
            return  # the API server is away; try again next round
        except Exception:  # a bug must not end the daemon: the syncs already running go on
            log.exception("listing RootSyncs and RepoSyncs failed")
            return
        self.repo_namespaces.update(
            (sync_name(i), str(i["metadata"].get("namespace"))) for i in items if kind_of(i) == api.REPO_SYNC
        )
        wanted = {}
        for item in items:
            if finalizer.deleting(item):
                continue  # being deleted: finalized below, no longer synced
            try:
                found, warnings = read(item)
            except AcmError as e:  # refused: not synced, and said why (each round, until fixed)
                log.error(e.message, extra={"fields": {"code": e.code.id, "sync": subject(item)}})
                continue
            if found is not None:
                wanted[found.name] = found
                if found.name not in self.specs:
                    for warning in warnings:
                        log.warning(warning.message, extra={"fields": {"code": warning.code.id}})
        for name in [n for n in self.specs if wanted.get(n) != self.specs[n]]:
            self.stopping.setdefault(name, []).extend(self.daemon.remove(name))
            del self.specs[name]
        for name, spec in wanted.items():
            if name not in self.specs:
                self.specs[name] = spec
                self.daemon.add(spec, self.connect)
        listed = {sync_name(item) for item in items}
        self.orphaned = (self.orphaned | (self.seen - listed)) - listed
        self.seen = listed
        if self.daemon.is_leader():
            self._finalizers(items)

    def _repo_syncs(self) -> list[dict[str, Any]]:
        """The cluster's RepoSyncs; when this daemon may not list them (403: the chart's RBAC
        without them), the RootSyncs are still followed and the RepoSyncs last listed kept."""
        try:
            listed = store.list_repo_syncs(self.cluster)
        except AcmError as e:
            if e.code is not errors.INSUFFICIENT_PERMISSION:
                raise
            if not self.repo_denied:
                log.warning(
                    "RepoSyncs not followed", extra={"fields": {"error": e.message, "code": e.code.id}}
                )
            self.repo_denied = True
            return self.last_repo_syncs
        self.repo_denied = False
        self.last_repo_syncs = [{**i, "kind": api.REPO_SYNC} for i in listed if _named(i)]
        return self.last_repo_syncs

    def _finalizers(self, items: list[dict[str, Any]]) -> None:
        """Keep each RootSync's finalizer as its policy asks, and carry out the deletions due."""
        for item in items:
            name = sync_name(item)
            try:
                if not finalizer.deleting(item):
                    finalizer.set_finalizer(
                        self.cluster, item, finalizer.policy(item) == finalizer.FOREGROUND
                    )
                elif finalizer.has_finalizer(item) and self._due(name):
                    self._finalize(item)
            except AcmError as e:
                log.warning("finalizer not updated", extra={"fields": {"sync": name, "error": str(e)}})
            except Exception:  # a bug must not end the daemon
                log.exception("finalizing failed", extra={"fields": {"sync": name}})
        for name in sorted(self.orphaned):
            if self._due(name):
                self._orphan(name)

    def _due(self, name: str) -> bool:
        """Whether ``name``'s workers have stopped and its backoff has passed."""
        self.stopping[name] = [w for w in self.stopping.get(name, []) if w.thread.is_alive()]
        if self.stopping[name]:
            return False  # a pass under way must not re-create what is being deleted
        return time.monotonic() >= self.retry.get(name, (0, 0.0))[1]

    def _backoff(self, name: str, ok: bool) -> None:
        if ok:
            self.retry.pop(name, None)
            return
        failures = self.retry.get(name, (0, 0.0))[0] + 1
        delay = min(
            self.daemon.options.backoff_max, self.daemon.options.period * 2.0 ** min(failures - 1, 20)
        )
        self.retry[name] = (failures, time.monotonic() + delay)

    def _finalize(self, item: dict[str, Any]) -> None:
        """One round for a deleted RootSync holding the finalizer: its objects deleted
        (Foreground) or unmarked (the annotation removed meanwhile), progress in its status, and
        the finalizer removed when nothing is left."""
        name = sync_name(item)
        foreground = finalizer.policy(item) == finalizer.FOREGROUND
        target = None
        if foreground and kind_of(item) == api.REPO_SYNC:  # deleted as the RepoSync's ServiceAccount
            target = self.cluster.as_user(api.service_account_user(self.repo_namespaces[name], name))
        try:
            outcome = finalizer.finalize(self.cluster, name, foreground=foreground, target=target)
            if outcome.done:
                self._remove_rbac(name)
        except AcmError as e:
            outcome = finalizer.Round(problems=[e.to_problem()])
        log.info(
            "finalizing",
            extra={
                "fields": {
                    "sync": name,
                    "policy": finalizer.policy(item),
                    "acted": outcome.acted,
                    "waiting": len(outcome.waiting),
                    "errors": [p.render() for p in outcome.problems],
                    "done": outcome.done,
                }
            },
        )
        if outcome.done:
            finalizer.set_finalizer(self.cluster, item, False)
            self.retry.pop(name, None)
            self.seen.discard(name)  # gone next time, with nothing left to orphan
            return
        self._backoff(name, not outcome.problems)
        try:
            finalizer.report(self.cluster, item, outcome)
        except AcmError as e:
            log.warning(
                "finalizing not recorded in status", extra={"fields": {"sync": name, "error": str(e)}}
            )

    def _orphan(self, name: str) -> None:
        """A RootSync deleted without a finalizer: take acm-lite's marks off its objects and
        delete its records, retried with backoff until it works."""
        try:
            outcome = finalizer.finalize(self.cluster, name, foreground=False)
            if outcome.done:
                self._remove_rbac(name)
        except AcmError as e:
            outcome = finalizer.Round(problems=[e.to_problem()])
        if outcome.done:
            self.orphaned.discard(name)
        else:
            log.warning(
                "orphaning a deleted RootSync's objects failed",
                extra={"fields": {"sync": name, "errors": [p.render() for p in outcome.problems]}},
            )
        self._backoff(name, outcome.done)

    def _remove_rbac(self, name: str) -> None:
        """A RepoSync's ServiceAccount and RoleBindings, once its objects are dealt with."""
        namespace = self.repo_namespaces.get(name)
        if namespace is not None:
            reposyncs.remove(self.cluster, namespace, name)
            self.repo_namespaces.pop(name, None)
