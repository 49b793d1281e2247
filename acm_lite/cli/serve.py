"""`acm-lite serve`: the sync daemon — a reconcile loop per sync, drift repair, leader election,
/healthz, /readyz and /metrics."""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from acm_lite import api, logs
from acm_lite.cli import clusterargs, rendering
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.cluster.client import Cluster
from acm_lite.fleet import fanout, registry
from acm_lite.reconcile import metrics as metrics_mod
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.leader import LeaderElector


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve", help="run the sync daemon",
        description="Run the pipeline in a loop for one sync (--repo ...) or every cluster of a "
                    "fleet (--fleet): poll every --period, sync when the commit changed, repair "
                    "drift between passes, resync every --resync. SIGTERM stops it gracefully.")
    clusterargs.add_sync_source(parser)
    parser.add_argument("--period", type=float, default=15.0, metavar="SECONDS",
                        help="how often to poll the source (default 15)")
    parser.add_argument("--resync", type=float, default=3600.0, metavar="SECONDS",
                        help="full pass at least this often (default 3600)")
    parser.add_argument("--no-drift-repair", dest="drift_repair", action="store_false",
                        help="do not watch managed objects between passes")
    parser.add_argument("--metrics-address", default="127.0.0.1:9090", metavar="HOST:PORT",
                        help="/healthz, /readyz and /metrics (default 127.0.0.1:9090; 'off')")
    parser.add_argument("--leader-elect", action="store_true",
                        help="hold a Lease so that only one replica writes")
    parser.add_argument("--lease-namespace", default=api.SYSTEM_NAMESPACE)
    parser.add_argument("--lease-name", default="acm-lite")
    parser.add_argument("--identity", default=f"{socket.gethostname()}-{os.getpid()}",
                        help="this replica's name in the Lease")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    parser.set_defaults(handler=handle)


def _workers(args: argparse.Namespace) -> list[tuple[pipeline.SyncSpec, Any]]:
    if args.fleet:
        fleet = registry.load(args.fleet)
        override = clusterargs.fleet_override(args)
        return [(override(fanout.spec_for(m)), lambda m=m: fanout.connect(m))
                for m in fleet.select(args.cluster)]
    spec = clusterargs.spec(args)
    return [(spec, lambda: clusterargs.connect(args))]


def handle(args: argparse.Namespace) -> int:
    logs.configure(args.log_format)
    sync_options = pipeline.SyncOptions(force_conflicts=True, schema=not args.no_schema,
                                        policies=rendering.policy_sources(args))
    elector = None
    if args.leader_elect:
        elector = LeaderElector(Cluster.connect(args.kubeconfig, args.context),
                                args.lease_namespace, args.lease_name, args.identity)
    daemon = Daemon(_workers(args), sync_options,
                    DaemonOptions(period=args.period, resync=args.resync,
                                  drift_repair=args.drift_repair), elector)
    server = None
    if args.metrics_address != "off":
        host, _, port = args.metrics_address.rpartition(":")
        server = metrics_mod.serve((host or "0.0.0.0", int(port)), daemon.metrics, daemon.ready)
    daemon.start()
    try:
        while not daemon.stop_event.wait(1.0):
            pass
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop taking work, finish, release the lease
        pass
    finally:
        daemon.stop()
        if server is not None:
            server.shutdown()
    return ExitStatus.SUCCESS
