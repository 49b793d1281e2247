"""Shared flags and steps of the commands that declare a source per cluster offline (vet, hydrate)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import api
from acm_lite.cli import output, sourceargs

if TYPE_CHECKING:  # the readers, validators and engines load only when a command runs (fast --help)
    from acm_lite import declare, render
    from acm_lite.errors import Problem
    from acm_lite.parse import reader
    from acm_lite.parse.clusters import ClusterTarget
    from acm_lite.policy import library
    from acm_lite.source.snapshot import Snapshot

DEFAULT_CLUSTER = "defaultcluster"
# render.Options' defaults, as the flags' defaults (tests/unit/test_cli_habits.py keeps them equal)
RENDER_TIMEOUT_SECONDS = 300.0
RENDER_MAX_OUTPUT_MIB = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help="the repository directory (default: the current directory; none with --source-type helm|oci)",
    )
    parser.add_argument(
        "--path",
        dest="path_flag",
        type=Path,
        metavar="DIR",
        help="the repository directory, nomos's spelling of PATH",
    )
    parser.add_argument(
        "--no-api-server-check",
        action="store_true",
        help="accepted as nomos accepts it; acm-lite never asks an API server here (the built-in "
        "kinds' schemas ship with it), so there is nothing to turn off",
    )
    parser.add_argument(
        "--source-format",
        choices=api.SOURCE_FORMATS,
        default=api.HIERARCHY,
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
    add_render_arguments(parser)
    sourceargs.add_offline_arguments(parser)


def prepare(args: argparse.Namespace, usage_error: type[Exception]) -> None:
    """Settle what the command reads: ``args.artifact``, the Helm chart or OCI image the source
    flags name (read as the spec says: a chart is unstructured), else the directory ``args.path``
    (the current one when none is given); ``--path`` is nomos's spelling of the directory. The
    reserved namespaces include the system namespace ``$ACM_LITE_SYSTEM_NAMESPACE`` names: a value
    that cannot name one is a usage error."""
    try:
        api.set_system_namespace(None)
    except ValueError as e:
        raise usage_error(str(e)) from e
    if getattr(args, "path_flag", None) is not None:
        if args.path is not None and args.path != args.path_flag:
            raise usage_error(f"two directories: {args.path} and --path {args.path_flag}; give one")
        args.path = args.path_flag
    args.artifact = sourceargs.offline_spec(args, usage_error)
    if args.artifact is not None:
        args.source_format = args.artifact.source_format
    elif args.path is None:
        args.path = Path(".")


def source_name(args: argparse.Namespace) -> str:
    """The source as messages name it: the directory, or the chart or image."""
    artifact = getattr(args, "artifact", None)
    return artifact.repo if artifact is not None else str(args.path)


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    """What rendering a kustomization may do; everything reaching outside the source is off."""
    group = parser.add_argument_group("rendering (a directory holding a kustomization)")
    group.add_argument(
        "--render-network",
        action="store_true",
        help="let kustomize and helm fetch remote bases, resources and Helm charts (default: off)",
    )
    group.add_argument(
        "--render-exec",
        action="store_true",
        help="let kustomize run the exec KRM functions a kustomization names (default: off)",
    )
    group.add_argument(
        "--render-alpha-plugins",
        action="store_true",
        help="let kustomize load alpha plugins (default: off)",
    )
    group.add_argument(
        "--render-timeout",
        type=positive(float),
        default=RENDER_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"stop a render after this long (default {RENDER_TIMEOUT_SECONDS:g})",
    )
    group.add_argument(
        "--render-max-output",
        type=positive(int),
        default=RENDER_MAX_OUTPUT_MIB,
        metavar="MIB",
        help=f"stop a render that prints more than this (default {RENDER_MAX_OUTPUT_MIB})",
    )


_MIB = 1024 * 1024


def positive(kind: type[int] | type[float], what: str = "a positive number") -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` above zero and finite; anything else is a usage
    error saying the value is not ``what``."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


def render_options(args: argparse.Namespace, *, cache: bool = False) -> render.Options:
    """The render flags as the render stage's options; ``cache``: keep rendered commits on disk
    too (under acm-lite's cache directory), so a later process renders nothing it rendered."""
    from acm_lite import paths, render

    return render.Options(
        allow_network=args.render_network,
        allow_exec=args.render_exec,
        allow_alpha_plugins=args.render_alpha_plugins,
        timeout_seconds=args.render_timeout,
        max_output_bytes=args.render_max_output * _MIB,
        cache_dir=paths.cache_dir() / "render" if cache else None,
    )


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
    from acm_lite.policy import library

    return library.PolicySources(tuple(args.policy_bundle), tuple(args.policies))


def targets(source: reader.ReadResult, args: argparse.Namespace) -> list[ClusterTarget]:
    """Which clusters to render: as named, the fleet's, or (like nomos) every declared cluster
    plus ``defaultcluster``."""
    from acm_lite import declare, errors
    from acm_lite.errors import AcmError
    from acm_lite.fleet import registry
    from acm_lite.parse.clusters import ClusterTarget
    from acm_lite.validate import cluster_names

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


def load(args: argparse.Namespace) -> reader.ReadResult:
    """The repository's objects: rendered by kustomize when the directory holds a kustomization
    (each named by the file it came from), else read as they are; a render that failed is
    returned as it is (a ``render.Rendered``, its problems only). A Helm chart or OCI image
    (``args.artifact``) is fetched first, as ``sync`` fetches it, into acm-lite's cache."""
    from acm_lite import declare, errors, render
    from acm_lite.errors import AcmError
    from acm_lite.reconcile import pipeline
    from acm_lite.reconcile.pipeline import SyncOptions

    artifact = getattr(args, "artifact", None)
    if artifact is not None:
        return _load_snapshot(pipeline.fetch_source(artifact, SyncOptions(), lambda _m: None), args)
    if not args.path.is_dir():
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND,
            f"{args.path} is not a directory",
            hint="give the repository's directory (a checkout)",
        )
    rendered = render.render(args.path, ".", render_options(args), source_format=args.source_format)
    if rendered is not None:
        return rendered if any(p.blocking for p in rendered.problems) else declare.from_render(rendered)
    return declare.load(args.path, args.source_format)


def _load_snapshot(snapshot: Snapshot, args: argparse.Namespace) -> reader.ReadResult:
    from acm_lite import declare, render

    rendered = render.render_snapshot(snapshot, render_options(args), source_format=args.source_format)
    if rendered is not None:
        return rendered if any(p.blocking for p in rendered.problems) else declare.from_render(rendered)
    return declare.load(snapshot.root, args.source_format)


def declare_all(args: argparse.Namespace, source: reader.ReadResult | None = None) -> list[declare.Declared]:
    """Each target cluster's declared set, with policy violations among its problems; ``source``:
    the repository as ``load`` read it already."""
    from acm_lite import declare, policy, render
    from acm_lite.policy import library

    source = source or load(args)
    if isinstance(source, render.Rendered):  # nothing to declare: the render's problems only
        return [declare.Declared(t.name, problems=list(source.problems)) for t in targets(source, args)]
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
    from acm_lite.cli import report

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
