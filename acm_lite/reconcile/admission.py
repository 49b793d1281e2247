"""`serve --admission-webhook`: drift prevented at admission, as Config Sync's webhook does.

At start the daemon learns its own identity (a ``SelfSubjectReview``), takes its certificate (the
Secret ``--admission-webhook-secret`` names, or one it generates and keeps in the system
namespace so replicas share it), serves the webhook over TLS on its own port, and server-side
applies a ``ValidatingWebhookConfiguration`` naming it: every group, version and resource on
CREATE, UPDATE and DELETE, only for objects carrying acm-lite's managed-by label, with the
failure policy ``--admission-webhook-failure-policy`` (Ignore by default, as Config Sync) and a
3-second timeout. A thread re-reads the certificate every ``check`` seconds: a generated one is
replaced once two thirds of its lifetime have passed (the caBundle then carries the new CA and
the old one while it is valid, so calls never fail on the change); a user's Secret is reloaded
when it changes. The decisions are ``admission_review``'s.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from acm_lite import api, errors, metadata
from acm_lite.apply import writes
from acm_lite.cluster.client import ApiError, Client
from acm_lite.devcluster import certs
from acm_lite.errors import AcmError
from acm_lite.reconcile import admission_review
from acm_lite.reconcile.httpserver import Answer, Request
from acm_lite.reconcile.tlsserver import TLSLimits, TLSServer
from acm_lite.status import store

log = logging.getLogger("acm_lite.admission")

PATH = "/admission"
GENERATED_SECRET = "acm-lite-admission-webhook-cert"
FAILURE_POLICIES = ("Ignore", "Fail")
TIMEOUT_SECONDS = 3  # Config Sync's: API calls that create chains of objects time out after 10s
DEFAULT_LIFETIME = 365 * 24 * 3600.0
_VWC_PATH = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
_REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


@dataclass(frozen=True)
class AdmissionOptions:
    address: tuple[str, int] = ("127.0.0.1", 8443)
    host: str = "127.0.0.1"  # in the clientConfig URL (a daemon outside the cluster)
    service: str | None = None  # a Service in front of the daemon's Pods (in the cluster)
    service_namespace: str | None = None  # default: the system namespace
    service_port: int = 443
    secret: str | None = None  # the user's kubernetes.io/tls Secret in the system namespace
    failure_policy: str = "Ignore"
    lifetime: float = DEFAULT_LIFETIME  # of a generated certificate, in seconds
    check: float = 0.0  # seconds between certificate checks (0: a sixth of the lifetime, <= 10m)
    limits: TLSLimits | None = None  # the server's bounds (default: TLSLimits())

    @property
    def interval(self) -> float:
        return self.check or max(1.0, min(self.lifetime / 6, 600.0))


@dataclass(frozen=True)
class Material:
    """A serving certificate with its key, and the CA bundle that verifies it (PEM)."""

    cert: bytes
    key: bytes
    ca_bundle: bytes


def _fail(message: str, hint: str = "") -> AcmError:
    return AcmError(errors.ADMISSION_WEBHOOK_FAILED, message, hint=hint or None)


def self_user(cluster: Client) -> str:
    """The username the API server knows this daemon by."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = cluster.request("POST", _REVIEW_PATH, body=body)
    except ApiError as e:
        raise _fail(
            f"cannot learn the daemon's own identity (SelfSubjectReview): {e.status} {e.message[:300]}",
            "the API server must be Kubernetes 1.28 or later, and the daemon allowed to create "
            "selfsubjectreviews",
        ) from e
    user = ((answer or {}).get("status") or {}).get("userInfo") or {}
    name = user.get("username")
    if not isinstance(name, str) or not name:
        raise _fail("the SelfSubjectReview answer names no user")
    return name


