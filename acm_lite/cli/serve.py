"""`acm-lite serve`: the flags of the sync daemon and its wiring — which syncs it runs (one, a
config file's, a fleet's, or the cluster's RootSyncs), leader election, /healthz, /readyz and
/metrics. The daemon itself is ``reconcile.daemon``."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from acm_lite import api, errors
from acm_lite.cli import Subcommands, allocator, clusterargs, percluster
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.cli.sync import add_pass_timeout
from acm_lite.errors import AcmError

PREVIEW_SECONDS = 120.0  # the dashboard's preview of one commit: its requests' deadline, and its time

if TYPE_CHECKING:  # the daemon and the Kubernetes client load only when it runs (fast --help)
    from acm_lite.cluster.client import Cluster
    from acm_lite.reconcile import pipeline
    from acm_lite.reconcile.admission import AdmissionWebhook
    from acm_lite.reconcile.daemon import Daemon
    from acm_lite.reconcile.dashboard import Dashboard, SyncView
    from acm_lite.reconcile.httpserver import Server
    from acm_lite.reconcile.previews import Compute, PreviewSummary
    from acm_lite.reconcile.shards import ShardCoordinator


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the sync daemon",
        description="Run the pipeline in a loop for one sync (--repo ...) or every cluster of a "
        "fleet (--fleet): poll every --period, sync when the commit changed, repair "
        "drift between passes, resync every --resync. SIGTERM stops it gracefully.",
    )
    clusterargs.add_sync_source(parser)
    parser.add_argument(
        "--period",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how often to poll the source (default 15)",
    )
    parser.add_argument(
        "--resync",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="full pass at least this often (default 3600)",
    )
    parser.add_argument(
        "--no-drift-repair",
        dest="drift_repair",
        action="store_false",
        help="do not watch managed objects between passes",
    )
    add_pass_timeout(parser)
    parser.add_argument(
        "--no-incremental",
        dest="incremental",
        action="store_false",
        help="make every pass a full one (by default a new commit is declared, planned and applied "
        "from the files it changed, where that gives the same result; --resync passes are full)",
    )
    parser.add_argument(
        "--no-health-tracking",
        dest="health_tracking",
        action="store_false",
        help="do not follow each object's health between passes (each pass still records it, "
        "and no reconcile timeout is reported)",
    )
    parser.add_argument(
        "--audit-log",
        type=Path,
        metavar="FILE",
        help="the API server's audit log (--audit-log-path, JSON lines): each drift repair names "
        "the user who made the change, read from its last 8 MiB",
    )
    parser.add_argument(
        "--reconcile-timeout",
        type=percluster.positive(float, "a positive number of seconds"),
        default=api.DEFAULT_RECONCILE_TIMEOUT,
        metavar="SECONDS",
        help="an applied object not Current within this long is reported on the RootSync "
        "(KNV2009; default 300, as Config Sync's reconcileTimeout; a RootSync's "
        "spec.override.reconcileTimeout overrides it)",
    )
    parser.add_argument(
        "--unready-after",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="/readyz fails once a sync's passes have failed for this long "
        "(default: four periods, at least 60)",
    )
    parser.add_argument(
        "--metrics-address",
        default="127.0.0.1:9090",
        metavar="HOST:PORT",
        help="/healthz, /readyz and /metrics (default 127.0.0.1:9090; 'off')",
    )
    parser.add_argument(
        "--leader-elect", action="store_true", help="hold a Lease so that only one replica writes"
    )
    parser.add_argument(
        "--lease-namespace",
        metavar="NS",
        help="namespace of the leader Lease (default: the system namespace)",
    )
    parser.add_argument(
        "--lease-name", default="acm-lite", metavar="NAME", help="name of the leader Lease (default acm-lite)"
    )
    parser.add_argument(
        "--shards",
        type=percluster.positive(int, "a positive number of shards"),
        default=0,
        metavar="N",
        help="with --fleet: share the fleet between replicas; each cluster falls in one of N shards "
        "(a hash of its name), each shard is held by one live replica through a Lease "
        "<lease-name>-shard-<i> in --lease-namespace (default: off, one replica syncs every cluster; "
        "N = the number of clusters spreads them finest)",
    )
    parser.add_argument(
        "--lease-duration",
        type=percluster.positive(float, "a positive number of seconds"),
        default=15.0,
        metavar="SECONDS",
        help="with --shards: how long a Lease not renewed stays its holder's (default 15)",
    )
    parser.add_argument(
        "--renew-deadline",
        type=percluster.positive(float, "a positive number of seconds"),
        default=10.0,
        metavar="SECONDS",
        help="with --shards: a replica stops writing a shard's clusters this long after its last "
        "renewal of the shard's Lease succeeded; shorter than --lease-duration (default 10)",
    )
    parser.add_argument(
        "--lease-retry",
        type=percluster.positive(float, "a positive number of seconds"),
        default=2.0,
        metavar="SECONDS",
        help="with --shards: how often the Leases are renewed and free shards claimed (default 2)",
    )
    parser.add_argument(
        "--identity", default=f"{socket.gethostname()}-{os.getpid()}", help="this replica's name in the Lease"
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="one JSON object per log line, or text for people (default json)",
    )
    parser.add_argument(
        "--webhook-secret-file",
        type=Path,
        metavar="FILE",
        help="enable POST /webhook for GitHub and GitLab push events signed with "
        "the secret in FILE (also $ACM_LITE_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="syncs to run: a YAML file of RootSync and RepoSync objects (acm-lite.io/v1alpha1, or "
        "Config Sync's configsync.gke.io/v1beta1 read unchanged)",
    )
    parser.add_argument(
        "--from-cluster",
        action="store_true",
        help="sync every RootSync in the cluster's system namespace (--system-namespace) and every "
        "RepoSync in any namespace (each as a ServiceAccount of its namespace): creating one starts "
        "syncing it, deleting one stops",
    )
    _add_admission(parser)
    _add_ui(parser)
    parser.set_defaults(handler=handle)


def _add_ui(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dashboard (read-only pages on --metrics-address, under /ui/)")
    group.add_argument(
        "--ui",
        action="store_true",
        help="serve the fleet dashboard: each cluster's syncs, their errors and codes, each "
        "object's health, last drift and applied commit, the preview of a sync's newest commit "
        "while it is blocked, updated live; needs a bearer token",
    )
    group.add_argument(
        "--ui-token-file",
        type=Path,
        metavar="FILE",
        help="accept the bearer token in FILE (compared in constant time)",
    )
    group.add_argument(
        "--ui-token-review",
        action="store_true",
        help="accept a bearer token the management cluster (--kubeconfig/--context) authenticates "
        "through its TokenReview API (answers kept 30 seconds)",
    )


def _dashboard(args: argparse.Namespace, daemon: Daemon) -> Dashboard | None:
    """The dashboard, when --ui asks for it; it needs a way to check tokens."""
    if not args.ui:
        if args.ui_token_file or args.ui_token_review:
            raise clusterargs.UsageError("--ui-token-file and --ui-token-review go with --ui")
        return None
    from acm_lite.cluster.client import Cluster
    from acm_lite.reconcile.dashboard import Auth, Dashboard
    from acm_lite.reconcile.previews import Previews

    if args.metrics_address == "off":
        raise clusterargs.UsageError("--ui is served on --metrics-address: it cannot be 'off'")
    if not (args.ui_token_file or args.ui_token_review):
        raise clusterargs.UsageError("--ui needs --ui-token-file FILE or --ui-token-review")
    token = None
    if args.ui_token_file:
        try:
            token = args.ui_token_file.read_bytes().strip()
        except OSError as e:
            raise clusterargs.UsageError(f"cannot read --ui-token-file: {e}") from e
        if len(token) < 16:
            raise clusterargs.UsageError("--ui-token-file holds fewer than 16 characters: use a longer token")
    review = Cluster.connect(args.kubeconfig, args.context) if args.ui_token_review else None
    return Dashboard(daemon.views, Auth(token, review), previews=Previews(_previewer(daemon.sync_options)))


def _previewer(options: pipeline.SyncOptions) -> Compute:
    """What the dashboard shows for a sync whose newest commit is not applied: ``acm-lite
    preview``'s report of that commit against the applied one, for the sync's own cluster, planned
    even when policy violations block the commit (so the page shows what it would change)."""
    from acm_lite.fleet import preview
    from acm_lite.reconcile.previews import PreviewSummary

    options = dataclasses.replace(
        options, plan_blocked=True, deadline=min(options.deadline or PREVIEW_SECONDS, PREVIEW_SECONDS)
    )

    def compute(view: SyncView, base: str, head: str) -> PreviewSummary | None:
        if view.spec is None or view.connect is None:
            return None
        request = preview.Request(base, head, options=options)
        report = preview.preview_sync(view.cluster, view.spec, request, view.connect)
        return PreviewSummary.from_report(report.to_dict())

    return compute


def _add_admission(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("admission webhook (drift prevented before it is written)")
    group.add_argument(
        "--admission-webhook",
        action="store_true",
        help="serve a validating admission webhook over TLS and register it: changes by anyone "
        "but acm-lite to declared fields, to acm-lite's labels and annotations, and deletions of "
        "managed objects are denied (ACM2016), and a second sync cannot take an object over (KNV1060)",
    )
    group.add_argument(
        "--admission-webhook-address",
        default="127.0.0.1:8443",
        metavar="HOST:PORT",
        help="where the webhook listens (default 127.0.0.1:8443; port 0 picks a free one)",
    )
    group.add_argument(
        "--admission-webhook-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the host the API server calls, https://HOST:PORT/admission, for a daemon outside "
        "the cluster (default 127.0.0.1; also in the generated certificate)",
    )
    group.add_argument(
        "--admission-webhook-service",
        metavar="NAME",
        help="in the cluster: the Service in front of the daemon (namespace $ACM_LITE_NAMESPACE, "
        "else the system namespace; port 443), instead of a URL",
    )
    group.add_argument(
        "--admission-webhook-secret",
        metavar="NAME",
        help="serve the certificate of this kubernetes.io/tls Secret in the system namespace "
        "(tls.crt, tls.key, optional ca.crt; re-read when it changes) instead of one acm-lite "
        "generates and rotates",
    )
    group.add_argument(
        "--admission-webhook-failure-policy",
        choices=("Ignore", "Fail"),
        default="Ignore",
        help="what the API server does when the webhook cannot be reached: Ignore lets the write "
        "through (default, as Config Sync; drift repair still reverts it) or Fail denies it",
    )
    group.add_argument(
        "--admission-webhook-cert-lifetime",
        type=percluster.positive(float, "a positive number of seconds"),
        default=365 * 24 * 3600.0,
        metavar="SECONDS",
        help="lifetime of a generated certificate; replaced after two thirds of it (default one year)",
    )


def _workers(args: argparse.Namespace) -> list[tuple[pipeline.SyncSpec, Callable[[], Cluster]]]:
    from acm_lite.fleet import fanout, registry
    from acm_lite.reconcile import rootsyncs

    if (args.from_cluster or args.config) and args.ignore_fields:
        raise clusterargs.UsageError(
            "--ignore-fields applies to the sync the flags describe; with --config or --from-cluster "
            "set spec.override.ignoreFields on each RootSync"
        )
    if args.from_cluster:
        return []
    if args.config:
        return [(spec, lambda: clusterargs.connect(args)) for spec in rootsyncs.from_config(args.config)]
    if args.fleet:
        fleet = registry.load(args.fleet)
        override = clusterargs.fleet_override(args)
        return [
            (override(fanout.spec_for(m)), functools.partial(fanout.connect, m))
            for m in fleet.select(args.cluster)
        ]
    spec = clusterargs.spec(args)
    return [(spec, lambda: clusterargs.connect(args))]


def _webhook_secret(args: argparse.Namespace) -> bytes | None:
    if args.webhook_secret_file:
        try:
            secret_bytes: bytes = args.webhook_secret_file.read_bytes().strip()
        except OSError as e:
            raise clusterargs.UsageError(f"cannot read --webhook-secret-file: {e}") from e
        if not secret_bytes:
            raise clusterargs.UsageError("--webhook-secret-file is empty")
        return secret_bytes
    secret = os.environ.get("ACM_LITE_WEBHOOK_SECRET")
    return secret.encode() if secret else None


def _listen(args: argparse.Namespace, daemon: Daemon, dashboard: Dashboard | None = None) -> Server:
    """The endpoints on --metrics-address; an address that cannot be used is a coded error."""
    from acm_lite.reconcile import metrics as metrics_mod

    host, _, port = args.metrics_address.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise clusterargs.UsageError(f"--metrics-address {args.metrics_address!r} is not HOST:PORT or 'off'")
    secret = _webhook_secret(args)
    try:
        return metrics_mod.serve(
            (host.strip("[]") or "0.0.0.0", int(port)),
            daemon.metrics,
            daemon.ready,
            daemon.wake_all,
            secret,
            dashboard=dashboard,
        )
    except OSError as e:
        raise AcmError(
            errors.LISTEN_FAILED,
            f"cannot listen on {args.metrics_address}: {e}",
            hint="choose another --metrics-address, or 'off'",
        ) from e


def _admission(args: argparse.Namespace) -> AdmissionWebhook | None:
    """The admission webhook, started, when --admission-webhook asks for it."""
    if not args.admission_webhook:
        return None
    from acm_lite.reconcile.admission import AdmissionOptions, AdmissionWebhook

    host, _, port = args.admission_webhook_address.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise clusterargs.UsageError(
            f"--admission-webhook-address {args.admission_webhook_address!r} is not HOST:PORT"
        )
    options = AdmissionOptions(
        address=(host.strip("[]") or "0.0.0.0", int(port)),
        host=args.admission_webhook_host,
        service=args.admission_webhook_service,
        service_namespace=os.environ.get(api.NAMESPACE_ENV) or None,
        secret=args.admission_webhook_secret,
        failure_policy=args.admission_webhook_failure_policy,
        lifetime=args.admission_webhook_cert_lifetime,
    )
    webhook = AdmissionWebhook(clusterargs.connect(args), options)
    try:
        webhook.start()
    except OSError as e:
        raise AcmError(
            errors.LISTEN_FAILED,
            f"cannot listen on {args.admission_webhook_address}: {e}",
            hint="choose another --admission-webhook-address",
        ) from e
    return webhook


def _shards(args: argparse.Namespace) -> Callable[[Daemon], ShardCoordinator] | None:
    """With --shards, the coordinator of this replica's shard Leases in the management cluster
    (the one --kubeconfig/--context name, as for --leader-elect)."""
    from acm_lite.cluster.client import Cluster
    from acm_lite.reconcile.shards import ShardCoordinator, Timing

    if not args.shards:
        return None
    if not args.fleet:
        raise clusterargs.UsageError("--shards shares a fleet between replicas: give --fleet")
    if args.leader_elect:
        raise clusterargs.UsageError(
            "--shards and --leader-elect exclude each other: with --shards every replica writes, "
            "each its own shards"
        )
    timing = Timing(args.lease_duration, args.renew_deadline, args.lease_retry)
    problem = timing.check()
    if problem:
        raise clusterargs.UsageError(problem)
    management = Cluster.connect(args.kubeconfig, args.context)
    namespace = args.lease_namespace or api.system_namespace()

    def build(daemon: Daemon) -> ShardCoordinator:
        return ShardCoordinator(
            management,
            namespace,
            args.lease_name,
            args.identity,
            args.shards,
            timing=timing,
            on_acquire=daemon.shard_acquired,
            on_release=daemon.shard_released,
        )

    return build


def handle(args: argparse.Namespace) -> int:
    allocator.use_system_allocator()  # returns only once it is in use, or cannot be

    from acm_lite import logs
    from acm_lite.cluster.client import Cluster
    from acm_lite.reconcile import pipeline, rootsyncs
    from acm_lite.reconcile.daemon import Daemon, DaemonOptions
    from acm_lite.reconcile.leader import LeaderElector

    if not (args.repo or args.fleet or args.from_cluster or args.config or args.source_type != "git"):
        raise clusterargs.UsageError("give --repo, --config, --fleet or --from-cluster")
    if args.admission_webhook and args.fleet:
        raise clusterargs.UsageError(
            "--admission-webhook protects the one cluster the daemon connects to; a fleet's clusters "
            "cannot call it: run a daemon with the webhook in each cluster (the chart's admissionWebhook)"
        )
    logs.configure(args.log_format)
    clusterargs.use_system_namespace(args)
    sync_options = pipeline.SyncOptions(
        force_conflicts=True,
        schema=not args.no_schema,
        policies=percluster.policy_sources(args),
        deadline=args.pass_timeout,
        render=percluster.render_options(args, cache=True),
        reconcile_timeout=args.reconcile_timeout,
    )
    shards = _shards(args)
    elector = None
    if args.leader_elect:
        elector = LeaderElector(
            Cluster.connect(args.kubeconfig, args.context),
            args.lease_namespace or api.system_namespace(),
            args.lease_name,
            args.identity,
        )
    daemon = Daemon(
        _workers(args),
        sync_options,
        DaemonOptions(
            period=args.period,
            resync=args.resync,
            drift_repair=args.drift_repair,
            unready_after=args.unready_after,
            health_tracking=args.health_tracking,
            audit_log=args.audit_log,
            incremental=args.incremental,
        ),
        elector,
        shards=shards,
    )
    dashboard = _dashboard(args, daemon)
    server = None
    if args.metrics_address != "off":
        server = _listen(args, daemon, dashboard)
    try:
        admission = _admission(args)
    except BaseException:
        if server is not None:
            server.shutdown()
        raise
    daemon.start()
    supervisor = rootsyncs.RootSyncs(daemon, lambda: clusterargs.connect(args)) if args.from_cluster else None
    try:
        while not daemon.stop_event.wait(min(args.period, 5.0)):
            if supervisor is not None:
                supervisor.refresh()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop taking work, finish, release the lease
        pass
    finally:
        daemon.stop()
        if admission is not None:
            admission.stop()
        if server is not None:
            server.shutdown()
    return ExitStatus.SUCCESS
