"""A small, thread-safe REST client for one cluster.

The official client loads the configuration (kubeconfig contexts, client certificates, bearer
tokens, exec credential plugins, in-cluster service accounts); requests go straight through the
lean ``transport`` (watches, proxies and addresses it does not speak through one urllib3 pool),
sized for concurrent applies, with no client-side rate limit (the API server's priority and
fairness protects it). API errors become acm-lite's coded errors.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes.config import incluster_config, kube_config
from kubernetes.config.config_exception import ConfigException

from acm_lite import api, errors
from acm_lite.cluster.transport import TLSSettings, Transport, TransportError
from acm_lite.errors import AcmError

MAX_CONNECTIONS = 32
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
TIMEOUT_VARIABLE = "ACM_LITE_REQUEST_TIMEOUT"  # seconds: both timeouts, for slow or test setups
BREAKER_THRESHOLD = 3
MAX_WATCH_EVENT = 16 << 20  # bytes of one watch event: etcd holds objects of at most 1.5 MiB
MAX_ERROR_BODY = 1 << 16  # bytes of a refused watch's answer that are read


def _timeouts() -> tuple[float, float]:
    """Connect and read timeouts: the defaults, or $ACM_LITE_REQUEST_TIMEOUT for both."""
    value = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        seconds = 0.0
    if seconds > 0:
        return min(seconds, CONNECT_TIMEOUT), seconds
    return CONNECT_TIMEOUT, READ_TIMEOUT


def _ignore(_position: int, _outcome: ApiError | AcmError | None) -> None:
    return None


class Call(NamedTuple):
    """One request for ``Cluster.request_many``."""

    method: str
    path: str
    query: dict[str, Any] | None = None
    body: Any = None
    content_type: str | None = None


@dataclass
class ApiError(Exception):
    """A non-2xx answer: its status, reason and message, and the coded error it amounts to. Not
    frozen: Python sets ``__traceback__`` on an exception thrown into a generator (a
    ``contextmanager``), which a frozen dataclass refuses, hiding the real error."""

    status: int
    reason: str
    message: str
    __hash__ = Exception.__hash__  # by identity, as any exception

    def to_acm(self, subject: str | None = None) -> AcmError:
        if self.status == 409 and _denied_as_conflict(self.message):
            code = errors.MANAGEMENT_CONFLICT  # the admission webhook: another sync owns it
        elif self.status == 401:
            code = errors.CREDENTIALS_REJECTED
        elif self.status == 403:
            code = errors.INSUFFICIENT_PERMISSION
        elif self.status >= 500 or self.status in (0, 429):
            code = errors.API_SERVER_ERROR
        else:
            code = errors.RESOURCE_ERROR
        return AcmError(code, f"{self.reason or self.status}: {self.message}", subject=subject)


class Client(Protocol):
    """What the stages that read and write objects need of a cluster: one request, and a batch
    of them sent side by side. ``Cluster`` is the real one; tests pass fakes that record."""

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        decode: bool = True,
    ) -> Any:
        """One request; its decoded JSON answer, or ApiError / a transient AcmError."""
        ...

    def request_many(
        self,
        calls: Sequence[Call],
        width: int,
        on_answer: Callable[[int, ApiError | AcmError | None], None] = ...,
    ) -> list[ApiError | AcmError | None]:
        """``calls``, at most ``width`` at a time; for each, None or its error (see
        ``Cluster.request_many``)."""
        ...


def load_configuration(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    content: bytes | None = None,
    origin: str = "",
) -> k8s_client.Configuration:
    """Usual resolution: an explicit file, else $KUBECONFIG or ~/.kube/config, else in-cluster.
    ``content`` is a kubeconfig already in memory (one kept in a Secret), read from there rather
    than from a copy on disk; ``origin`` names it in errors. (The official client still keeps the
    certificates a kubeconfig embeds in temporary files of its own: one per certificate, removed
    at exit.)"""
    cfg = k8s_client.Configuration()
    try:
        default = Path(os.path.expanduser("~/.kube/config"))
        if content is not None:
            _load_kubeconfig(io.StringIO(content.decode()), context, cfg)
        elif kubeconfig or os.environ.get("KUBECONFIG") or default.exists():
            _load_kubeconfig(kubeconfig or os.environ.get("KUBECONFIG") or str(default), context, cfg)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            loader = incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=os.environ.get(
                    "ACM_LITE_SERVICEACCOUNT_TOKEN", incluster_config.SERVICE_TOKEN_FILENAME
                ),
                cert_filename=os.environ.get(
                    "ACM_LITE_SERVICEACCOUNT_CA", incluster_config.SERVICE_CERT_FILENAME
                ),
            )
            loader.load_and_set(cfg)  # type: ignore[no-untyped-call]
        else:
            raise ConfigException("no kubeconfig found and not running in a cluster")
    except (ConfigException, OSError, ValueError, TypeError) as e:
        where = (
            origin
            if content is not None
            else (kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
        )
        raise AcmError(
            errors.KUBECONFIG_ERROR,
            f"cannot load cluster configuration: {e}",
            path=where,
            hint="check --kubeconfig and --context",
        ) from e
    return cfg


def _load_kubeconfig(source: str | io.StringIO, context: str | None, cfg: k8s_client.Configuration) -> None:
    """Fill ``cfg`` from a kubeconfig (a file's path, or a stream of its text) at ``context``."""
    loader = kube_config._get_kube_config_loader(  # type: ignore[no-untyped-call]
        filename=source, active_context=context, persist_config=False
    )
    loader.load_and_set(cfg)
    user = getattr(loader, "_user", None)
    if user is not None and "exec" in user and not cfg.api_key:
        # the official client only logs a failing credential plugin; fail here instead
        command = user["exec"].safe_get("command") if hasattr(user["exec"], "safe_get") else "the exec plugin"
        raise ConfigException(f"credential plugin {command!r} produced no credentials")


class Breaker:
    """Consecutive transport failures (timeouts, refused or reset connections) to one API server.

    Once ``threshold`` requests in a row failed, the server is taken as down: further requests
    fail at once with one coded error instead of each waiting out its own timeout (a hung
    server would otherwise stretch a pass of thousands of objects to hours). ``reset`` (a new
    pass) or ``cooldown`` seconds later, requests go out again. Counted without a lock: a lost
    update only moves the trip by one request."""

    def __init__(self, threshold: int = BREAKER_THRESHOLD, cooldown: float = 30.0):
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.last_error = ""
        self.opened_at: float | None = None

    @property
    def open(self) -> bool:
        opened = self.opened_at
        if opened is None:
            return False
        if time.monotonic() - opened < self.cooldown:
            return True
        self.opened_at, self.failures = None, self.threshold - 1  # one more failure re-opens
        return False

    def success(self) -> None:
        self.failures = 0

    def failure(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.failures >= self.threshold and self.opened_at is None:
            self.opened_at = time.monotonic()

    def reset(self) -> None:
        self.failures, self.opened_at, self.last_error = 0, None, ""


class Cluster:
    """One API server. Counts requests by verb, so tests and benchmarks can check writes.

    ``deadline`` (a time.monotonic() value, set by a pass) refuses requests past it; the
    ``breaker`` refuses them while the server is down."""

    def __init__(
        self,
        cfg: k8s_client.Configuration,
        name: str = "",
        *,
        timeouts: tuple[float, float] | None = None,
        impersonate: str | None = None,
    ):
        self.cfg = cfg
        self.name = name
        # every request acts as this user (``Impersonate-User``): the API server authorizes it
        # as that user, provided the credentials may impersonate it
        self.impersonate = impersonate
        self.host = cfg.host.rstrip("/")
        self.requests: Counter[str] = Counter()
        self.breaker = Breaker()
        self.deadline: float | None = None
        # called before every request that is not a GET; raises to refuse it (a replica of a
        # sharded fleet that no longer holds the cluster's Lease writes nothing more)
        self.write_gate: Callable[[], None] | None = None
        self._lock = threading.Lock()
        connect_timeout, read_timeout = timeouts or _timeouts()
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        pool_args: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": MAX_CONNECTIONS,
            "block": True,
            "timeout": urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            "retries": False,
            "cert_reqs": "CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
            "ca_certs": cfg.ssl_ca_cert,
            "cert_file": cfg.cert_file,
            "key_file": cfg.key_file,
        }
        if cfg.assert_hostname is not None:
            pool_args["assert_hostname"] = cfg.assert_hostname
        if getattr(cfg, "tls_server_name", None):
            pool_args["server_hostname"] = cfg.tls_server_name
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(cfg.proxy, **pool_args) if cfg.proxy else urllib3.PoolManager(**pool_args)
        )
        # plain requests take the lean transport; watches, proxied clusters and addresses it
        # does not speak stay with urllib3
        self._transport: Transport | None = None
        if not cfg.proxy:
            with contextlib.suppress(ValueError):
                self._transport = Transport(
                    self.host,
                    _tls_settings(cfg),
                    max_connections=MAX_CONNECTIONS,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                )

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        name: str = "",
        *,
        content: bytes | None = None,
        origin: str = "",
    ) -> Cluster:
        """The cluster a kubeconfig (see ``load_configuration``) names."""
        return cls(
            load_configuration(kubeconfig, context, content=content, origin=origin), name or context or ""
        )

    def as_user(self, user: str) -> Cluster:
        """The same API server and credentials, every request made as ``user`` (Kubernetes user
        impersonation, such as ``system:serviceaccount:NS:NAME``): what that user may not do is
        refused (403) whatever this client's own rights. A client of its own: its own
        connections, breaker and deadline."""
        if not user or any(c in user for c in "\r\n\0"):
            raise ValueError(f"cannot impersonate {user!r}")
        return Cluster(
            self.cfg, self.name, timeouts=(self._connect_timeout, self._read_timeout), impersonate=user
        )

    def _headers(self, content_type: str | None, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": "acm-lite"}
        if self.impersonate:
            headers["Impersonate-User"] = self.impersonate
        if content_type:
            headers["Content-Type"] = content_type
        # the official client keeps bearer tokens (kubeconfig tokens, exec plugins, in-cluster
        # service accounts) under "BearerToken", prefix included; asking refreshes expired ones
        token = self.cfg.get_api_key_with_prefix("BearerToken") or self.cfg.get_api_key_with_prefix(
            "authorization"
        )
        if token:
            headers["Authorization"] = token
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        decode: bool = True,
    ) -> Any:
        """Send one request; the decoded JSON answer, or ApiError / a transient AcmError."""
        self._admit()
        target, data, headers = self._prepare(Call(method, path, query, body, content_type), accept)
        status, payload = self._send(method, self.host + target, data, headers)
        if status >= 400:
            raise _api_error(status, payload)
        return json.loads(payload) if payload and decode else None

    def request_many(
        self,
        calls: Sequence[Call],
        width: int,
        on_answer: Callable[[int, ApiError | AcmError | None], None] = _ignore,
    ) -> list[ApiError | AcmError | None]:
        """Send ``calls``, at most ``width`` at a time; for each, in order, None once it
        succeeded (answers are not decoded) or its error: an ApiError for an answer of 400 or
        more, a transient AcmError when the API server could not be reached. ``on_answer``
        hears of each (its position, the same value) as it arrives, in the calling thread.

        Once the breaker opens (the server is down) or the deadline passes, no further call is
        sent and the coded error is raised: the calls not answered by then were not made.

        One thread drives every connection of the lean transport; the urllib3 pool (proxies,
        unusual addresses) falls back to a thread per connection."""
        outcomes: list[ApiError | AcmError | None] = [None] * len(calls)
        if self._transport is None:
            self._many_in_threads(calls, width, on_answer, outcomes)
        else:
            self._many_in_one_thread(self._transport, calls, width, on_answer, outcomes)
        if self.breaker.opened_at is not None:
            raise self._tripped()
        return outcomes

    def _many_in_threads(
        self,
        calls: Sequence[Call],
        width: int,
        on_answer: Callable[[int, ApiError | AcmError | None], None],
        outcomes: list[ApiError | AcmError | None],
    ) -> None:
        def one(call: Call) -> ApiError | AcmError | None:
            try:
                self.request(
                    call.method,
                    call.path,
                    query=call.query,
                    body=call.body,
                    content_type=call.content_type,
                    decode=False,
                )
            except (ApiError, AcmError) as e:
                return e
            return None

        with ThreadPoolExecutor(max_workers=max(1, width)) as pool:
            futures = {pool.submit(one, call): position for position, call in enumerate(calls)}
            for future in as_completed(futures):
                position = futures[future]
                outcomes[position] = future.result()
                on_answer(position, outcomes[position])
                if self.breaker.opened_at is not None:  # the server is down: send no more
                    pool.shutdown(wait=True, cancel_futures=True)
                    return

    def _many_in_one_thread(
        self,
        transport: Transport,
        calls: Sequence[Call],
        width: int,
        on_answer: Callable[[int, ApiError | AcmError | None], None],
        outcomes: list[ApiError | AcmError | None],
    ) -> None:
        def lazily() -> Iterator[tuple[str, str, dict[str, str], bytes | None]]:
            for call in calls:  # encoded as connections free up, while others wait on answers
                self._admit()  # a refusal ends the exchange; requests in flight are dropped
                target, data, headers = self._prepare(call)
                yield call.method, target, headers, data

        breaker = self.breaker
        with contextlib.closing(transport.exchange(lazily(), max(1, width))) as answers:
            for position, answer in answers:
                if isinstance(answer, TransportError):
                    breaker.failure(str(answer))
                    outcomes[position] = self._unreachable(answer)
                else:
                    breaker.success()
                    if answer.status >= 400:
                        outcomes[position] = _api_error(answer.status, answer.data)
                on_answer(position, outcomes[position])
                if breaker.opened_at is not None:
                    return  # the server is down: what is still in flight is dropped

    def _admit(self) -> None:
        """Refuse a request that may not go out: the server is down, or the pass's time is up."""
        if self.breaker.opened_at is not None and self.breaker.open:
            raise self._tripped()
        deadline = self.deadline
        if deadline is not None and time.monotonic() > deadline:
            raise AcmError(
                errors.PASS_DEADLINE_EXCEEDED,
                f"the pass ran past its deadline; no further request was sent to {self.host}",
                hint="the next pass continues; a pass this long may need a longer --pass-timeout",
            )

    def _tripped(self) -> AcmError:
        breaker = self.breaker
        return AcmError(
            errors.API_SERVER_UNREACHABLE,
            f"the API server at {self.host} failed {breaker.failures} requests in a "
            f"row (last: {breaker.last_error}); no further request was sent",
            hint="is the cluster up and reachable? the next pass tries again",
        )

    def _prepare(
        self, call: Call, accept: str = "application/json"
    ) -> tuple[str, bytes | None, dict[str, str]]:
        """The path with its query, the encoded body and the headers of ``call``; counted."""
        if self.write_gate is not None and call.method not in ("GET", "HEAD"):
            self.write_gate()
        target = call.path
        if call.query:
            items = tuple(call.query.items())
            try:
                target += _query_string(items)
            except TypeError:  # a value that cannot be a cache key
                target += _query_string.__wrapped__(items)
        body, content_type = call.body, call.content_type
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode())
        )
        if data is not None and content_type is None:
            content_type = "application/json"
        with self._lock:
            self.requests[call.method] += 1
        return target, data, self._headers(content_type, accept)

    def _unreachable(self, error: Exception) -> AcmError:
        return AcmError(
            errors.API_SERVER_ERROR,
            f"cannot reach the API server at {self.host}: {type(error).__name__}: {error}",
            hint="is the cluster up and reachable?",
        )

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            if self._transport is not None:
                response = self._transport.request(method, url[len(self.host) :], headers, data)
                self.breaker.success()
                return response.status, response.data
            resp = self._pool.request(method, url, body=data, headers=headers)
            self.breaker.success()
            return resp.status, resp.data
        except (urllib3.exceptions.HTTPError, TransportError) as e:
            self.breaker.failure(f"{type(e).__name__}: {e}")
            raise self._unreachable(e) from e

    def watch(
        self,
        path: str,
        query: dict[str, Any],
        stop: threading.Event,
        opened: Callable[[], None] | None = None,
    ) -> Iterator[Any]:
        """Events of one watch request, until the server ends it or ``stop`` is set.

        With ``timeoutSeconds`` in ``query`` the server ends the watch by then; a watch silent
        for longer than that (and a margin) is broken (a hung server, a dropped route) and
        raises, rather than leaving its caller waiting forever. ``opened`` is called once the
        server has accepted the watch, before its first event (which may be long in coming)."""
        params = {k: v for k, v in {**query, "watch": "1"}.items() if v is not None}
        ends = params.get("timeoutSeconds")
        silence = float(ends) + min(30.0, self._read_timeout) if ends is not None else None
        url = f"{self.host}{path}?{urlencode(params)}"
        with self._lock:
            self.requests["WATCH"] += 1
        try:
            resp = self._pool.request(
                "GET",
                url,
                headers=self._headers(None, "application/json"),
                preload_content=False,
                timeout=urllib3.Timeout(connect=self._connect_timeout, read=silence),
            )
        except urllib3.exceptions.HTTPError as e:
            raise AcmError(errors.API_SERVER_ERROR, f"cannot watch {path}: {e}") from e
        try:
            if resp.status >= 400:
                raise _api_error(resp.status, resp.read(MAX_ERROR_BODY))
            if opened is not None:
                opened()
            buffer = b""
            for chunk in resp.stream(4096, decode_content=True):
                if stop.is_set():
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
                if len(buffer) > MAX_WATCH_EVENT:
                    raise AcmError(
                        errors.API_SERVER_ERROR,
                        f"watch of {path} broke: an event longer than {MAX_WATCH_EVENT} bytes",
                    )
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:  # ValueError: not JSON
            raise AcmError(errors.API_SERVER_ERROR, f"watch of {path} broke: {e}") from e
        finally:
            resp.release_conn()

    def request_text(self, path: str) -> str:
        """A plain-text endpoint such as /metrics."""
        self._admit()
        status, payload = self._send("GET", self.host + path, None, self._headers(None, "text/plain"))
        if status >= 400:
            raise _api_error(status, payload)
        return payload.decode()

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.requests.items() if verb != "GET")


