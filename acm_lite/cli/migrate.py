"""`acm-lite migrate`: Config Sync's RootSync and RepoSync objects (files, or a cluster's)
converted into acm-lite's own, printed (or written) so a team can review and commit them. Each
field is carried over, or refused (``ACM1108``, ``ACM1107``) naming it; what tunes Config Sync's
own Pods is left out with a warning (``ACM1109``) on stderr. Nothing is written to a cluster."""

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
CONFIG_SYNC_REPOSYNCS = f"/apis/{_API}/reposyncs"
MAX_ROOTSYNCS = 500


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "migrate",
        help="convert Config Sync RootSyncs and RepoSyncs into acm-lite's",
        description="Read Config Sync's RootSync and RepoSync objects (configsync.gke.io/v1beta1 or "
        "v1alpha1) from files, or from a cluster with --from-cluster, and print the acm-lite "
        "RootSyncs (acm-lite.io/v1alpha1, namespace acm-lite-system) and RepoSyncs (their own "
        "namespace) they become, as YAML to commit or apply. "
        "A field acm-lite does not carry out is refused (ACM1108) naming it; settings of Config "
        "Sync's reconciler Pods are left out with a warning (ACM1109) on stderr. Writes nothing "
        "to a cluster.",
    )
    parser.add_argument(
        "files", nargs="*", type=Path, metavar="FILE", help="YAML files of RootSyncs and RepoSyncs"
    )
    parser.add_argument(
        "--from-cluster",
        action="store_true",
        help="read the cluster's Config Sync RootSyncs and RepoSyncs (every namespace) instead of files",
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
    out = []
    for kind, path in (("RootSync", CONFIG_SYNC_ROOTSYNCS), ("RepoSync", CONFIG_SYNC_REPOSYNCS)):
        try:
            listed = cluster.request("GET", path, query={"limit": MAX_ROOTSYNCS})
        except ApiError as e:
            if e.status == 404 and kind == "RepoSync":
                continue  # RootSyncs only
            if e.status == 404:
                raise AcmError(
                    errors.INVALID_FLEET,
                    f"the cluster serves no configsync.gke.io/v1beta1 {kind}s (Config Sync is not installed)",
                ) from None
            raise e.to_acm(f"Config Sync {kind}s") from None
        items = listed.get("items") if isinstance(listed, dict) else None
        for listed_item in items if isinstance(items, list) else []:
            if not isinstance(listed_item, dict):
                continue
            # a list's items may carry no apiVersion or kind of their own
            item = {**listed_item, "apiVersion": _API, "kind": kind}
            spec, warnings = rootsyncs.read(item)
            if spec is None:
                raise AcmError(errors.INVALID_FLEET, f"{rootsyncs.subject(item)} has no source to sync")
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
        if spec.git_secret_ref and not spec.repo_sync:
            print(
                f"note: RootSync {spec.name} reads Secret {spec.git_secret_ref} from the namespace "
                "acm-lite-system: copy it there from config-management-system",
                file=sys.stderr,
            )
        if spec.repo_sync:
            print(
                f"note: {spec.describe} runs as ServiceAccount {spec.namespace}/{spec.name}"
                + (
                    " with its roleRefs bound"
                    if spec.role_refs
                    else ": bind it the rights Config Sync's ns-reconciler had (a RoleBinding in "
                    f"{spec.namespace}), or add spec.override.roleRefs"
                ),
                file=sys.stderr,
            )
    text = yaml.safe_dump_all([converted(spec) for spec, _ in found], sort_keys=False)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return ExitStatus.SUCCESS
