"""`acm-lite migrate`: Config Sync's RootSync objects (files, or a cluster's) converted into
acm-lite's own, printed (or written) so a team can review and commit them. Each field is carried
over, or refused (``ACM1108``, ``ACM1107``) naming it; what tunes Config Sync's own Pods is left
out with a warning (``ACM1109``) on stderr. Nothing is written to a cluster."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite.cli import Subcommands, clusterargs
from acm_lite.cli.exitcodes import ExitStatus

if TYPE_CHECKING:  # the reader and the client load only when the command runs (fast --help)
    from acm_lite.errors import Problem
    from acm_lite.reconcile.pipeline import SyncSpec

_API = "configsync.gke.io/v1beta1"
CONFIG_SYNC_ROOTSYNCS = f"/apis/{_API}/rootsyncs"
MAX_ROOTSYNCS = 500


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "migrate",
        help="convert Config Sync RootSyncs into acm-lite RootSyncs",
        description="Read Config Sync's RootSync objects (configsync.gke.io/v1beta1 or v1alpha1) "
        "from files, or from a cluster with --from-cluster, and print the acm-lite RootSyncs "
        "(acm-lite.io/v1alpha1, namespace acm-lite-system) they become, as YAML to commit or apply. "
        "A field acm-lite does not carry out is refused (ACM1108) naming it; settings of Config "
        "Sync's reconciler Pods are left out with a warning (ACM1109) on stderr. Writes nothing "
        "to a cluster.",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="YAML files of RootSyncs")
    parser.add_argument(
        "--from-cluster",
        action="store_true",
        help="read the cluster's Config Sync RootSyncs (every namespace) instead of files",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the YAML here instead of stdout")
    clusterargs.add_connection(parser)
    parser.set_defaults(handler=handle)


def converted(spec: SyncSpec) -> dict[str, Any]:
    """acm-lite's RootSync (namespace acm-lite-system) or RepoSync (its own namespace) for
    ``spec``."""
    from acm_lite import api

    name, namespace = spec.object_key
    return {
        "apiVersion": api.API_VERSION,
        "kind": spec.kind,
        "metadata": {"name": name, "namespace": namespace or api.SYSTEM_NAMESPACE},
        "spec": spec.to_spec(),
    }


def _from_cluster(args: argparse.Namespace) -> list[tuple[SyncSpec, list[Problem]]]:
    from acm_lite import errors
    from acm_lite.cluster.client import ApiError
    from acm_lite.errors import AcmError
    from acm_lite.reconcile import rootsyncs

    cluster = clusterargs.connect(args)
    try:
        listed = cluster.request("GET", CONFIG_SYNC_ROOTSYNCS, query={"limit": MAX_ROOTSYNCS})
    except ApiError as e:
        if e.status == 404:
            raise AcmError(
                errors.INVALID_FLEET,
                "the cluster serves no configsync.gke.io/v1beta1 RootSyncs (Config Sync is not installed)",
            ) from None
        raise e.to_acm("Config Sync RootSyncs") from None
    items = listed.get("items") if isinstance(listed, dict) else None
    out = []
    for listed_item in items if isinstance(items, list) else []:
        if not isinstance(listed_item, dict):
            continue
        item = {**listed_item, "apiVersion": _API}  # a list's items may carry no apiVersion of their own
        spec, warnings = rootsyncs.read(item)
        if spec is None:
            name = (item.get("metadata") or {}).get("name")
            raise AcmError(errors.INVALID_FLEET, f"RootSync {errors.shown(name)} has no source to sync")
        out.append((spec, warnings))
    return out


def handle(args: argparse.Namespace) -> int:
    import yaml

    from acm_lite.reconcile import rootsyncs

    if bool(args.files) == bool(args.from_cluster):
        raise clusterargs.UsageError("give FILE... or --from-cluster (one of them)")
    found = (
        _from_cluster(args)
        if args.from_cluster
        else [pair for path in args.files for pair in rootsyncs.read_file(path)]
    )
    for spec, warnings in found:
        for warning in warnings:
            print(f"warning: {warning.code.id} {warning.message}", file=sys.stderr)
        if spec.git_secret_ref:
            print(
                f"note: RootSync {spec.name} reads Secret {spec.git_secret_ref} from the namespace "
                "acm-lite-system: copy it there from config-management-system",
                file=sys.stderr,
            )
    text = yaml.safe_dump_all([converted(spec) for spec, _ in found], sort_keys=False)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return ExitStatus.SUCCESS
