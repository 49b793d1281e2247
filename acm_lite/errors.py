"""Coded errors: one registry, sorted by code; a code's category says what the caller should do
next, and an error becomes a finding of a result one way (``AcmError.to_problem``).

Where Config Sync has the same rule, the code and name are Config Sync's (``KNV1017 MissingRepo``);
acm-lite's own errors use the ``ACM`` prefix. What to do about each code (its usual causes and the
fix) is kept in one data file keyed by code, ``acm_lite/data/remediation.yaml``, read on first use by
``remediation``; nothing else here does I/O.
"""

from __future__ import annotations

import functools
import reprlib
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Any, Protocol


class Category(Enum):
    """What a caller should do with an error."""

    PERMANENT = "permanent"  # stop and report: retrying the same input gives the same error
    TRANSIENT = "transient"  # retry with backoff: the world may change (network, API server)
    WAITING = "waiting"  # requeue later: something else has to happen first


@dataclass(frozen=True)
class Code:
    """One registered error code; a non-blocking code is reported but never stops a sync."""

    id: str
    name: str
    category: Category
    summary: str
    blocking: bool = True

    def __str__(self) -> str:
        return f"{self.id} {self.name}"

    def __reduce__(self) -> tuple[Any, ...]:
        """Unpickled as the registered code itself, so ``code is errors.X`` still holds."""
        return (lookup, (self.id,))


_REGISTRY: dict[str, Code] = {}
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = 100


def shown(value: object) -> str:
    """A value from the input as a message quotes it: its repr, cut short (a hostile key or value
    can be megabytes long)."""
    return _SHOWN.repr(value)


def register(code_id: str, name: str, category: Category, summary: str, *, blocking: bool = True) -> Code:
    """Add a code to the registry; a code or name registered twice is a programming error."""
    if code_id in _REGISTRY:
        raise ValueError(f"error code {code_id} registered twice")
    if any(c.name == name for c in _REGISTRY.values()):
        raise ValueError(f"error name {name} registered twice")
    code = Code(code_id, name, category, summary, blocking)
    _REGISTRY[code_id] = code
    return code


def all_codes() -> list[Code]:
    """Every registered code, sorted by id."""
    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def lookup(code_id: str) -> Code | None:
    """The code with this id, if registered."""
    return _REGISTRY.get(code_id)


@dataclass(frozen=True)
class Remediation:
    """What to do about a code: the usual causes, and the fix."""

    causes: str
    fix: str


@functools.cache
def _remediations() -> dict[str, Remediation]:
    import yaml  # only `acm-lite errors` and the docs need it; keeps importing this module cheap

    text = resources.files("acm_lite").joinpath("data/remediation.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text) or {}
    out: dict[str, Remediation] = {}
    for code_id, entry in raw.items():
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("causes"), str)
            and isinstance(entry.get("fix"), str)
        ):
            out[str(code_id)] = Remediation(" ".join(entry["causes"].split()), " ".join(entry["fix"].split()))
    return out


def remediation(code_id: str) -> Remediation | None:
    """The usual causes of a code and what to do about it; None when none is written down."""
    return _remediations().get(code_id)