@functools.lru_cache(maxsize=256)
def _query_string(items: tuple[tuple[str, Any], ...]) -> str:
    """``?`` and the encoded query, or nothing; the few queries a sync repeats thousands of
    times are encoded once."""
    params = [(k, v) for k, v in items if v is not None]
    return "?" + urlencode(params) if params else ""


def _tls_settings(cfg: k8s_client.Configuration) -> TLSSettings:
    server_hostname = getattr(cfg, "tls_server_name", None) or (
        cfg.assert_hostname if isinstance(cfg.assert_hostname, str) else None
    )
    return TLSSettings(
        verify=bool(cfg.verify_ssl),
        check_hostname=cfg.assert_hostname is not False,
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        server_hostname=server_hostname,
    )


def _denied_as_conflict(message: str) -> bool:
    """Whether acm-lite's admission webhook denied a write because another sync manages the
    object (KNV1060 in its message)."""
    denied = f'admission webhook "{api.ADMISSION_WEBHOOK}" denied the request: '
    return message.startswith(denied + errors.MANAGEMENT_CONFLICT.id)


def _api_error(status: int, data: bytes) -> ApiError:
    try:
        payload = json.loads(data)
        return ApiError(status, str(payload.get("reason", "")), str(payload.get("message", "")))
    except (ValueError, AttributeError):
        return ApiError(status, "", data.decode(errors="replace")[:500])
