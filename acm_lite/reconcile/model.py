"""What one pass is asked to do and what it hands back: the sync's spec, the options of the pass,
and its result. Plain data, no I/O."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import api, declare, render
from acm_lite.apply.waiting import Waited
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId
from acm_lite.parse.namespace_selection import LiveNamespaces
from acm_lite.paths import cache_dir
from acm_lite.plan.changeset import ChangeSet, Outcome, Result
from acm_lite.plan.ignorefields import IgnoreRule
from acm_lite.policy.library import PolicySources
from acm_lite.source.auth import GitAuth, strip_userinfo
from acm_lite.source.helm import HelmSpec
from acm_lite.source.oci import OciSpec
from acm_lite.source.snapshot import Snapshot
from acm_lite.status.model import SyncStatus
from acm_lite.status.resources import Entry

if TYPE_CHECKING:
    from acm_lite.reconcile.incremental import Baseline

Progress = Callable[[str], None]
DEFAULT_RECONCILE_TIMEOUT = api.DEFAULT_RECONCILE_TIMEOUT
MAX_RECONCILE_TIMEOUT = 7 * 24 * 3600.0
GIT, HELM, OCI = api.GIT, api.HELM, api.OCI
SOURCE_TYPES = api.SOURCE_TYPES


@dataclass(frozen=True)
class RoleRef:
    """One ``spec.override.roleRefs`` entry of a RepoSync: a Role or ClusterRole bound (by a
    RoleBinding in the RepoSync's namespace) to the ServiceAccount the sync runs as."""

    kind: str  # Role or ClusterRole
    name: str

    def to_spec(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class SyncSpec:
    """What to sync, shaped like a RootSync's spec."""

    repo: str
    name: str = api.DEFAULT_SYNC
    revision: str = "HEAD"
    dir: str = "."
    source_format: str = declare.HIERARCHY
    cluster_name: str | None = None
    cluster_labels: Mapping[str, str] | None = None
    namespace: str | None = None  # a tenant sync, limited to this namespace
    source_type: str = GIT  # git, helm or oci; ``repo`` then names the chart or image for messages
    helm: HelmSpec | None = None
    oci: OciSpec | None = None
    reconcile_timeout: float | None = None  # spec.override.reconcileTimeout; None: the default
    period: float | None = None  # spec.git.period (or oci/helm): seconds between polls; None: the daemon's
    git_auth: str = "none"  # spec.git.auth: none, token or ssh
    git_secret_ref: str = ""  # spec.git.secretRef.name: the Secret of auth token or ssh
    ignore_fields: tuple[IgnoreRule, ...] = ()  # spec.override.ignoreFields, checked by the plan stage
    # the object the sync comes from: a RootSync, or a RepoSync (in ``namespace``, named
    # ``object_name``; ``name`` is then its reconciler's name, see ``api.reconciler_name``)
    kind: str = api.ROOT_SYNC
    object_name: str = ""
    role_refs: tuple[RoleRef, ...] = ()  # a RepoSync's spec.override.roleRefs

    @property
    def repo_sync(self) -> bool:
        return self.kind == api.REPO_SYNC and bool(self.namespace)

    @property
    def user(self) -> str | None:
        """Whom every request about the sync's objects is made as: a RepoSync's ServiceAccount
        (named after its reconciler, in its namespace); None for a RootSync (acm-lite's own)."""
        if self.repo_sync and self.namespace:
            return api.service_account_user(self.namespace, self.name)
        return None

    @property
    def object_key(self) -> tuple[str, str | None]:
        """The sync object's name and namespace (None: the system namespace, for a RootSync)."""
        if self.repo_sync:
            return self.object_name or self.name, self.namespace
        return self.name, None

    @property
    def describe(self) -> str:
        """The sync object, for messages: ``RootSync NAME`` or ``RepoSync NS/NAME``."""
        if self.repo_sync:
            return f"RepoSync {self.namespace}/{self.object_name or self.name}"
        return f"RootSync {self.name}"

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"sourceFormat": self.source_format, "sourceType": self.source_type}
        if self.source_type == HELM and self.helm is not None:
            spec["helm"] = self.helm.to_spec()
        elif self.source_type == OCI and self.oci is not None:
            spec["oci"] = self.oci.to_spec()
        else:
            spec["git"] = {"repo": strip_userinfo(self.repo), "revision": self.revision, "dir": self.dir}
            if self.git_auth != "none":
                spec["git"]["auth"] = self.git_auth
            if self.git_secret_ref:
                spec["git"]["secretRef"] = {"name": self.git_secret_ref}
        if self.period is not None:
            spec[self.source_type if self.source_type in (HELM, OCI) else GIT]["period"] = duration_text(
                self.period
            )
        if self.cluster_name and not self.repo_sync:
            spec["clusterName"] = self.cluster_name
        if self.namespace and not self.repo_sync:  # a RepoSync's namespace is its own
            spec["namespace"] = self.namespace
        override: dict[str, Any] = {}
        if self.role_refs:
            override["roleRefs"] = [r.to_spec() for r in self.role_refs]
        if self.reconcile_timeout is not None:
            override["reconcileTimeout"] = duration_text(self.reconcile_timeout)
        if self.ignore_fields and not any(r.problem for r in self.ignore_fields):
            override["ignoreFields"] = [r.to_spec() for r in self.ignore_fields]
        if override:
            spec["override"] = override
        return spec


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False  # plan, and have the API server validate, but change nothing
    plan_only: bool = False  # plan without any request that writes or validates (diff)
    # with plan_only: plan even when policy violations would stop the pass (what a commit the
    # policies block would change, for the dashboard's preview); the violations stay in the result
    plan_blocked: bool = False
    force_conflicts: bool = True
    allow_prune_all: bool = False
    take_over: bool = False
    concurrency: int = 16
    crd_timeout: float = 60.0  # seconds the CRDs a level applied get to become Established
    # seconds applied objects get to become Current: depends-on targets before their dependents,
    # with ``wait`` every object, and in the daemon every object before it is reported (KNV2009);
    # Config Sync's reconcileTimeout, which a RootSync's spec.override.reconcileTimeout overrides
    reconcile_timeout: float = DEFAULT_RECONCILE_TIMEOUT
    wait: bool = False  # after applying, wait until every object is Current (sync --once --wait)
    schema: bool = True
    git_cache: Path = field(default_factory=cache_dir)
    auth: GitAuth | None = None
    policies: PolicySources = field(default_factory=PolicySources)
    deadline: float = 1800.0  # seconds a pass may send requests for (0: no deadline)
    render: render.Options = field(default_factory=render.Options)  # what rendering may do


@dataclass
class SyncResult:
    spec: SyncSpec
    status: SyncStatus
    problems: list[Problem] = field(default_factory=list)
    changeset: ChangeSet | None = None
    results: list[Result] = field(default_factory=list)
    snapshot: Snapshot | None = None
    planned: int = 0  # changes the plan meant to make (not counting unchanged objects)
    status_error: AcmError | None = None  # the status could not be written to the cluster
    exception: BaseException | None = None  # the bug behind an internal error, for the log
    live_namespaces: LiveNamespaces | None = None  # dynamic NamespaceSelectors chose from these
    waited: Waited | None = None  # what waiting for the applied objects saw (``SyncOptions.wait``)
    health: list[Entry] | None = None  # each managed object's health after apply (None: not read)
    written: set[ObjectId] = field(default_factory=set)  # objects this pass created or configured
    health_stored: dict[str, list[Entry]] = field(default_factory=dict)  # the parts as stored
    # objects that did not reconcile (KNV2009), on the status but never holding the pass back
    health_problems: list[Problem] = field(default_factory=list)
    # what the next pass of the sync may start from (``reconcile.incremental``); None: a full pass
    baseline: Baseline | None = None
    incremental: bool = False  # this pass was planned from what changed since the last one
    full_because: str = ""  # why this pass was a full one although a baseline was given

    @property
    def ok(self) -> bool:
        return not any(p.blocking for p in self.problems)

    @property
    def applied(self) -> int:
        """Objects this pass changed in the cluster (created, configured, pruned, unmanaged)."""
        return sum(1 for r in self.results if r.outcome in _APPLIED)

    @property
    def counts(self) -> dict[str, int]:
        if self.results:
            counted = Counter(r.outcome.value for r in self.results)
            return {o.value: counted.get(o.value, 0) for o in Outcome}
        return self.changeset.counts() if self.changeset else {}


_APPLIED = frozenset({Outcome.CREATED, Outcome.CONFIGURED, Outcome.PRUNED, Outcome.UNMANAGED})


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: object) -> float | None:
    """A Go duration as Kubernetes writes one (``5m``, ``1h30m``, ``90s``, ``1.5m``) in seconds;
    None for anything else, or one that is zero, negative or over a week."""
    if not isinstance(text, str) or not 0 < len(text) <= 32:
        return None
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not 0 < total <= MAX_RECONCILE_TIMEOUT:
        return None
    return total


def duration_text(seconds: float) -> str:
    """Seconds as a Go duration Kubernetes and Config Sync read (``300s``)."""
    return f"{seconds:g}s"