class _Located(Protocol):
    @property
    def source(self) -> str: ...

    def describe(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Problem:
    """A finding about the input: collected with the others rather than raised at the first."""

    code: Code
    message: str
    source: str | None = None
    obj: dict[str, str] | None = None  # group, version, kind, namespace, name
    hint: str | None = None

    @classmethod
    def about(cls, code: Code, message: str, obj: _Located, hint: str | None = None) -> Problem:
        """A problem with one declared object, located by its source file and identity."""
        return cls(code, message, source=obj.source, obj=obj.describe(), hint=hint)

    @property
    def blocking(self) -> bool:
        return self.code.blocking

    def identity(self) -> tuple[object, ...]:
        """Equal for the same finding, wherever (for whichever cluster) it was made."""
        return (self.code.id, self.message, self.source, tuple(sorted((self.obj or {}).items())))

    def sort_key(self) -> tuple[str, str, str, str]:
        obj = self.obj or {}
        return (self.source or "", self.code.id, obj.get("namespace", ""), obj.get("name", ""))

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code.id,
            "name": self.code.name,
            "message": self.message,
            "blocking": self.blocking,
        }
        if self.source:
            out["source"] = self.source
        if self.obj:
            out["object"] = self.obj
        if self.hint:
            out["hint"] = self.hint
        return out

    def render(self) -> str:
        """The form ``nomos vet`` users know: code and message, then where."""
        lines = [f"{self.code.id} {self.code.name}: {self.message}"]
        if self.source:
            lines.append(f"source: {self.source}")
        if self.obj:
            obj = self.obj
            gvk = "/".join(p for p in (obj.get("group"), obj.get("version")) if p)
            lines.append(
                f"object: {gvk}, Kind={obj.get('kind', '')}"
                + (
                    f" {obj['namespace']}/{obj.get('name', '')}"
                    if obj.get("namespace")
                    else f" {obj.get('name', '')}"
                )
            )
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class AcmError(Exception):
    """An error a user can act on: a code, what is wrong, where, and how to fix it."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        path: str | None = None,
        subject: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.subject = subject
        self.hint = hint

    @property
    def category(self) -> Category:
        return self.code.category

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable (it crosses from the policy sandbox's child process to its parent)."""
        return (_rebuild, (self.code, self.message, self.path, self.subject, self.hint))

    def render(self) -> str:
        """The one-paragraph form printed by the CLI."""
        where = ", ".join(p for p in (self.path, self.subject) if p)
        lines = [f"{self.code}: {self.message}" + (f" ({where})" if where else "")]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_problem(
        self, *, source: str | None = None, obj: dict[str, str] | None = None, message: str | None = None
    ) -> Problem:
        """This error as a finding in a result, the one way from one to the other: its code,
        message and hint; located at ``source`` (by default its ``path``) and at ``obj``, the
        identity of the object it is about. The ``subject`` is not carried: a problem names its
        object by identity, which only the caller knows. ``message`` replaces the message (to
        add context such as the cluster it happened on)."""
        return Problem(
            self.code,
            self.message if message is None else message,
            source=self.path if source is None else source,
            obj=obj,
            hint=self.hint,
        )

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code.id, "name": self.code.name, "message": self.message}
        for key in ("path", "subject", "hint"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


def _rebuild(code: Code, message: str, path: str | None, subject: str | None, hint: str | None) -> AcmError:
    return AcmError(code, message, path=path, subject=subject, hint=hint)


# acm-lite's own repository rules: the reader's limits, depends-on and schemas (ACM1001-ACM1009).
FILE_TOO_LARGE = register(
    "ACM1001", "FileTooLarge", Category.PERMANENT, "A manifest file is larger than the reader's limit."
)
TOO_MANY_DOCUMENTS = register(
    "ACM1002",
    "TooManyDocuments",
    Category.PERMANENT,
    "A manifest file holds more YAML documents than allowed.",
)
ALIAS_EXPANSION = register(
    "ACM1003",
    "AliasExpansionLimit",
    Category.PERMANENT,
    "YAML anchors and aliases expand past the limit (a YAML bomb).",
)
SYMLINK_OUTSIDE_SOURCE = register(
    "ACM1004",
    "SymlinkOutsideSource",
    Category.PERMANENT,
    "A symbolic link points outside the source directory.",
)
INVALID_DEPENDS_ON = register(
    "ACM1005",
    "InvalidDependsOn",
    Category.PERMANENT,
    "config.kubernetes.io/depends-on is malformed or names an object that is not declared.",
)
SCHEMA_VIOLATION = register(
    "ACM1006",
    "SchemaViolation",
    Category.PERMANENT,
    "An object does not match its kind's OpenAPI schema (a wrong type, an unknown field...).",
)
DEPENDENCY_CYCLE = register(
    "ACM1007",
    "DependencyCycle",
    Category.PERMANENT,
    "config.kubernetes.io/depends-on annotations form a cycle.",
)

# Reading sources, cluster names and writing hydrated output safely (ACM1010-ACM1019).
NOT_A_REGULAR_FILE = register(
    "ACM1010",
    "NotARegularFile",
    Category.PERMANENT,
    "A manifest path is a FIFO, device, socket or other non-regular file; only regular files are read.",
)
BROKEN_SYMLINK = register(
    "ACM1011",
    "BrokenSymlink",
    Category.PERMANENT,
    "A symbolic link in the source loops or points at nothing.",
)
TOO_MANY_FILES = register(
    "ACM1012",
    "TooManyFiles",
    Category.PERMANENT,
    "The source holds more manifest files than the reader's limit.",
)
NESTING_TOO_DEEP = register(
    "ACM1013",
    "NestingTooDeep",
    Category.PERMANENT,
    "A document nests maps and lists deeper than the reader's limit.",
)
NON_STRING_KEY = register(
    "ACM1014",
    "NonStringKey",
    Category.PERMANENT,
    "A mapping key is not a string (1:, yes:, null:); Kubernetes objects only have string keys.",
)
UNSUPPORTED_VALUE = register(
    "ACM1015",
    "UnsupportedValue",
    Category.PERMANENT,
    "A value JSON cannot carry: a YAML tag building binary/set/timestamp data, a lone surrogate, "
    "an integer with too many digits.",
)
INVALID_CLUSTER_NAME = register(
    "ACM1016",
    "InvalidClusterName",
    Category.PERMANENT,
    "A cluster name (cluster-name-selector entry, Cluster object, --cluster) is not a DNS-1123 name.",
)
UNSAFE_OUTPUT_PATH = register(
    "ACM1017",
    "UnsafeOutputPath",
    Category.PERMANENT,
    "A hydrated file would be written or removed outside --output (a name holding '/', '..' or "
    "NUL, or a symbolic link in the output).",
)
OUTPUT_WRITE_FAILED = register(
    "ACM1018",
    "OutputWriteFailed",
    Category.PERMANENT,
    "A hydrated file or directory could not be written or removed.",
)
DUPLICATE_KEY = register(
    "ACM1019",
    "DuplicateKey",
    Category.PERMANENT,
    "A mapping holds the same key twice; the API server's strict decoding and kubectl refuse it "
    "(the last one does not silently win).",
)

# Schemas a repository supplies (ACM1020-ACM1029).
INVALID_CRD_SCHEMA = register(
    "ACM1020",
    "InvalidCRDSchema",
    Category.PERMANENT,
    "A CRD's openAPIV3Schema is not a valid Kubernetes schema ($ref, a wrong type, a pattern RE2 "
    "cannot compile); its objects are not validated against it.",
)

# Git credentials (ACM1030-ACM1039).
CREDENTIALS_WITHHELD = register(
    "ACM1030",
    "CredentialsWithheld",
    Category.PERMANENT,
    "A Git remote asked for credentials acm-lite held back: over plain http (they go only over "
    "https, or with ACM_LITE_GIT_ALLOW_HTTP=1), or from another host a redirect led to.",
)

# Offline checks of what the API server would reject, and what the command line names
# (ACM1040-ACM1059).
INVALID_LABEL = register(
    "ACM1040",
    "InvalidLabel",
    Category.PERMANENT,
    "A label key is not a qualified name, or a label value is not a valid label value.",
)
INVALID_ANNOTATION = register(
    "ACM1041",
    "InvalidAnnotation",
    Category.PERMANENT,
    "An annotation key is not a qualified name, or the annotations total more than 256 KiB.",
)
INVALID_QUANTITY = register(
    "ACM1042",
    "InvalidQuantity",
    Category.PERMANENT,
    "A resource quantity (requests, limits, quota, storage) does not parse as a Kubernetes quantity.",
)
INVALID_DATA_KEY = register(
    "ACM1043",
    "InvalidDataKey",
    Category.PERMANENT,
    "A ConfigMap or Secret data key is not a valid config key, or is in data and binaryData both.",
)
INVALID_BASE64 = register(
    "ACM1044",
    "InvalidBase64",
    Category.PERMANENT,
    "A Secret data or ConfigMap binaryData value is not standard, padded base64.",
)
DATA_TOO_LARGE = register(
    "ACM1045", "DataTooLarge", Category.PERMANENT, "The data of a ConfigMap or Secret totals more than 1 MiB."
)
OBJECT_TOO_LARGE = register(
    "ACM1046",
    "ObjectTooLarge",
    Category.PERMANENT,
    "An object serialises to more than the 1.5 MiB that etcd stores per object.",
)
UNKNOWN_CLUSTER = register(
    "ACM1047",
    "UnknownCluster",
    Category.PERMANENT,
    "A cluster named on the command line is declared nowhere (clusterregistry/, selectors, fleet).",
    blocking=False,
)
PATH_NOT_FOUND = register(
    "ACM1048",
    "PathNotFound",
    Category.PERMANENT,
    "A file or directory named on the command line does not exist.",
)

# Rendering a kustomization (kustomize, with Helm charts inflated) before the source is read
# (ACM1070-ACM1079).
RENDER_NEEDS_UNSTRUCTURED = register(
    "ACM1070",
    "KustomizationInHierarchy",
    Category.PERMANENT,
    "A hierarchical source holds a kustomization in its sync directory: rendering needs "
    "sourceFormat unstructured.",
)
RENDER_REMOTE_REFUSED = register(
    "ACM1071",
    "RenderNetworkDisabled",
    Category.PERMANENT,
    "A kustomization names a remote base, resource or Helm chart while rendering may not reach the network.",
)
RENDER_PATH_OUTSIDE_SOURCE = register(
    "ACM1072",
    "RenderPathOutsideSource",
    Category.PERMANENT,
    "A kustomization names an absolute path, a file:// URL, or a relative path leading outside the source.",
)
RENDER_OUTPUT_TOO_LARGE = register(
    "ACM1073",
    "RenderOutputTooLarge",
    Category.PERMANENT,
    "Rendering printed more than the output limit; it was stopped.",
)

# Fetching the source (ACM1101-ACM1199).
SOURCE_DIR_NOT_FOUND = register(
    "ACM1101",
    "SourceDirNotFound",
    Category.PERMANENT,
    "The sub-directory to sync does not exist at that revision.",
)
REVISION_NOT_FOUND = register(
    "ACM1102",
    "RevisionNotFound",
    Category.PERMANENT,
    "The branch, tag or commit does not exist in the remote.",
)
SOURCE_AUTH_FAILED = register(
    "ACM1103",
    "SourceAuthFailed",
    Category.PERMANENT,
    "The Git remote, Helm repository or OCI registry refused the credentials (or asked for some).",
)
ARTIFACT_NOT_FOUND = register(
    "ACM1104",
    "ArtifactNotFound",
    Category.PERMANENT,
    "The Helm repository, chart, chart version, OCI repository or tag does not exist (answered 404).",
)
ARTIFACT_REJECTED = register(
    "ACM1105",
    "ArtifactRejected",
    Category.PERMANENT,
    "A chart or OCI artifact is not a readable archive, holds a path leaving it (../, absolute), a "
    "link or a special file, or is larger than its limit.",
)
DIGEST_MISMATCH = register(
    "ACM1106",
    "DigestMismatch",
    Category.PERMANENT,
    "A downloaded chart, manifest or layer does not match the digest its index or manifest names.",
)
SOURCE_AUTH_UNSUPPORTED = register(
    "ACM1107",
    "SourceAuthUnsupported",
    Category.PERMANENT,
    "The Helm or OCI source asks for a cloud identity (gcenode, gcpserviceaccount, k8sserviceaccount) "
    "acm-lite does not obtain.",
)
CONFIG_SYNC_FIELD_UNSUPPORTED = register(
    "ACM1108",
    "ConfigSyncFieldUnsupported",
    Category.PERMANENT,
    "A RootSync or RepoSync sets a Config Sync field to something acm-lite does not do; it is refused, "
    "not ignored.",
)
CONFIG_SYNC_FIELD_IGNORED = register(
    "ACM1109",
    "ConfigSyncFieldIgnored",
    Category.PERMANENT,
    "A RootSync or RepoSync sets a Config Sync field that tunes Config Sync's own reconciler Pods, which "
    "acm-lite does not run; the sync goes on without it.",
    blocking=False,
)

# Talking to clusters and applying to them (ACM2001-ACM2009).
KUBECONFIG_ERROR = register(
    "ACM2001",
    "KubeconfigError",
    Category.PERMANENT,
    "The kubeconfig, context or in-cluster configuration could not be loaded.",
)
UNKNOWN_RESOURCE = register(
    "ACM2002",
    "UnknownResource",
    Category.WAITING,
    "The cluster serves no resource for the object's kind (is its CRD installed?).",
)
CRD_NOT_ESTABLISHED = register(
    "ACM2003",
    "CRDNotEstablished",
    Category.TRANSIENT,
    "A CustomResourceDefinition did not become Established in time.",
)
DEPENDENCY_FAILED = register(
    "ACM2004",
    "DependencyNotReady",
    Category.WAITING,
    "An object was not applied because an object it depends on failed, or did not become Current "
    "in time (config.kubernetes.io/depends-on).",
)
CREDENTIALS_REJECTED = register(
    "ACM2005",
    "CredentialsRejected",
    Category.PERMANENT,
    "The API server rejected the credentials (expired token, revoked certificate).",
)

# The daemon, its API-server connections, its status and its admission webhook (ACM2010-ACM2019).
API_SERVER_UNREACHABLE = register(
    "ACM2010",
    "APIServerUnreachable",
    Category.TRANSIENT,
    "Several requests in a row to one API server failed (timeout, refused, reset): the pass "
    "stopped rather than wait out every object; the next pass tries again.",
)
PASS_DEADLINE_EXCEEDED = register(
    "ACM2011",
    "PassDeadlineExceeded",
    Category.TRANSIENT,
    "A pass ran past its deadline: no further request was sent; the next pass continues.",
)
INTERNAL_ERROR = register(
    "ACM2012",
    "InternalError",
    Category.TRANSIENT,
    "A pass failed on an unexpected error (a bug): the daemon keeps running and retries; the "
    "traceback is in its log.",
)
STATUS_NOT_RECORDED = register(
    "ACM2013",
    "StatusNotRecorded",
    Category.TRANSIENT,
    "The outcome of a pass could not be written to its RootSync; it is written by the next pass.",
)
LISTEN_FAILED = register(
    "ACM2014",
    "ListenFailed",
    Category.PERMANENT,
    "The daemon cannot listen on its --metrics-address or --admission-webhook-address (in use, not "
    "allowed, not an address).",
)
ADMISSION_WEBHOOK_FAILED = register(
    "ACM2015",
    "AdmissionWebhookFailed",
    Category.TRANSIENT,
    "The admission webhook could not start or keep going: its certificate Secret is unusable, its "
    "identity or its ValidatingWebhookConfiguration could not be read or written.",
)
CHANGE_DENIED = register(
    "ACM2016",
    "ChangeDenied",
    Category.PERMANENT,
    "The admission webhook denied a change to an object acm-lite manages: a declared field, "
    "acm-lite's labels and annotations, or its deletion, by someone other than acm-lite.",
)
SHARD_NOT_HELD = register(
    "ACM2017",
    "ShardNotHeld",
    Category.TRANSIENT,
    "A write to a fleet cluster was refused: this replica no longer holds (or could not renew) the "
    "Lease of the cluster's shard; the replica that holds it syncs the cluster.",
)
SHARD_LEASE_FAILED = register(
    "ACM2018",
    "ShardLeaseFailed",
    Category.TRANSIENT,
    "The Leases that share a fleet between replicas could not be read or written in the "
    "management cluster; shards whose Lease is not renewed stop syncing here before it expires.",
)
DASHBOARD_AUTH_FAILED = register(
    "ACM2019",
    "DashboardAuthFailed",
    Category.TRANSIENT,
    "The dashboard (serve --ui) could not have a bearer token reviewed by the management cluster's "
    "TokenReview API: the request is refused (401) until the API server answers.",
)

# Pruning: objects never deleted (ACM2020-ACM2029).
DELETE_REFUSED = register(
    "ACM2020",
    "DeleteRefused",
    Category.PERMANENT,
    "A DELETE of a protected object (default, kube-*, acm-lite's namespace or kinds) was refused.",
)

# Objects addressed at the API version they were declared with; applies postponed by a level that
# could not finish (ACM2030-ACM2039).
VERSION_NOT_SERVED = register(
    "ACM2030",
    "VersionNotServed",
    Category.WAITING,
    "The cluster serves the object's kind, but not at the API version it is declared with.",
)
APPLY_POSTPONED = register(
    "ACM2031",
    "ApplyPostponed",
    Category.WAITING,
    "An object was not applied or pruned: CRDs an earlier level applied did not become "
    "Established; retried on the next pass.",
)

# The inventory: the record of what a sync applied, split across ResourceInventory parts
# (ACM2040-ACM2049).
INVENTORY_WRITE_FAILED = register(
    "ACM2040",
    "InventoryWriteFailed",
    Category.TRANSIENT,
    "The record of what a sync applies could not be stored; what it would cover is not applied.",
)
INVENTORY_READ_FAILED = register(
    "ACM2041",
    "InventoryReadFailed",
    Category.TRANSIENT,
    "The record of what a sync applied could not be read; nothing is applied or pruned.",
)
INVENTORY_CORRUPT = register(
    "ACM2042",
    "InventoryCorrupt",
    Category.PERMANENT,
    "A ResourceInventory holds an entry that is not an object's identity; the sync stops.",
)
INVENTORY_CLEANUP_FAILED = register(
    "ACM2043",
    "InventoryCleanupFailed",
    Category.TRANSIENT,
    "A new inventory was recorded, but the ResourceInventories it replaces could not be deleted.",
    blocking=False,
)

# Per-object health: the ResourceStatus record of each managed object's status (ACM2050-ACM2059).
RESOURCE_STATUS_NOT_RECORDED = register(
    "ACM2050",
    "ResourceStatusNotRecorded",
    Category.TRANSIENT,
    "The health of the managed objects could not be written to their ResourceStatus parts; the "
    "next pass or health change writes it again.",
    blocking=False,
)

# Deletion propagation: a RootSync deleted with its objects, or orphaning them (ACM2070-ACM2079).
FINALIZE_FAILED = register(
    "ACM2070",
    "FinalizeFailed",
    Category.TRANSIENT,
    "A deleted RootSync's objects could not all be deleted (Foreground) or unmarked (Orphan); the "
    "finalizer stays and the daemon retries.",
)

# RepoSyncs: the ServiceAccount a RepoSync runs as and its RoleBindings (ACM2080-ACM2089).
REPO_SYNC_RBAC_FAILED = register(
    "ACM2080",
    "RepoSyncRbacFailed",
    Category.TRANSIENT,
    "The ServiceAccount a RepoSync runs as, or a RoleBinding of its spec.override.roleRefs, could not "
    "be created, updated or deleted; the sync waits and the daemon retries.",
)

# Policy (Gatekeeper templates and constraints, evaluated in-process): broken policies and suites
# (ACM3001-ACM3099).
TEMPLATE_INVALID = register(
    "ACM3001",
    "TemplateInvalid",
    Category.PERMANENT,
    "A ConstraintTemplate is malformed or its Rego/CEL does not compile; its constraints fail closed.",
)
CONSTRAINT_INVALID = register(
    "ACM3002",
    "ConstraintInvalid",
    Category.PERMANENT,
    "A Constraint is malformed, or its parameters fail the template's schema.",
)
TEMPLATE_MISSING = register(
    "ACM3003", "TemplateMissing", Category.PERMANENT, "A Constraint's kind has no ConstraintTemplate."
)
POLICY_EVALUATION_ERROR = register(
    "ACM3004",
    "PolicyEvaluationError",
    Category.PERMANENT,
    "Evaluating a constraint failed; the object is treated as violating (fail closed).",
)
EXPANSION_INVALID = register(
    "ACM3005", "ExpansionTemplateInvalid", Category.PERMANENT, "An ExpansionTemplate is malformed."
)
POLICY_SUITE_INVALID = register(
    "ACM3006",
    "PolicySuiteInvalid",
    Category.PERMANENT,
    "A gator Suite file, or a file it names, cannot be read.",
)
POLICY_INPUT_INVALID = register(
    "ACM3007",
    "PolicyInputInvalid",
    Category.PERMANENT,
    "An input of policy test (a file, a directory, stdin, an image or an AdmissionReview in them) "
    "cannot be read or reviewed.",
)
REGO_UNSUPPORTED = register(
    "ACM3008",
    "RegoUnsupported",
    Category.PERMANENT,
    "A ConstraintTemplate's Rego calls what acm-lite cannot evaluate as Gatekeeper does "
    "(external_data); its constraints fail closed.",
)
SYNC_CONFIG_INVALID = register(
    "ACM3010",
    "SyncConfigInvalid",
    Category.PERMANENT,
    "A Gatekeeper Config or SyncSet naming the kinds referential policies read is malformed.",
)
REFERENTIAL_DATA_LIMIT = register(
    "ACM3011",
    "ReferentialDataLimit",
    Category.PERMANENT,
    "The live objects read for data.inventory passed their count or size limit; the rest are left out.",
    blocking=False,
)
CEL_FALLBACK_TO_REGO = register(
    "ACM3020",
    "CelFallbackToRego",
    Category.PERMANENT,
    "A template's CEL uses Kubernetes CEL that acm-lite does not evaluate; its Rego code is used instead.",
    blocking=False,
)
CEL_UNSUPPORTED = register(
    "ACM3021",
    "CelUnsupported",
    Category.PERMANENT,
    "A template's CEL uses Kubernetes CEL that acm-lite does not evaluate and it has no Rego code; its "
    "constraints fail closed.",
)

# Policy violations, one code per enforcement action (ACM3100-ACM3199).
POLICY_VIOLATION = register(
    "ACM3100", "PolicyViolation", Category.PERMANENT, "An object violates a constraint whose action is deny."
)
POLICY_WARNING = register(
    "ACM3101",
    "PolicyWarning",
    Category.PERMANENT,
    "An object violates a constraint whose action is warn.",
    blocking=False,
)
POLICY_DRYRUN = register(
    "ACM3102",
    "PolicyDryRunViolation",
    Category.PERMANENT,
    "An object violates a constraint whose action is dryrun (reported only).",
    blocking=False,
)

# Fleets (ACM4001-ACM4999).
INVALID_FLEET = register(
    "ACM4001", "InvalidFleet", Category.PERMANENT, "A fleet file is malformed: it names the entry at fault."
)
PREVIEW_NEEDS_GIT = register(
    "ACM4002",
    "PreviewNeedsGit",
    Category.PERMANENT,
    "A preview compares two Git revisions, and a cluster syncs a Helm chart or an OCI image.",
)
PREVIEW_FAILED = register(
    "ACM4003",
    "PreviewFailed",
    Category.TRANSIENT,
    "The dashboard's preview of a commit not yet applied did not finish in time, or failed; the "
    "sync itself is not affected.",
)

# The local development environment (ACM9001-ACM9999).
TOOLCHAIN_MISSING = register(
    "ACM9001",
    "ToolchainMissing",
    Category.PERMANENT,
    "A tool needed to build the local control-plane binaries (go) is not installed.",
)
BINARY_BUILD_FAILED = register(
    "ACM9002",
    "BinaryBuildFailed",
    Category.TRANSIENT,
    "Building a control-plane binary from the Go module proxy failed.",
)
CONTROL_PLANE_START_FAILED = register(
    "ACM9003",
    "ControlPlaneStartFailed",
    Category.TRANSIENT,
    "A local etcd or kube-apiserver did not become ready.",
)
DEV_STATE_MISSING = register(
    "ACM9004",
    "DevClusterNotRunning",
    Category.WAITING,
    "No local control plane is running; start one with `acm-lite dev up`.",
)
DEV_CLUSTER_UNKNOWN = register(
    "ACM9005",
    "DevClusterUnknown",
    Category.PERMANENT,
    "The named local cluster is not among those started by `acm-lite dev up`.",
)
DEV_ALREADY_RUNNING = register(
    "ACM9006",
    "DevClusterAlreadyRunning",
    Category.PERMANENT,
    "Local control planes are already running; stop them with `acm-lite dev down` first.",
)

# Repository mistakes, and an object another sync manages, numbered and named as Config Sync numbers
# and names them (KNV1xxx).
ILLEGAL_NAMESPACE_SUBDIRECTORY = register(
    "KNV1003", "IllegalNamespaceSubdirectory", Category.PERMANENT, "A namespace directory has subdirectories."
)
ILLEGAL_SELECTOR_ANNOTATION = register(
    "KNV1004",
    "IllegalSelectorAnnotation",
    Category.PERMANENT,
    "A selector annotation is set where it cannot apply (cluster-scoped objects, selectors).",
)
ILLEGAL_MANAGEMENT_ANNOTATION = register(
    "KNV1005",
    "IllegalManagementAnnotation",
    Category.PERMANENT,
    "configmanagement.gke.io/managed has a value other than `disabled`.",
)
OBJECT_PARSE = register(
    "KNV1006", "ObjectParse", Category.PERMANENT, "A file could not be parsed into Kubernetes objects."
)
ILLEGAL_ABSTRACT_NAMESPACE_OBJECT_KIND = register(
    "KNV1007",
    "IllegalAbstractNamespaceObjectKind",
    Category.PERMANENT,
    "An abstract namespace directory holds a kind whose HierarchyConfig mode is `none`.",
)
ILLEGAL_METADATA_NAMESPACE_DECLARATION = register(
    "KNV1009",
    "IllegalMetadataNamespaceDeclaration",
    Category.PERMANENT,
    "metadata.namespace differs from the namespace directory holding the object.",
)
ILLEGAL_ANNOTATION_DEFINITION = register(
    "KNV1010",
    "IllegalAnnotationDefinition",
    Category.PERMANENT,
    "An object in the source sets an annotation reserved for Config Sync.",
)
ILLEGAL_LABEL_DEFINITION = register(
    "KNV1011",
    "IllegalLabelDefinition",
    Category.PERMANENT,
    "An object in the source sets a label reserved for Config Sync.",
)
OBJECT_HAS_UNKNOWN_SELECTOR = register(
    "KNV1013",
    "ObjectHasUnknownSelector",
    Category.PERMANENT,
    "An object names a ClusterSelector or NamespaceSelector that is not declared.",
)
INVALID_SELECTOR = register(
    "KNV1014",
    "InvalidSelector",
    Category.PERMANENT,
    "A ClusterSelector or NamespaceSelector is invalid or empty.",
)
MISSING_REPO = register(
    "KNV1017",
    "MissingRepo",
    Category.PERMANENT,
    "The system/ directory of a hierarchical repo declares no Repo.",
)
ILLEGAL_TOP_LEVEL_NAMESPACE = register(
    "KNV1019",
    "IllegalTopLevelNamespace",
    Category.PERMANENT,
    "A Namespace is declared directly in namespaces/ rather than in a subdirectory.",
)
INVALID_NAMESPACE_NAME = register(
    "KNV1020",
    "InvalidNamespaceName",
    Category.PERMANENT,
    "A Namespace's metadata.name differs from the name of its directory.",
)
UNKNOWN_OBJECT_KIND = register(
    "KNV1021",
    "UnknownObjectKind",
    Category.WAITING,
    "The kind is neither built in nor defined by a CRD in the repo; it must exist on the cluster.",
    blocking=False,
)
UNSUPPORTED_REPO_SPEC_VERSION = register(
    "KNV1027", "UnsupportedRepoSpecVersion", Category.PERMANENT, "The Repo's spec.version is not supported."
)
NAME_COLLISION = register(
    "KNV1029", "NameCollision", Category.PERMANENT, "Two objects share group, kind, namespace and name."
)
MISSING_OBJECT_NAME = register(
    "KNV1031", "MissingObjectName", Category.PERMANENT, "An object has no metadata.name."
)
ILLEGAL_HIERARCHICAL_KIND = register(
    "KNV1032",
    "IllegalHierarchicalKind",
    Category.PERMANENT,
    "Repo or HierarchyConfig appear in a repo of the unstructured format.",
)
ILLEGAL_NAMESPACE = register(
    "KNV1034",
    "IllegalNamespace",
    Category.PERMANENT,
    "A reserved namespace (config-management-system, acm-lite's own) or an object in it is declared.",
)
INVALID_METADATA_NAME = register(
    "KNV1036", "InvalidMetadataName", Category.PERMANENT, "metadata.name is not a valid name for the kind."
)
ILLEGAL_KIND_IN_NAMESPACES = register(
    "KNV1038",
    "IllegalKindInNamespaces",
    Category.PERMANENT,
    "A kind that may not be declared in namespaces/ (or in a namespace directory) is there.",
)
INCORRECT_TOP_LEVEL_DIRECTORY = register(
    "KNV1039",
    "IncorrectTopLevelDirectory",
    Category.PERMANENT,
    "An object is in the wrong top-level directory of a hierarchical repo.",
)
UNSUPPORTED_RESOURCE_IN_HIERARCHY_CONFIG = register(
    "KNV1041",
    "UnsupportedResourceInHierarchyConfig",
    Category.PERMANENT,
    "A HierarchyConfig names a kind that cannot be inherited.",
)
ILLEGAL_HIERARCHY_MODE = register(
    "KNV1042", "IllegalHierarchyMode", Category.PERMANENT, "A HierarchyConfig uses an unknown hierarchyMode."
)
UNSUPPORTED_OBJECT = register(
    "KNV1043",
    "UnsupportedObject",
    Category.PERMANENT,
    "The kind may not be synced (e.g. a CRD of Config Sync's own groups).",
)
UNSYNCABLE_RESOURCES = register(
    "KNV1044",
    "UnsyncableResources",
    Category.PERMANENT,
    "An abstract namespace directory holds objects but no namespace directory beneath it.",
)
ILLEGAL_FIELDS_IN_CONFIG = register(
    "KNV1045",
    "IllegalFieldsInConfig",
    Category.PERMANENT,
    "An object sets fields the API server owns (status, uid, resourceVersion, ownerReferences...).",
)
CLUSTER_SCOPED_RESOURCE_IN_HIERARCHY_CONFIG = register(
    "KNV1046",
    "ClusterScopedResourceInHierarchyConfig",
    Category.PERMANENT,
    "A HierarchyConfig names a cluster-scoped kind.",
)
INVALID_CRD_NAME = register(
    "KNV1048", "InvalidCRDName", Category.PERMANENT, "A CRD's name is not `<plural>.<group>`."
)
DEPRECATED_GROUP_KIND = register(
    "KNV1050", "DeprecatedGroupKind", Category.PERMANENT, "The object uses a removed API group for its kind."
)
ILLEGAL_NAMESPACE_ON_CLUSTER_SCOPED_RESOURCE = register(
    "KNV1052",
    "IllegalNamespaceOnClusterScopedResource",
    Category.PERMANENT,
    "A cluster-scoped object declares metadata.namespace.",
)
NAMESPACE_AND_SELECTOR = register(
    "KNV1053",
    "MissingNamespaceOnNamespacedResource",
    Category.PERMANENT,
    "A namespaced object declares both metadata.namespace and a namespace-selector.",
)
INVALID_ANNOTATION_VALUE = register(
    "KNV1054", "InvalidAnnotationValue", Category.PERMANENT, "An annotation or label value is not a string."
)
INVALID_DIRECTORY_NAME = register(
    "KNV1055", "InvalidDirectoryName", Category.PERMANENT, "metadata.namespace is not a valid namespace name."
)
MANAGED_RESOURCE_IN_UNMANAGED_NAMESPACE = register(
    "KNV1056",
    "ManagedResourceInUnmanagedNamespace",
    Category.PERMANENT,
    "A managed object is declared in a Namespace marked `managed: disabled`.",
)
BAD_SCOPE = register(
    "KNV1058", "BadScope", Category.PERMANENT, "A namespace-scoped sync declares a cluster-scoped object."
)
MANAGEMENT_CONFLICT = register(
    "KNV1060",
    "ManagementConflict",
    Category.PERMANENT,
    "The object is managed by another sync; it is not taken over.",
)
INVALID_SYNC = register(
    "KNV1061",
    "InvalidSyncError",
    Category.PERMANENT,
    "The RootSync's spec is invalid, or names a ConfigMap or Secret that is missing or unusable.",
)
CLUSTER_SELECTOR_ANNOTATION_CONFLICT = register(
    "KNV1066",
    "ClusterSelectorAnnotationConflict",
    Category.PERMANENT,
    "An object sets both cluster-selector and cluster-name-selector.",
)
RENDER_FAILED = register(
    "KNV1068",
    "ActionableHydrationError",
    Category.PERMANENT,
    "Rendering the sync directory failed on its content: kustomize's or helm's own message, or a "
    "kustomization only below the sync directory.",
)

# Syncing: the source, the API server and applying (and MultipleSingletons, a repository rule
# Config Sync numbers here), numbered and named as Config Sync numbers and names them (KNV2xxx).
API_SERVER_ERROR = register(
    "KNV2002",
    "APIServerError",
    Category.TRANSIENT,
    "The API server could not be reached or answered with a server error.",
)
SOURCE_ERROR = register(
    "KNV2004",
    "SourceError",
    Category.TRANSIENT,
    "The Git remote, Helm repository or OCI registry could not be reached (or answered with a "
    "server error), or the source could not be read.",
)
FIGHT = register(
    "KNV2005",
    "FightError",
    Category.TRANSIENT,
    "Another controller keeps changing a managed object back; repair paused until the next pass.",
)
EMPTY_SOURCE = register(
    "KNV2006",
    "EmptySourceError",
    Category.PERMANENT,
    "The commit would prune every object of the sync (empty source, or a wrong --dir).",
)
APPLY_ERROR = register(
    "KNV2009",
    "ApplyError",
    Category.WAITING,
    "An applied object did not become Current (it is Failed, or was not Current when the wait's "
    "time ran out), or a pruned one was not gone in time (sync --wait). The daemon reports the "
    "same on the RootSync for objects Failed or not Current within the reconcile timeout, "
    "without holding the rest of the commit back.",
)
RESOURCE_ERROR = register(
    "KNV2010", "ResourceError", Category.PERMANENT, "The API server rejected an object (invalid, or refused)."
)
MULTIPLE_SINGLETONS = register(
    "KNV2012",
    "MultipleSingletons",
    Category.PERMANENT,
    "More than one of a kind that must be unique (Repo, a directory's Namespace).",
)
INSUFFICIENT_PERMISSION = register(
    "KNV2013",
    "InsufficientPermission",
    Category.PERMANENT,
    "The credentials may not perform the request (RBAC).",
)
RENDER_INTERNAL = register(
    "KNV2015",
    "InternalHydrationError",
    Category.TRANSIENT,
    "Rendering could not be run (a binary is missing, the render directory could not be made).",
)
RENDER_TRANSIENT = register(
    "KNV2016",
    "TransientError",
    Category.TRANSIENT,
    "Rendering stopped for a reason that may pass (its time limit, a killed process); retried.",
)
