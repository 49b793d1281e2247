"""`acm-lite preview`: what a change to the fleet's repository would do to every cluster, as a
pull-request comment (Markdown) or JSON; exit 1 when it introduces blocking problems."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import api
from acm_lite.cli import Subcommands, clusterargs, output, percluster
from acm_lite.cli.clusterargs import UsageError
from acm_lite.cli.exitcodes import ExitStatus, for_problems

if TYPE_CHECKING:  # the planner, readers and client load only when the command runs (fast --help)
    from acm_lite.fleet import preview

SHAPE_VERSION = 1  # the JSON shape's version (docs/preview.md); bumped on incompatible changes


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "preview",
        help="preview a pull request's effect on every cluster",
        description="For every cluster of a fleet (or one cluster with --repo), what the head "
        "revision would create, change, prune and leave, and the vet errors and policy violations "
        "it introduces or fixes against the base revision, as Markdown for a pull-request comment "
        "(-o json: the full report). Nothing is written to any cluster. A cluster that cannot be "
        "reached is planned offline. Exit 0 when no blocking problem is introduced, 1 when one is, "
        "3 when a repository or cluster could not be previewed.",
    )
    parser.add_argument(
        "--base", required=True, metavar="REV", help="the revision merged into (branch, tag, commit)"
    )
    parser.add_argument("--head", default="HEAD", metavar="REV", help="the proposed revision (default: HEAD)")
    parser.add_argument(
        "--fleet",
        type=Path,
        metavar="FILE",
        default=os.environ.get("ACM_LITE_FLEET"),
        help="fleet file: preview every cluster of it (default: $ACM_LITE_FLEET)",
    )
    parser.add_argument(
        "--repo",
        metavar="URL|DIR",
        help="the Git repository (a URL or a local clone); with --fleet, instead of the fleet's "
        "repositories; without, preview the one cluster --kubeconfig/--context name",
    )
    parser.add_argument(
        "--cluster",
        action="append",
        metavar="NAME",
        help="with --fleet: only this cluster (repeatable); without: the cluster's name for selectors",
    )
    parser.add_argument("--dir", default=".", help="without --fleet: the directory of the repository to sync")
    parser.add_argument(
        "--source-format",
        choices=api.SOURCE_FORMATS,
        default=api.HIERARCHY,
        help="without --fleet (default: hierarchy)",
    )
    parser.add_argument(
        "--name", default=api.DEFAULT_SYNC, help=f"the sync's name (default: {api.DEFAULT_SYNC})"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="do not read live objects: plan against the inventory acm-lite recorded on each cluster "
        "(or the base revision's objects when that cannot be read); changes become unknown",
    )
    parser.add_argument(
        "--parallel", type=percluster.positive(int), default=4, metavar="N", help="clusters at once"
    )
    parser.add_argument(
        "--max-bytes",
        type=percluster.positive(int),
        default=65536,
        metavar="N",
        help="cut cluster sections beyond this size of the Markdown (default 65536, GitHub's limit)",
    )
    parser.add_argument(
        "--report-url", metavar="URL", help="where the full report is: linked when sections are cut"
    )
    parser.add_argument(
        "--json-out", type=Path, metavar="FILE", help="also write the full report as JSON to FILE"
    )
    parser.add_argument("--no-schema", action="store_true", help="skip OpenAPI schema checks")
    percluster.add_policy_arguments(parser)
    percluster.add_render_arguments(parser)
    clusterargs.add_connection(parser)
    parser.add_argument(
        "-o",
        "--output",
        choices=output.FORMATS,
        default="text",
        help="text (Markdown, default), json or yaml",
    )
    parser.set_defaults(handler=handle)


def _members(args: argparse.Namespace) -> tuple[str, list[Any]]:
    from acm_lite.fleet import registry

    if args.fleet:
        fleet = registry.load(args.fleet)
        return fleet.name, fleet.select(args.cluster)
    if not args.repo:
        raise UsageError("give --fleet FILE, or --repo URL|DIR for one cluster")
    if args.cluster and len(args.cluster) > 1:
        raise UsageError("without --fleet, --cluster names the one cluster previewed")
    name = args.cluster[0] if args.cluster else (args.context or percluster.DEFAULT_CLUSTER)
    sync = registry.FleetSync(repo=args.repo, dir=args.dir, source_format=args.source_format, name=args.name)
    return "", [registry.FleetCluster(name, kubeconfig=args.kubeconfig, context=args.context, sync=sync)]


def report(fleet: str, args: argparse.Namespace, previews: list[preview.ClusterPreview]) -> dict[str, Any]:
    return {
        "version": SHAPE_VERSION,
        "fleet": fleet or None,
        "base": args.base,
        "head": args.head,
        "offline": args.offline,
        "blocking": any(p.blocking for p in previews),
        "clusters": [p.to_dict() for p in previews],
    }


def exit_status(previews: list[preview.ClusterPreview]) -> ExitStatus:
    """1 when the head introduces a blocking problem; else, when a cluster could not be previewed,
    3 if the world is to blame (a fetch failed) and 1 if the input is; 0 otherwise."""
    if any(p.blocking for p in previews):
        return ExitStatus.FAILURE
    return for_problems(p.error for p in previews if p.error is not None)


def handle(args: argparse.Namespace) -> int:
    from acm_lite.cli import previewmd
    from acm_lite.fleet import preview
    from acm_lite.reconcile.pipeline import SyncOptions

    clusterargs.use_system_namespace(args)
    if args.repo and Path(args.repo).is_dir():
        args.repo = str(Path(args.repo).resolve())
    fleet, members = _members(args)
    options = SyncOptions(
        schema=not args.no_schema,
        policies=percluster.policy_sources(args),
        render=percluster.render_options(args, cache=True),
    )
    request = preview.Request(args.base, args.head, offline=args.offline, options=options, repo=args.repo)
    previews = preview.preview_all(members, request, parallel=args.parallel)
    data = report(fleet, args, previews)
    if args.json_out:
        args.json_out.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    full = args.report_url or (str(args.json_out) if args.json_out else "")
    output.emit(
        data, args.output, lambda d: previewmd.render(d, max_bytes=args.max_bytes, full_report=full).rstrip()
    )
    for p in previews:
        if p.error is not None:
            print(f"{p.name}: {p.error.render()}", file=sys.stderr)
    return exit_status(previews)
