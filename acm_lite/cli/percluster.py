"""Shared flags and steps of the commands that declare a source per cluster offline (vet, hydrate)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from acm_lite import declare, errors, policy
from acm_lite.cli import output, report
from acm_lite.errors import AcmError, Problem
from acm_lite.fleet import registry
from acm_lite.parse import reader
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.policy import library
from acm_lite.validate import cluster_names

DEFAULT_CLUSTER = "defaultcluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("."),
        help="the repository directory (default: the current directory)",
    )
    parser.add_argument(
        "--source-format",
        choices=declare.SOURCE_FORMATS,
        default=declare.HIERARCHY,
        help="repository format (default: hierarchy)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cluster", metavar="NAME", help="render for this cluster only")
    which.add_argument("--clusters", metavar="A,B,...", help="render for these clusters")
    parser.add_argument(
        "--fleet", type=Path, metavar="FILE", help="cluster names and labels from a fleet file"
    )
    parser.add_argument("--no-schema", action="store_true", help="skip OpenAPI schema validation of objects")
    add_policy_arguments(parser)


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also enforce the Gatekeeper templates and constraints in DIR (repeatable)",
    )
    parser.add_argument(
        "--policy-bundle",
        action="append",
        default=[],
        metavar="NAME",
        help="enforce a bundle of the shipped library, e.g. pod-security-baseline (repeatable)",
    )


def policy_sources(args: argparse.Namespace) -> library.PolicySources:
    return library.PolicySources(tuple(args.policy_bundle), tuple(args.policies))


def targets(source: reader.ReadResult, args: argparse.Namespace) -> list[ClusterTarget]:
    """Which clusters to render: as named, the fleet's, or (like nomos) every declared cluster
    plus ``defaultcluster``."""
    wanted = (
        [args.cluster]
        if args.cluster
        else ([n.strip() for n in args.clusters.split(",") if n.strip()] if args.clusters else None)
    )
    for name in wanted or ():
        if not cluster_names.valid(name):
            raise AcmError(
                errors.INVALID_CLUSTER_NAME,
                f"{name!r} is not a valid cluster name: {cluster_names.RULE}",
                subject="--cluster/--clusters",
            )
    if args.fleet:
        fleet = registry.load(args.fleet)
        chosen = [c for c in fleet.clusters if wanted is None or c.name in wanted]
        return [ClusterTarget(c.name, c.labels) for c in chosen]
    if wanted is not None:
        return [ClusterTarget(n) for n in wanted]
    declared = declare.declared_clusters(source.manifests)
    return [ClusterTarget(None), *(ClusterTarget(n) for n in declared)]


def declare_all(args: argparse.Namespace) -> list[declare.Declared]:
    """Each target cluster's declared set, with policy violations among its problems."""
    if not args.path.is_dir():
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND,
            f"{args.path} is not a directory",
            hint="give the repository's directory (a checkout)",
        )
    source = declare.load(args.path, args.source_format)
    options = declare.Options(source_format=args.source_format, schema=not args.no_schema)
    extra = library.load(policy_sources(args))
    results = [declare.declare(source, t, options) for t in targets(source, args)]
    for result in results:
        if not result.blocking:
            result.problems += policy.check(result.objects, result.policy + extra)
            if result.blocking:
                result.objects = []
    return results


def cluster_name(result: declare.Declared) -> str:
    return result.cluster or DEFAULT_CLUSTER


def merged_problems(results: list[declare.Declared]) -> list[tuple[Problem, list[str]]]:
    """Each distinct problem once, with the clusters it was found for."""
    merged: dict[tuple[object, ...], tuple[Problem, list[str]]] = {}
    for result in results:
        for problem in result.problems:
            merged.setdefault(problem.identity(), (problem, []))[1].append(cluster_name(result))
    return sorted(merged.values(), key=lambda item: item[0].sort_key())


def problems_json(results: list[declare.Declared]) -> list[dict[str, Any]]:
    return [{**p.to_dict(), "clusters": clusters} for p, clusters in merged_problems(results)]


def problems_text(results: list[declare.Declared]) -> str:
    merged = merged_problems(results)
    all_clusters = [cluster_name(r) for r in results]
    notes = [
        f"clusters: {', '.join(clusters)}" if len(all_clusters) > 1 and clusters != all_clusters else ""
        for _, clusters in merged
    ]
    return report.problems([p for p, _ in merged], notes)


def format_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=output.FORMATS, default="text", help="output format (default: text)"
    )
