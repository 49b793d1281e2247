"""HTTP(S) downloads for Helm repositories and OCI registries: bounded, coded, and careful with
credentials.

Every body is read up to a limit (a server announcing or sending more is refused, ``ACM1105``);
an answer is turned into a coded error naming what was asked for, never the credentials: 401 and
403 are ``ACM1103`` and 404 ``ACM1104`` (permanent), a timeout, a refused connection, 429 or a 5xx
``KNV2004`` (transient, retried by the next poll). Redirects are followed by hand, at most five,
and credentials go only to the host they were given for, and over plain http only when allowed
(``ACM_LITE_SOURCE_ALLOW_HTTP=1``, for trusted networks and loopback tests).
"""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import urllib3

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source.auth import strip_userinfo

ALLOW_HTTP_ENV = "ACM_LITE_SOURCE_ALLOW_HTTP"
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = float(os.environ.get("ACM_LITE_SOURCE_TIMEOUT", "120"))
MAX_REDIRECTS = 5
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Credentials:
    """A user name and password (basic auth, or a registry's token exchange) or a bearer token.
    ``repr`` hides the secrets and ``scrub`` removes them from text."""

    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    allow_http: bool = False

    @classmethod
    def from_env(cls, prefix: str) -> Credentials | None:
        """``ACM_LITE_<prefix>_USERNAME`` with ``_PASSWORD`` (or ``_PASSWORD_FILE``), or
        ``_TOKEN`` (or ``_TOKEN_FILE``): how a Secret reaches the daemon; never a flag."""
        base = f"ACM_LITE_{prefix}_"

        def value(name: str) -> str:
            direct = os.environ.get(base + name)
            if direct:
                return direct
            path = os.environ.get(base + name + "_FILE")
            if not path:
                return ""
            try:
                return Path(path).read_text().strip()
            except OSError as e:
                raise AcmError(
                    errors.SOURCE_AUTH_FAILED,
                    f"cannot read {base}{name}_FILE ({path}): {e.strerror}",
                    hint="point it at a readable file holding only the secret",
                ) from None

        username, password, token = os.environ.get(base + "USERNAME", ""), value("PASSWORD"), value("TOKEN")
        if not (password or token):
            return None
        allow = os.environ.get(ALLOW_HTTP_ENV, "").strip().lower() in ("1", "true", "yes")
        return cls(username=username, password=password, token=token, allow_http=allow)

    def header(self) -> str:
        if self.token:
            return f"Bearer {self.token}"
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def scrub(self, text: str) -> str:
        for secret in (self.password, self.token):
            if secret:
                text = text.replace(secret, "***")
        if self.password:
            text = text.replace(self.header().split(" ", 1)[1], "***")
        return strip_userinfo(text)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str  # after redirects


class Client:
    """One connection pool for one source; ``ca_file`` adds a CA (a self-signed registry)."""

    def __init__(self, what: str, *, ca_file: Path | None = None, credentials: Credentials | None = None):
        self.what = what  # how messages name the source (no credentials)
        self.credentials = credentials
        kwargs: dict[str, object] = {}
        if ca_file is not None:
            if not ca_file.is_file():
                raise AcmError(
                    errors.PATH_NOT_FOUND, f"CA file {ca_file} does not exist", hint="check the CA file"
                )
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=str(ca_file))
            kwargs["ssl_context"] = context
        self.pool = urllib3.PoolManager(
            retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            **kwargs,  # type: ignore[arg-type]
        )

    def may_send(self, url: str, origin: str) -> bool:
        """Credentials go to ``origin``'s host only, and over http only when allowed."""
        parts, home = urlsplit(url), urlsplit(origin)
        if parts.netloc.rpartition("@")[2] != home.netloc.rpartition("@")[2]:
            return False
        return parts.scheme == "https" or bool(self.credentials and self.credentials.allow_http)

    def get(
        self,
        url: str,
        *,
        limit: int,
        headers: dict[str, str] | None = None,
        authorization: str | None = None,
        origin: str | None = None,
        method: str = "GET",
        body: bytes | None = None,
        ok: tuple[int, ...] = (200,),
        about: str | None = None,
    ) -> Response:
        """``url``'s answer, its body at most ``limit`` bytes; ``authorization`` (a header value)
        goes only where ``may_send`` allows. Statuses outside ``ok`` and 401 raise coded errors
        (a 401 is returned when ``401`` is in ``ok``, for a registry's challenge)."""
        origin = origin or url
        about = about or self.what
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if authorization and self.may_send(url, origin):
                sent["Authorization"] = authorization
            try:
                resp = self.pool.request(
                    method, url, headers=sent, body=body, preload_content=False, redirect=False
                )
            except urllib3.exceptions.HTTPError as e:
                raise AcmError(
                    errors.SOURCE_ERROR,
                    f"cannot reach {about}: {self._scrub(str(e))[-300:]}",
                    hint="check the URL, the network and (for https) the CA file",
                ) from None
            try:
                if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                    url = urljoin(url, resp.headers["location"])
                    if resp.status == 303:
                        method, body = "GET", None
                    continue
                if resp.status not in ok:
                    raise status_error(resp.status, about, self._scrub(_peek(resp)))
                data = b"" if method == "HEAD" else _read(resp, limit, about)
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data, url)
            finally:
                resp.release_conn()
        raise AcmError(errors.SOURCE_ERROR, f"{about}: more than {MAX_REDIRECTS} redirects")

    def _scrub(self, text: str) -> str:
        return self.credentials.scrub(text) if self.credentials else strip_userinfo(text)


def status_error(status: int, about: str, detail: str = "") -> AcmError:
    """The coded error for an HTTP answer: permanent for 401/403/404 and other refusals,
    transient for 429 and 5xx."""
    said = f" ({detail.strip()[:200]})" if detail.strip() else ""
    if status in (401, 403):
        return AcmError(
            errors.SOURCE_AUTH_FAILED,
            f"{about} refused the credentials (HTTP {status}){said}",
            hint="check the user name and password or token, and their access",
        )
    if status == 404:
        return AcmError(
            errors.ARTIFACT_NOT_FOUND, f"{about} does not exist (HTTP 404)", hint="check the name"
        )
    if status == 429 or status >= 500:
        return AcmError(
            errors.SOURCE_ERROR, f"{about} answered HTTP {status}{said}", hint="retried with the next poll"
        )
    return AcmError(errors.ARTIFACT_NOT_FOUND, f"{about} answered HTTP {status}{said}", hint="check the name")


def _peek(resp: urllib3.BaseHTTPResponse) -> str:
    try:
        return resp.read(512, decode_content=False).decode("utf-8", "replace")
    except Exception:
        return ""


def _read(resp: urllib3.BaseHTTPResponse, limit: int, about: str) -> bytes:
    announced = resp.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > limit:
        raise too_large(about, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = resp.read(_CHUNK, decode_content=True)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise too_large(about, limit)
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as e:
        raise AcmError(errors.SOURCE_ERROR, f"reading {about} failed: {e}") from None
    return b"".join(chunks)


def too_large(about: str, limit: int) -> AcmError:
    return AcmError(
        errors.ARTIFACT_REJECTED,
        f"{about} is larger than {_size(limit)}",
        hint="raise the limit only for a source you trust",
    )


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
