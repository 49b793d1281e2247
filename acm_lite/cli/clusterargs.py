"""Flags shared by commands that talk to a cluster or sync a repository to one."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import api
from acm_lite.cli import output, percluster, sourceargs

if TYPE_CHECKING:  # the Kubernetes client and the pipeline load only when a command runs (fast --help)
    from acm_lite.cluster.client import Cluster
    from acm_lite.reconcile.pipeline import SyncSpec


def add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
    )
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    add_system_namespace(parser)


def add_system_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--system-namespace",
        metavar="NS",
        help="where acm-lite keeps its RootSyncs, inventories, resource statuses, leader Lease and "
        f"Events (default: ${api.SYSTEM_NAMESPACE_ENV}, else {api.SYSTEM_NAMESPACE})",
    )


def use_system_namespace(args: argparse.Namespace) -> str:
    """Make --system-namespace (or its environment default) the process's system namespace; each
    command that reads or writes acm-lite's records calls this before it does."""
    try:
        return api.set_system_namespace(getattr(args, "system_namespace", None))
    except ValueError as e:
        raise UsageError(str(e)) from e


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week: longer is a mistake, not a wait


def duration(text: str) -> float:
    """An argparse type: seconds from ``300``, ``300s``, ``5m``, ``1h30m`` or ``1m30s``, above
    zero and at most a week."""
    found = _DURATION.fullmatch(text.strip())
    seconds = 0.0
    if found and text.strip():
        hours, minutes, secs = (float(g) if g else 0.0 for g in found.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if not (0 < seconds <= MAX_TIMEOUT and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration such as 300, 90s, 5m or 1h (up to a week)"
        )
    return seconds


def add_wait(parser: argparse.ArgumentParser, *, applies: bool = True) -> None:
    """``--wait`` and ``--timeout``; a command that ``applies`` nothing accepts and ignores them,
    so one set of flags serves sync and diff."""
    parser.add_argument(
        "--wait",
        action="store_true",
        help="after applying, wait until every applied object is Current and every pruned one gone; "
        "exit 1 naming each that Failed or was not Current by --timeout"
        if applies
        else "accepted for symmetry with sync; diff applies nothing, so there is nothing to wait for",
    )
    parser.add_argument(
        "--timeout",
        type=duration,
        default=300.0,
        metavar="DURATION",
        help="how long applied objects get to become Current: with --wait every object, and "
        "always the depends-on targets before their dependents (default 5m)"
        if applies
        else "accepted for symmetry with sync; ignored",
    )


def add_sync_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo",
        metavar="URL|PATH",
        help="Git URL, local Git repository, or plain directory (with --fleet: overrides the fleet file's)",
    )
    parser.add_argument("--revision", default="HEAD", help="branch, tag or commit (default: HEAD)")
    parser.add_argument("--dir", default=".", help="sub-directory of the repository to sync")
    parser.add_argument(
        "--source-format",
        choices=api.SOURCE_FORMATS,
        default=api.HIERARCHY,
        help="repository format (default: hierarchy)",
    )
    parser.add_argument(
        "--cluster",
        metavar="NAME",
        action="append",
        help="this cluster's name, for cluster selectors (labels from "
        "clusterregistry/); with --fleet, a cluster to include (repeatable)",
    )
    parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        help="act on every cluster of a fleet file (or those named by --cluster)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=4,
        metavar="N",
        help="with --fleet: clusters handled at once (default 4)",
    )
    parser.add_argument(
        "--name",
        default=api.DEFAULT_SYNC,
        help=f"name of the sync and its inventory (default: {api.DEFAULT_SYNC})",
    )
    parser.add_argument("--no-schema", action="store_true", help="skip OpenAPI schema checks")
    parser.add_argument(
        "--ignore-fields",
        type=Path,
        metavar="FILE",
        help="YAML list of {group, kind, jsonPointers}: fields other controllers own, never applied "
        "nor counted as drift (as a RootSync's spec.override.ignoreFields)",
    )
    parser.add_argument(
        "--namespace", metavar="NS", help="a tenant sync: only namespaced objects, all in NS (like RepoSync)"
    )
    sourceargs.add_arguments(parser)
    sourceargs.add_config_sync_arguments(parser)
    percluster.add_policy_arguments(parser)
    percluster.add_render_arguments(parser)
    add_connection(parser)
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")


def connect(args: argparse.Namespace) -> Cluster:
    from acm_lite.cluster.client import Cluster

    use_system_namespace(args)
    return Cluster.connect(args.kubeconfig, args.context)


def spec(args: argparse.Namespace) -> SyncSpec:
    built = _spec(args)
    rules = ignore_fields(args, built.name)
    return replace(built, ignore_fields=rules) if rules else built


def ignore_fields(args: argparse.Namespace, sync: str) -> tuple[Any, ...]:
    """The rules of ``--ignore-fields`` (none without it), checked now: a bad one is KNV1061."""
    path: Path | None = getattr(args, "ignore_fields", None)
    if path is None:
        return ()
    from acm_lite import errors
    from acm_lite.errors import AcmError
    from acm_lite.parse import reader
    from acm_lite.plan import ignorefields

    loaded = reader.load_documents(path)
    if not isinstance(loaded, list) or len(loaded) != 1:
        why = loaded.message if not isinstance(loaded, list) else "it must hold one YAML document"
        raise AcmError(errors.INVALID_SYNC, f"--ignore-fields: {why}", path=str(path))
    rules = ignorefields.from_spec(loaded[0])
    try:
        ignorefields.compile_rules(rules, sync)
    except AcmError as e:
        e.path = str(path)
        raise
    return rules


def _spec(args: argparse.Namespace) -> SyncSpec:
    from acm_lite.reconcile.pipeline import SyncSpec

    artifact = sourceargs.with_config_sync_fields(args, sourceargs.spec(args, UsageError))
    if artifact is not None:
        return artifact
    if not args.repo:
        raise UsageError("--repo is required (or --fleet with spec.sync.repo)")
    if args.cluster and len(args.cluster) > 1:
        raise UsageError("--cluster may be given once without --fleet")
    return SyncSpec(
        repo=args.repo,
        name=args.name,
        revision=args.revision,
        dir=args.dir,
        source_format=args.source_format,
        cluster_name=args.cluster[0] if args.cluster else None,
        namespace=args.namespace,
    )


def fleet_override(args: argparse.Namespace) -> Callable[[SyncSpec], SyncSpec]:
    """Command-line source flags win over the fleet file's sync settings."""

    artifact = sourceargs.with_config_sync_fields(args, sourceargs.spec(args, UsageError, fleet=True))
    rules = ignore_fields(args, args.name)

    def apply(spec: SyncSpec) -> SyncSpec:
        changes: dict[str, Any] = {}
        if artifact is not None:
            changes.update(sourceargs.source_fields(artifact))
        elif args.repo:  # a Git repository, also for a member whose fleet entry names a chart or image
            changes.update(
                repo=args.repo,
                revision=args.revision,
                dir=args.dir,
                source_format=args.source_format,
                source_type="git",
                helm=None,
                oci=None,
            )
        if args.name != api.DEFAULT_SYNC:
            changes["name"] = args.name
        if rules:
            changes["ignore_fields"] = rules
        return replace(spec, **changes)

    return apply


class UsageError(Exception):
    """A combination of flags that cannot work; main turns it into exit code 2."""
