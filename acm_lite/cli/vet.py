"""`acm-lite vet`: validate a repository for every cluster it targets, as `nomos vet` does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import errors
from acm_lite.cli import Subcommands, output, percluster
from acm_lite.cli.clusterargs import UsageError
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.errors import Problem

if TYPE_CHECKING:  # the reader and validators load only when the command runs (fast --help)
    from acm_lite.parse import reader


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "vet",
        help="validate a Config Sync repository",
        description="Validate a repository in Config Sync's hierarchical or unstructured format "
        "for every cluster it targets, or a Helm chart or OCI image (--source-type helm|oci) as "
        "sync would read it. Exit 0 when clean, 1 on any blocking error.",
    )
    percluster.add_arguments(parser)
    percluster.format_choice(parser)
    parser.add_argument(
        "--keep-output",
        nargs="?",
        const=Path("compiled"),
        type=Path,
        metavar="DIR",
        help="also write each cluster's resolved objects to DIR (default: compiled) as hydrate "
        "does, for the clusters without blocking errors (nomos vet --keep-output; its --output DIR "
        "is --keep-output=DIR here, -o/--output being the format)",
    )
    parser.set_defaults(handler=handle)


def named_clusters(args: argparse.Namespace) -> list[str]:
    if args.cluster:
        return [args.cluster]
    return [n.strip() for n in (args.clusters or "").split(",") if n.strip()]


def unknown_clusters(args: argparse.Namespace, source: reader.ReadResult | None) -> tuple[list[str], str]:
    """Clusters named with --cluster/--clusters that nothing declares, and where they were looked
    for: the fleet file with --fleet, else the repository (its Cluster objects and
    cluster-name-selector annotations). Vetting such a name silently checks a cluster that does
    not exist, usually a typo."""
    from acm_lite import declare
    from acm_lite.fleet import registry

    named = named_clusters(args)
    if not named:
        return [], ""
    if args.fleet:
        known = {c.name for c in registry.load(args.fleet).clusters}
        return [n for n in named if n not in known], f"fleet {args.fleet}"
    if source is None:
        return [], ""  # declaring reports the missing directory
    known = set(declare.declared_clusters(source.manifests))
    return [n for n in named if n not in known], f"repository {percluster.source_name(args)}"


def _unknown(names: list[str], where: str) -> Problem:
    return Problem(
        errors.UNKNOWN_CLUSTER,
        f"cluster {', '.join(repr(n) for n in names)} is not declared in the {where}",
        hint="check the name; clusters come from clusterregistry/ Cluster objects, "
        "cluster-name-selector annotations, or the fleet file",
    )


def handle(args: argparse.Namespace) -> int:
    percluster.prepare(args, UsageError)
    source = percluster.load(args) if args.artifact is not None or args.path.is_dir() else None
    unknown, where = unknown_clusters(args, source)
    if unknown and args.fleet:  # the fleet is the list of clusters: refuse
        problem = _unknown(unknown, where)
        print(f"acm-lite: error: {problem.render()}", file=sys.stderr)
        output.emit({"errors": [problem.to_dict()]}, args.output, lambda _d: "")
        return ExitStatus.USAGE
    results = percluster.declare_all(args, source)
    if unknown:
        for result in results:
            result.problems.append(_unknown(unknown, where))
    blocking = any(r.blocking for r in results)
    if args.keep_output is not None:
        from acm_lite.cli import hydrate

        for result in results:
            if not result.blocking:
                hydrate.write(args.keep_output, percluster.cluster_name(result), result.objects, flat=False)
    clusters = [percluster.cluster_name(r) for r in results]
    data = {"clusters": clusters, "errors": percluster.problems_json(results)}

    def text(_data: Any) -> str:
        found = percluster.problems_text(results)
        if found:
            return found
        return f"No validation issues found ({', '.join(clusters)})."

    output.emit(data, args.output, text)
    return ExitStatus.FAILURE if blocking else ExitStatus.SUCCESS
