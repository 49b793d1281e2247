"""`acm-lite dev`: build the binaries and run local control planes for trying acm-lite out."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite.cli import Subcommands, output
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.devcluster import binaries, kwok
from acm_lite.errors import DEV_CLUSTER_UNKNOWN, AcmError

if TYPE_CHECKING:  # the control planes (and their certificates) load only when a command runs
    from acm_lite.devcluster.controlplane import Environment


def register(sub: Subcommands) -> None:
    dev = sub.add_parser(
        "dev",
        help="local control planes for trying acm-lite out",
        description="Build the control-plane binaries and run local clusters on loopback: "
        "etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake nodes "
        "(no kubelet, no containers), or the API server alone with --light.",
    )
    verbs = dev.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    build = verbs.add_parser(
        "build",
        help="build or find the control-plane binaries, kwok, kubectl, helm, kustomize and registry",
        description="Build the binaries from the Go module proxy into the "
        "cache, or reuse them (KUBEBUILDER_ASSETS is honoured).",
    )
    build.add_argument(
        "components",
        nargs="*",
        type=_component,
        metavar="COMPONENT",
        help=f"{', '.join(binaries.components())} (default: all)",
    )
    build.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    build.set_defaults(handler=_build)

    up = verbs.add_parser(
        "up",
        help="start local clusters and wait until they are ready",
        description="Start one etcd and, per cluster, a kube-apiserver with kube-controller-manager, "
        "kube-scheduler and kwok managing fake nodes, detached; returns when every server is healthy, "
        "every node Ready and the default ServiceAccount exists. Pods annotated "
        "acm-lite.dev/simulate=fail fail, =crashloop never become Ready.",
    )
    which = up.add_mutually_exclusive_group()
    which.add_argument(
        "--clusters",
        type=_positive,
        default=1,
        metavar="N",
        help="start N clusters named dev-1 ... dev-N (default 1)",
    )
    which.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="start one cluster per entry of a fleet file, named as there",
    )
    up.add_argument(
        "--light",
        action="store_true",
        help="API servers only: no controllers, scheduler or nodes (faster, less memory)",
    )
    up.add_argument(
        "--nodes",
        type=_positive,
        default=kwok.DEFAULT_NODES,
        metavar="N",
        help=f"fake nodes per cluster (default {kwok.DEFAULT_NODES}; not with --light)",
    )
    up.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    up.set_defaults(handler=_up)

    env = verbs.add_parser(
        "env",
        help="print shell exports for the running local clusters",
        description="Print KUBECONFIG and PATH exports: "
        'eval "$(acm-lite dev env)". KUBECONFIG holds a context '
        "per cluster (named after it, the first one current).",
    )
    env.add_argument("--cluster", metavar="NAME", help="a kubeconfig with only this cluster")
    env.set_defaults(handler=_env)

    status = verbs.add_parser("status", help="list the running local clusters")
    status.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    status.set_defaults(handler=_status)

    down = verbs.add_parser("down", help="stop every local cluster and remove its files")
    down.set_defaults(handler=_down)


def _component(value: str) -> str:
    if value not in binaries.components():
        raise argparse.ArgumentTypeError(
            f"unknown component {value!r} (choose from {', '.join(binaries.components())})"
        )
    return value


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _build(args: argparse.Namespace) -> int:
    paths = binaries.ensure_all(args.components or None, progress=output.progress)
    versions = binaries.components()
    rows = [{"name": n, "version": versions[n].version, "path": str(p)} for n, p in paths.items()]
    output.emit(
        rows,
        args.output,
        lambda rs: output.table(
            [[r["name"], r["version"], r["path"]] for r in rs], ["NAME", "VERSION", "PATH"]
        ),
    )
    return ExitStatus.SUCCESS


def _names(args: argparse.Namespace) -> list[str]:
    from acm_lite.fleet import registry

    if args.fleet:
        return [c.name for c in registry.load(args.fleet).clusters]
    return [f"dev-{i}" for i in range(1, args.clusters + 1)]


def _rows(env: Environment) -> list[dict[str, Any]]:
    from acm_lite.devcluster import process

    return [
        {
            "name": c.name,
            "server": c.url,
            "kubeconfig": c.kubeconfig,
            "pid": c.pid,
            "running": process.alive(c.pid),
            "mode": "full" if c.full else "light",
            "nodes": c.nodes,
            "controllers": {child.name: process.alive(child.pid) for child in c.children},
        }
        for c in env.clusters
    ]


def _text(rows: list[dict[str, Any]]) -> str:
    return output.table(
        [
            [
                r["name"],
                r["server"],
                "yes" if r["running"] and all(r["controllers"].values()) else "no",
                r["mode"],
                str(len(r["nodes"])),
                r["kubeconfig"],
            ]
            for r in rows
        ],
        ["NAME", "SERVER", "RUNNING", "MODE", "NODES", "KUBECONFIG"],
    )


def _up(args: argparse.Namespace) -> int:
    from acm_lite.devcluster import session

    env = session.up(_names(args), output.progress, light=args.light, nodes=args.nodes)
    output.emit(_rows(env), args.output, _text)
    if args.output == "text":
        output.progress('ready: eval "$(acm-lite dev env)" then kubectl get --raw /version')
    return ExitStatus.SUCCESS


def _env(args: argparse.Namespace) -> int:
    from acm_lite.devcluster import session

    env = session.current()
    path = env.merged_kubeconfig  # every cluster as a context; the first is current
    if args.cluster:
        cluster = env.cluster(args.cluster)
        if cluster is None:
            raise AcmError(
                DEV_CLUSTER_UNKNOWN,
                f"no local cluster named {args.cluster!r}",
                hint=f"running: {', '.join(c.name for c in env.clusters)}",
            )
        path = cluster.kubeconfig
    print(f"export KUBECONFIG={shlex.quote(path)}")
    kubectl = binaries.find("kubectl")
    if kubectl:
        print(f'export PATH={shlex.quote(str(kubectl.parent))}:"$PATH"')
    return ExitStatus.SUCCESS


def _status(args: argparse.Namespace) -> int:
    from acm_lite.devcluster import session

    output.emit(_rows(session.current()), args.output, _text)
    return ExitStatus.SUCCESS


def _down(_args: argparse.Namespace) -> int:
    from acm_lite.devcluster import session

    env = session.down()
    if env is None:
        output.progress("no local clusters were running")
    else:
        output.progress(f"stopped {', '.join(c.name for c in env.clusters)} and etcd")
    return ExitStatus.SUCCESS
