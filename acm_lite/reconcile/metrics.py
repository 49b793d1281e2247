"""Prometheus metrics of the daemon, named by Prometheus conventions, and the HTTP endpoints
(/healthz, /readyz, /metrics and the Git webhook) that serve them."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from acm_lite.reconcile import webhook
from acm_lite.reconcile.dashboard import Dashboard
from acm_lite.reconcile.httpserver import Answer, Limits, Request, Server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sync_duration = Histogram(
            "acm_lite_sync_duration_seconds",
            "Duration of one pipeline pass.",
            ["sync"],
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.passes = Counter(
            "acm_lite_passes_total",
            "Passes run, by mode: incremental (from what a commit changed) or full.",
            ["sync", "mode"],
            registry=r,
        )
        self.last_success = Gauge(
            "acm_lite_last_sync_success_timestamp_seconds",
            "Unix time of the last pass without errors.",
            ["sync"],
            registry=r,
        )
        self.objects = Counter(
            "acm_lite_objects_total", "Objects handled, by outcome.", ["sync", "outcome"], registry=r
        )
        self.errors = Counter(
            "acm_lite_errors_total", "Problems found, by code.", ["sync", "code"], registry=r
        )
        self.drift_repairs = Counter(
            "acm_lite_drift_repairs_total",
            "Managed objects re-applied after someone changed them.",
            ["sync"],
            registry=r,
        )
        self.fights = Counter(
            "acm_lite_fights_total",
            "Objects another controller keeps reverting (repair paused).",
            ["sync"],
            registry=r,
        )
        self.watch_relists = Counter(
            "acm_lite_watch_relists_total",
            "Drift watches that lost their place (410 Gone, an error event, a resourceVersion lost) "
            "and read the whole current state again; a watch's first start is not counted.",
            ["sync", "resource"],
            registry=r,
        )
        self.watches_synced = Gauge(
            "acm_lite_watches_synced",
            "1 while every drift watch of the sync holds the whole current state and is connected.",
            ["sync"],
            registry=r,
        )
        self.git_fetch = Histogram(
            "acm_lite_git_fetch_duration_seconds", "Duration of fetching the source.", ["sync"], registry=r
        )
        self.skipped = Counter(
            "acm_lite_skipped_polls_total",
            "Polls that found neither a new commit nor drift.",
            ["sync"],
            registry=r,
        )
        self.health = Gauge(
            "acm_lite_managed_objects",
            "Objects a sync manages, by health status (kstatus: Current, InProgress, Failed, "
            "Terminating, NotFound, Unknown).",
            ["sync", "status"],
            registry=r,
        )
        self.leader = Gauge("acm_lite_leader", "1 when this replica holds the lease.", registry=r)


def serve(
    address: tuple[str, int],
    metrics: Metrics,
    ready: Callable[[], bool],
    on_push: Callable[[], None] | None = None,
    webhook_secret: bytes | None = None,
    *,
    limits: Limits | None = None,
    dashboard: Dashboard | None = None,
) -> Server:
    """Start the endpoints on a background thread; the caller shuts the server down.

    With a webhook secret, ``POST /webhook`` accepts GitHub and GitLab push events whose signature
    checks out and polls every sync at once.
    """

    def route(request: Request) -> Answer:
        if dashboard is not None and dashboard.handles(request.path):
            return dashboard.answer(request)
        if request.method == "GET":
            if request.path == "/healthz":
                return Answer(200, b"ok\n")
            if request.path == "/readyz":
                ok = ready()
                return Answer(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
            if request.path == "/metrics":
                return Answer(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            return Answer(404, b"not found\n")
        if request.method == "POST":
            if request.path != "/webhook" or webhook_secret is None or on_push is None:
                return Answer(404, b"not found\n")
            return webhook.handle(request, webhook_secret, on_push)
        return Answer(405, b"method not allowed\n")

    return Server(address, route, limits)
