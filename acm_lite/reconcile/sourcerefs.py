"""What a Helm or OCI source reads from the cluster before it is fetched, as Config Sync's
reconciler does: the ConfigMaps ``spec.helm.valuesFileRefs`` names and the Secret of
``spec.helm.auth: token`` (``spec.helm.secretRef``), both in the namespace the RootSyncs live in.

They are read at every fetch (every poll), so a ConfigMap replaced with new values is rendered
at the next poll: its text is part of the chart's commit. A missing ConfigMap, one that is not
immutable (Config Sync requires it) or lacks the key, is ``KNV1061`` with Config Sync's message;
a missing Secret or key is ``KNV1061`` naming it, never its value. Each values file is at most
1 MiB (a ConfigMap's own limit) and all of them 8 MiB.

A Git source with ``spec.git.auth: token`` or ``ssh`` reads the Secret ``spec.git.secretRef``
names from the same namespace, with Config Sync's key names: ``username`` and ``token`` for a
token, ``ssh`` (the private key) and optionally ``known_hosts`` for SSH. The key files live in a
private directory for the one fetch, and are removed after it.

Auth ``none`` uses the credentials of the environment (``ACM_LITE_HELM_*``, ``ACM_LITE_OCI_*``)
when there are some. The cloud identities (``gcenode``, ``gcpserviceaccount``,
``k8sserviceaccount``) are refused (``ACM1107``, naming the mode): acm-lite runs on clusters of
any provider and obtains no cloud token.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from acm_lite import api, errors
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError
from acm_lite.source import helm as helm_source
from acm_lite.source.auth import GitAuth
from acm_lite.source.helm import HelmSpec, invalid_sync
from acm_lite.source.oci import OciSpec
from acm_lite.source.transfer import ALLOW_HTTP_ENV, Credentials

MAX_VALUES_FILE = 1 << 20
MAX_VALUES_TOTAL = 8 << 20
MAX_SECRET_VALUE = 64 << 10
KIND = "RootSync"


@dataclass(frozen=True)
class HelmInputs:
    credentials: Credentials | None
    ref_values: tuple[tuple[str, str], ...] = ()


def _namespace() -> str:
    """Where the RootSyncs live (``status.store`` keeps them there)."""
    return api.system_namespace()


def helm_inputs(
    spec: HelmSpec, cluster: Client | None, *, tenant: str | None = None, namespace: str | None = None
) -> HelmInputs:
    """The credentials and the referenced values of the chart ``spec`` names. ``tenant`` is the
    namespace of a namespace-limited sync, which (like Config Sync's RepoSync) has no
    ``deployNamespace``; ``namespace`` is where the ConfigMaps and Secret are (a RepoSync's own,
    default the system namespace)."""
    spec.check()
    if tenant and spec.deploy_namespace:
        raise invalid_sync(
            "RepoSyncs do not support spec.helm.deployNamespace (a tenant sync stays in its namespace)"
        )
    namespace = namespace or _namespace()
    refs: list[tuple[str, str]] = []
    if spec.values_file_refs:
        client = _needs(cluster, "spec.helm.valuesFileRefs")
        total = 0
        for ref in spec.values_file_refs:
            text = _values_file(client, namespace, ref.name, ref.data_key or helm_source.DEFAULT_VALUES_KEY)
            total += len(text.encode())
            if total > MAX_VALUES_TOTAL:
                raise invalid_sync(
                    f"the ConfigMaps of spec.helm.valuesFileRefs hold more than {MAX_VALUES_TOTAL >> 20} MiB"
                )
            refs.append((f"ConfigMap {namespace}/{ref.name} key {ref.data_key}", text))
    return HelmInputs(_helm_credentials(spec, cluster, namespace), tuple(refs))


def oci_credentials(spec: OciSpec) -> Credentials | None:
    spec.check()
    _refuse_cloud("oci", spec.auth)
    return Credentials.from_env("OCI")


def _refuse_cloud(source: str, auth: str) -> None:
    if auth in helm_source.CLOUD_AUTH:
        raise AcmError(
            errors.SOURCE_AUTH_UNSUPPORTED,
            f"spec.{source}.auth {auth!r} asks for a cloud identity, which acm-lite does not obtain",
            hint=(
                "use auth: token with a secretRef (Helm), or auth: none with credentials from "
                f"ACM_LITE_{source.upper()}_USERNAME/_PASSWORD (or _TOKEN)"
            ),
        )


def _needs(cluster: Client | None, field: str) -> Client:
    if cluster is None:
        raise invalid_sync(f"{field} is read from a cluster, and this command has none")
    return cluster


def _get(client: Client, path: str, subject: str) -> dict[str, object] | None:
    try:
        found = client.request("GET", path)
    except ApiError as e:
        if e.status == 404:
            return None
        raise e.to_acm(subject) from None
    return found if isinstance(found, dict) else None


def _values_file(client: Client, namespace: str, name: str, key: str) -> str:
    prefix = f"{KIND}s must reference valid ConfigMaps in spec.helm.valuesFileRefs"
    found = _get(client, f"/api/v1/namespaces/{namespace}/configmaps/{name}", f"ConfigMap {namespace}/{name}")
    if found is None:
        raise invalid_sync(f'{prefix}: configmaps "{name}" not found (namespace {namespace})')
    if found.get("immutable") is not True:
        raise invalid_sync(f'{prefix}: ConfigMap "{name}" in namespace "{namespace}" is not immutable')
    data = found.get("data")
    text = data.get(key) if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise invalid_sync(
            f'{prefix}: ConfigMap "{name}" in namespace "{namespace}" does not have data key "{key}"'
        )
    if len(text.encode()) > MAX_VALUES_FILE:
        raise invalid_sync(
            f'{prefix}: ConfigMap "{name}" in namespace "{namespace}" key "{key}" is larger than 1 MiB'
        )
    return text


GIT_AUTH = ("none", "token", "ssh")


def git_auth(
    auth: str, secret_ref: str, cluster: Client | None, keys: Path, namespace: str | None = None
) -> GitAuth:
    """The Git credentials of ``spec.git.auth`` ``token`` or ``ssh`` from the Secret named by
    ``spec.git.secretRef`` (key files written under ``keys``, a private directory the caller
    removes), in ``namespace`` (a RepoSync's own; default the system namespace)."""
    client = _needs(cluster, "spec.git.secretRef")
    namespace = namespace or _namespace()
    about = f"Secret {namespace}/{secret_ref} of spec.git.secretRef"
    found = _get(
        client, f"/api/v1/namespaces/{namespace}/secrets/{secret_ref}", f"Secret {namespace}/{secret_ref}"
    )
    if found is None:
        raise invalid_sync(f"{about} does not exist")
    data = found.get("data")
    data = data if isinstance(data, dict) else {}
    allow = GitAuth.from_env().allow_http  # ACM_LITE_GIT_ALLOW_HTTP, as for a token from the environment
    if auth == "token":
        return GitAuth(
            token=_secret_text(data, "token", about),
            username=_secret_text(data, "username", about),
            allow_http=allow,
        )
    key = keys / "ssh"
    key.touch(mode=0o600)
    key.write_text(_secret_text(data, "ssh", about).rstrip("\n") + "\n")
    hosts = None
    if "known_hosts" in data:
        hosts = keys / "known_hosts"
        hosts.write_text(_secret_text(data, "known_hosts", about))
    return GitAuth(ssh_key=key, known_hosts=hosts, allow_http=allow)


def _secret_text(data: dict[str, object], key: str, about: str) -> str:
    """One key of a Secret's data, decoded (never shown: only its name is)."""
    raw = data.get(key)
    if not isinstance(raw, str) or not raw or len(raw) > MAX_SECRET_VALUE:
        raise invalid_sync(f"{about} has no usable key {key!r}")
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_sync(f"{about}: the key {key!r} is not base64 of UTF-8 text") from None


def _helm_credentials(spec: HelmSpec, cluster: Client | None, namespace: str) -> Credentials | None:
    _refuse_cloud("helm", spec.auth)
    if spec.auth != helm_source.AUTH_TOKEN:
        return Credentials.from_env("HELM")
    client = _needs(cluster, "spec.helm.secretRef")
    name = spec.secret_ref
    about = f"Secret {namespace}/{name} of spec.helm.secretRef"
    found = _get(client, f"/api/v1/namespaces/{namespace}/secrets/{name}", f"Secret {namespace}/{name}")
    if found is None:
        raise invalid_sync(f"{about} does not exist")
    data = found.get("data")
    values: dict[str, str] = {}
    for key in ("username", "password"):
        raw = data.get(key) if isinstance(data, dict) else None
        if not isinstance(raw, str) or len(raw) > MAX_SECRET_VALUE:
            raise invalid_sync(f"{about} has no usable key {key!r}")
        try:
            values[key] = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise invalid_sync(f"{about}: the key {key!r} is not base64 of UTF-8 text") from None
    allow = os.environ.get(ALLOW_HTTP_ENV, "").strip().lower() in ("1", "true", "yes")
    return Credentials(username=values["username"], password=values["password"], allow_http=allow)