def context_for(material: Material) -> ssl.SSLContext:
    """A server TLS context for ``material``; a certificate and key that do not belong together
    are a ValueError. The PEM goes through a private directory that is removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="acm-lite-admission-") as folder:
        cert, key = Path(folder) / "tls.crt", Path(folder) / "tls.key"
        for path, data in ((cert, material.cert), (key, material.key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as e:
            raise ValueError(
                f"tls.crt and tls.key are not a certificate and its key ({e.__class__.__name__})"
            ) from e
    return context


def _certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise ValueError("tls.crt is not a PEM certificate") from e


def due(pem: bytes, hosts: list[str], now: dt.datetime | None = None) -> bool:
    """Whether a generated certificate must be replaced: two thirds of its lifetime gone, or it
    does not name every host the webhook is reached by."""
    cert = _certificate(pem)
    now = now or dt.datetime.now(dt.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now >= end - (end - start) / 3:
        return True
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    named = {str(v) for v in sans.get_values_for_type(x509.IPAddress)} | set(
        sans.get_values_for_type(x509.DNSName)
    )
    return not set(hosts) <= named


def _valid_cas(bundle: bytes, now: dt.datetime) -> bytes:
    """The certificates of a PEM bundle that have not expired."""
    try:
        found = x509.load_pem_x509_certificates(bundle)
    except ValueError:
        return b""
    from cryptography.hazmat.primitives import serialization

    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in found if c.not_valid_after_utc > now)


class AdmissionWebhook:
    """The webhook's server, certificate and registration, from ``start`` to ``stop``."""

    def __init__(self, cluster: Client, options: AdmissionOptions):
        self.cluster, self.options = cluster, options
        self.namespace = api.system_namespace()
        self.user = ""
        self.material: Material | None = None
        self.server: TLSServer | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="admission-certificate")

    @property
    def secret_name(self) -> str:
        return self.options.secret or GENERATED_SECRET

    @property
    def service_namespace(self) -> str:
        return self.options.service_namespace or self.namespace

    def hosts(self) -> list[str]:
        if self.options.service:
            name, ns = self.options.service, self.service_namespace
            return [f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local", name]
        return [self.options.host, "localhost"] if self.options.host != "localhost" else ["localhost"]

    def start(self) -> None:
        """Learn the identity, take the certificate, serve, register; a coded error when any
        step fails (nothing is left listening)."""
        self.user = self_user(self.cluster)
        self.material = self._take()
        try:
            self.server = TLSServer(
                self.options.address, context_for(self.material), self._handle, self.options.limits
            )
        except ValueError as e:
            raise _fail(f"Secret {self.namespace}/{self.secret_name}: {e}") from e
        try:
            self.register()
        except AcmError:
            self.server.shutdown()
            raise
        self._thread.start()
        log.info(
            "admission webhook serving",
            extra={"fields": {"address": "{}:{}".format(*self.server.server_address), "user": self.user}},
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(10)
        if self.server is not None:
            self.server.shutdown()

    def _handle(self, request: Request) -> Answer:
        if request.path != PATH:
            return Answer(404, b"not found\n")
        if request.method != "POST":
            return Answer(405, b"method not allowed\n")
        try:
            body, verdict = admission_review.review(request.body, self.user)
        except admission_review.MalformedReviewError as e:
            log.info("admission request malformed", extra={"fields": {"error": str(e)}})
            return Answer(400, f"{e}\n".encode())
        if not verdict.allowed:  # who tried to change what, for the operators
            log.info("admission denied", extra={"fields": {"code": verdict.code, "message": verdict.message}})
        return Answer(200, body, "application/json")

    # the certificate

    def _secret_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret_name}"

    def _read_secret(self) -> dict[str, Any] | None:
        try:
            found = self.cluster.request("GET", self._secret_path())
        except ApiError as e:
            if e.status == 404:
                return None
            raise _fail(
                f"cannot read Secret {self.namespace}/{self.secret_name}: {e.status} {e.message[:300]}"
            ) from e
        return found if isinstance(found, dict) else None

    def _material(self, secret: dict[str, Any]) -> Material:
        data = secret.get("data") or {}
        if not isinstance(data, dict):
            raise ValueError("data is not a map")

        def field(key: str) -> bytes:
            value = data.get(key)
            if not isinstance(value, str) or not value:
                return b""
            try:
                return base64.b64decode(value, validate=True)
            except ValueError as e:
                raise ValueError(f"{key} is not base64") from e

        cert, key, ca = field("tls.crt"), field("tls.key"), field("ca.crt")
        if not cert or not key:
            raise ValueError("tls.crt or tls.key is missing")
        _certificate(cert)
        return Material(cert, key, ca or cert)

    def _take(self) -> Material:
        """The certificate to serve now: the user's Secret, or the generated one (made or
        replaced when due)."""
        where = f"Secret {self.namespace}/{self.secret_name}"
        secret = self._read_secret()
        if self.options.secret:
            if secret is None:
                raise _fail(f"{where} (--admission-webhook-secret) does not exist")
            try:
                return self._material(secret)
            except ValueError as e:
                raise _fail(
                    f"{where}: {e}", "give a kubernetes.io/tls Secret with tls.crt and tls.key"
                ) from e
        current: Material | None = None
        if secret is not None:
            try:
                current = self._material(secret)
                if not due(current.cert, self.hosts()):
                    return current
            except ValueError as e:  # unusable: replaced with a fresh one
                log.warning(
                    "generated certificate unusable, replacing it", extra={"fields": {"error": str(e)}}
                )
        return self._generate(secret, current)

    def _generate(self, secret: dict[str, Any] | None, current: Material | None) -> Material:
        now = dt.datetime.now(dt.UTC)
        ca, serving = certs.serving_pair(
            "acm-lite-admission-webhook", self.hosts(), dt.timedelta(seconds=self.options.lifetime)
        )
        old_cas = _valid_cas(current.ca_bundle, now) if current else b""
        fresh = Material(serving.cert, serving.key, ca.cert + old_cas)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": self.secret_name,
                "namespace": self.namespace,
                "labels": {metadata.PART_OF_LABEL: metadata.PART_OF},
            },
            "data": {
                "tls.crt": base64.b64encode(fresh.cert).decode(),
                "tls.key": base64.b64encode(fresh.key).decode(),
                "ca.crt": base64.b64encode(fresh.ca_bundle).decode(),
            },
        }
        try:
            if secret is None:
                self._create_secret(body)
            else:  # replaced only if no other replica replaced it first
                body["metadata"]["resourceVersion"] = (secret.get("metadata") or {}).get("resourceVersion")
                self.cluster.request("PUT", self._secret_path(), body=body)
        except ApiError as e:
            if e.status == 409:  # another replica wrote it first: serve theirs
                theirs = self._read_secret()
                if theirs is not None:
                    try:
                        return self._material(theirs)
                    except ValueError:
                        pass
            raise _fail(
                f"cannot write Secret {self.namespace}/{self.secret_name}: {e.status} {e.message[:300]}"
            ) from e
        log.info("admission webhook certificate generated", extra={"fields": {"secret": self.secret_name}})
        return fresh

    def _create_secret(self, body: dict[str, Any]) -> None:
        """Create the Secret; on a fresh cluster the system namespace (and acm-lite's CRDs, as
        a pass installs them) first."""
        path = f"/api/v1/namespaces/{self.namespace}/secrets"
        try:
            self.cluster.request("POST", path, body=body)
        except ApiError as e:
            if e.status != 404:
                raise
            store.install(self.cluster)
            self.cluster.request("POST", path, body=body)

    # the registration

    def configuration(self) -> dict[str, Any]:
        """The ValidatingWebhookConfiguration naming this webhook."""
        assert self.material is not None
        client: dict[str, Any] = {"caBundle": base64.b64encode(self.material.ca_bundle).decode()}
        if self.options.service:
            client["service"] = {
                "namespace": self.service_namespace,
                "name": self.options.service,
                "path": PATH,
                "port": self.options.service_port,
            }
        else:
            assert self.server is not None
            host = self.options.host
            shown = f"[{host}]" if ":" in host else host
            client["url"] = f"https://{shown}:{self.server.server_address[1]}{PATH}"
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": api.ADMISSION_WEBHOOK, "labels": {metadata.PART_OF_LABEL: metadata.PART_OF}},
            "webhooks": [
                {
                    "name": api.ADMISSION_WEBHOOK,
                    "rules": [
                        {
                            "apiGroups": ["*"],
                            "apiVersions": ["*"],
                            "resources": ["*"],
                            "operations": ["CREATE", "UPDATE", "DELETE"],
                            "scope": "*",
                        }
                    ],
                    "objectSelector": {"matchLabels": {metadata.MANAGED_BY_LABEL: metadata.MANAGED_BY}},
                    "matchPolicy": "Equivalent",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": TIMEOUT_SECONDS,
                    "failurePolicy": self.options.failure_policy,
                    "clientConfig": client,
                }
            ],
        }

    def register(self) -> None:
        call = writes.server_side_apply(f"{_VWC_PATH}/{api.ADMISSION_WEBHOOK}", self.configuration())
        try:
            writes.send(self.cluster, call)
        except ApiError as e:
            what = f"ValidatingWebhookConfiguration {api.ADMISSION_WEBHOOK}"
            raise _fail(
                f"cannot apply {what}: {e.status} {e.message[:300]}",
                "the daemon needs to create and patch validatingwebhookconfigurations (the chart's "
                "RBAC grants it)",
            ) from e

    # rotation

    def _loop(self) -> None:
        while not self._stop.wait(self.options.interval):
            try:
                self.refresh()
            except AcmError as e:
                log.warning(
                    "admission webhook certificate check failed", extra={"fields": {"error": e.render()}}
                )
            except Exception:  # a bug must not end rotation: log it, try again next time
                log.exception("admission webhook certificate check raised")

    def refresh(self) -> None:
        """Take the certificate again; serve and register it when it changed."""
        material = self._take()
        if material == self.material:
            return
        try:
            context = context_for(material)
        except ValueError as e:
            raise _fail(f"Secret {self.namespace}/{self.secret_name}: {e}") from e
        self.material = material
        self.register()  # the new CA is trusted before the new certificate is served, and the
        self._stop.wait(min(2.0, self.options.lifetime / 20))  # API server given a moment to see it
        assert self.server is not None
        self.server.set_context(context)
        log.info("admission webhook certificate rotated", extra={"fields": {"secret": self.secret_name}})
