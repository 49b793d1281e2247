"""Prometheus metrics of the daemon, named by Prometheus conventions, and the HTTP endpoints
(/healthz, /readyz, /metrics) that serve them."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sync_duration = Histogram("acm_lite_sync_duration_seconds",
                                       "Duration of one pipeline pass.", ["sync"], registry=r,
                                       buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.last_success = Gauge("acm_lite_last_sync_success_timestamp_seconds",
                                  "Unix time of the last pass without errors.", ["sync"],
                                  registry=r)
        self.objects = Counter("acm_lite_objects_total", "Objects handled, by outcome.",
                               ["sync", "outcome"], registry=r)
        self.errors = Counter("acm_lite_errors_total", "Problems found, by code.",
                              ["sync", "code"], registry=r)
        self.drift_repairs = Counter("acm_lite_drift_repairs_total",
                                     "Managed objects re-applied after someone changed them.",
                                     ["sync"], registry=r)
        self.fights = Counter("acm_lite_fights_total",
                              "Objects another controller keeps reverting (repair paused).",
                              ["sync"], registry=r)
        self.git_fetch = Histogram("acm_lite_git_fetch_duration_seconds",
                                   "Duration of fetching the source.", ["sync"], registry=r)
        self.skipped = Counter("acm_lite_skipped_polls_total",
                               "Polls that found neither a new commit nor drift.", ["sync"],
                               registry=r)
        self.leader = Gauge("acm_lite_leader", "1 when this replica holds the lease.", registry=r)


def verified_push(headers: Mapping[str, str], body: bytes, secret: bytes) -> bool | None:
    """True for a push event with a valid signature (GitHub's X-Hub-Signature-256 HMAC or
    GitLab's X-Gitlab-Token), False for a bad one, None for an event that is not a push."""
    lower = {k.lower(): v for k, v in headers.items()}
    github = lower.get("x-github-event")
    gitlab = lower.get("x-gitlab-event")
    if github is not None:
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, lower.get("x-hub-signature-256", ""))
        return valid if (github == "push" or not valid) else None
    if gitlab is not None:
        valid = hmac.compare_digest(secret, lower.get("x-gitlab-token", "").encode())
        return valid if (gitlab in ("Push Hook", "Tag Push Hook") or not valid) else None
    return False


def serve(address: tuple[str, int], metrics: Metrics, ready: Callable[[], bool],
          on_push: Callable[[], None] | None = None, webhook_secret: bytes | None = None
          ) -> ThreadingHTTPServer:
    """Start the endpoints on a background thread; the caller shuts the server down.

    With a webhook secret, ``POST /webhook`` accepts GitHub and GitLab push events whose signature
    checks out and polls every sync at once.
    """

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b"ok\n")
            elif self.path == "/readyz":
                ok = ready()
                self._send(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
            elif self.path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n")

        def do_POST(self) -> None:
            if self.path != "/webhook" or webhook_secret is None or on_push is None:
                self._send(404, b"not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 25 * 2**20))
            verdict = verified_push(dict(self.headers.items()), body, webhook_secret)
            if verdict is False:
                self._send(401, b"bad signature\n")
            elif verdict is None:
                self._send(202, b"ignored: not a push\n")
            else:
                on_push()
                self._send(202, b"sync triggered\n")

    server = ThreadingHTTPServer(address, Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return server
