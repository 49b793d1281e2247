"""acm-lite's own API: the ``acm-lite.io`` group, its kinds and where they live. No I/O beyond
reading the CRDs the package ships (``crds``)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from importlib import resources
from typing import Any

import yaml

GROUP = "acm-lite.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# The default system namespace: where the RootSyncs, inventories, ResourceStatuses, the leader Lease
# and the Events live. ``--system-namespace`` or ``$ACM_LITE_SYSTEM_NAMESPACE`` choose another
# (the chart passes its release namespace); read it with ``system_namespace()``.
SYSTEM_NAMESPACE = "acm-lite-system"
SYSTEM_NAMESPACE_ENV = "ACM_LITE_SYSTEM_NAMESPACE"
NAMESPACE_ENV = "ACM_LITE_NAMESPACE"  # the daemon's own namespace, when installed elsewhere
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_chosen: dict[str, str] = {}  # the system namespace this process chose, under key "name"
FIELD_MANAGER = "acm-lite"
# The admission webhook's name in the ValidatingWebhookConfiguration (and that object's name): the
# API server quotes it in a denial ("admission webhook \"NAME\" denied the request: ...").
ADMISSION_WEBHOOK = f"admission-webhook.{GROUP}"
DEFAULT_SYNC = "root-sync"
# The kinds of sync object: a RootSync (acm-lite's rights, anything its source declares) and a
# RepoSync (one namespace, under the rights of a ServiceAccount there).
ROOT_SYNC, REPO_SYNC = "RootSync", "RepoSync"
PLURALS = {ROOT_SYNC: "rootsyncs", REPO_SYNC: "reposyncs"}
DEFAULT_REPO_SYNC = "repo-sync"
RECONCILER_PREFIX = "ns-reconciler"
# On each CRD acm-lite ships: ``crd_hash`` of its spec, so an installation can tell a CRD of an
# older acm-lite (or one installed by hand) from its own without comparing what the API server
# defaulted into the live one.
CRD_HASH_ANNOTATION = f"{GROUP}/crd-hash"
# The vocabulary of a sync's spec (RootSync's sourceFormat, sourceType and the auth modes of
# spec.helm and spec.oci), here on the floor so that the command line can offer them as choices
# without importing the readers and fetchers that act on them.
HIERARCHY = "hierarchy"
UNSTRUCTURED = "unstructured"
SOURCE_FORMATS = (HIERARCHY, UNSTRUCTURED)
GIT, HELM, OCI = "git", "helm", "oci"
SOURCE_TYPES = (GIT, HELM, OCI)
AUTH_NONE, AUTH_TOKEN = "none", "token"
CLOUD_AUTH = ("gcenode", "gcpserviceaccount", "k8sserviceaccount")  # identities of a cloud
HELM_AUTH = (AUTH_NONE, AUTH_TOKEN, *CLOUD_AUTH)
OCI_AUTH = (AUTH_NONE, *CLOUD_AUTH)
DEFAULT_VALUES_KEY = "values.yaml"  # a valuesFileRef without a dataKey, as in Config Sync
DEFAULT_RECONCILE_TIMEOUT = 300.0  # Config Sync's default reconcileTimeout, 5m


@functools.cache
def crds() -> tuple[dict[str, Any], ...]:
    """The CustomResourceDefinitions acm-lite installs (also shipped in the Helm chart)."""
    folder = resources.files("acm_lite").joinpath("data/crds")
    return tuple(
        yaml.safe_load(f.read_text())
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".yaml")
    )


def crd_hash(crd: dict[str, Any]) -> str:
    """A short hash of what decides how a CRD behaves: its spec (names, scope, versions and their
    schemas), as canonical JSON."""
    text = json.dumps(crd.get("spec"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def valid_namespace(name: str) -> bool:
    """Whether ``name`` can name a Namespace (an RFC 1123 label)."""
    return _DNS_LABEL.fullmatch(name) is not None


def set_system_namespace(name: str | None) -> str:
    """Choose the system namespace for this process, once at start: ``name``, else
    ``$ACM_LITE_SYSTEM_NAMESPACE``, else ``acm-lite-system``. A name that cannot name a Namespace
    is a ``ValueError`` naming where it came from."""
    origin = "--system-namespace"
    if not name:
        name, origin = os.environ.get(SYSTEM_NAMESPACE_ENV) or SYSTEM_NAMESPACE, f"${SYSTEM_NAMESPACE_ENV}"
    if not valid_namespace(name):
        raise ValueError(f"{origin} {name[:80]!r} is not a namespace name (lower-case RFC 1123 label)")
    _chosen["name"] = name
    return name


def system_namespace() -> str:
    """Where acm-lite keeps its own records (see ``SYSTEM_NAMESPACE``)."""
    return _chosen.get("name") or set_system_namespace(None)


def own_namespaces() -> frozenset[str]:
    """Namespaces holding acm-lite's own records (status, inventories, the leader Lease): the
    system namespace and the daemon's own (``$ACM_LITE_NAMESPACE``). A source may not declare
    them, and a sync never deletes them."""
    return frozenset(n for n in (system_namespace(), os.environ.get(NAMESPACE_ENV)) if n)


def reconciler_name(namespace: str, name: str) -> str:
    """A RepoSync's sync name, as Config Sync names its reconciler: ``ns-reconciler-<namespace>``
    for the RepoSync ``repo-sync``, ``ns-reconciler-<namespace>-<name>-<len(name)>`` for another.
    It names the ServiceAccount the sync runs as, its labels, inventory and records."""
    if name == DEFAULT_REPO_SYNC:
        return f"{RECONCILER_PREFIX}-{namespace}"
    return f"{RECONCILER_PREFIX}-{namespace}-{name}-{len(name)}"


def service_account_user(namespace: str, name: str) -> str:
    """The user name of a ServiceAccount, as impersonation names it."""
    return f"system:serviceaccount:{namespace}:{name}"
