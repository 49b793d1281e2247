"""`acm-lite fleet list` and `acm-lite fleet status`: the clusters of a fleet at a glance."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import api
from acm_lite.cli import Subcommands, clusterargs, output
from acm_lite.cli.exitcodes import ExitStatus, for_problems

if TYPE_CHECKING:  # the fleet file's reader and the Kubernetes client load only when a command runs
    from acm_lite.fleet import fanout, registry


def register(sub: Subcommands) -> None:
    fleet = sub.add_parser(
        "fleet",
        help="the clusters of a fleet",
        description="List a fleet's clusters, or show each one's sync state.",
    )
    verbs = fleet.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for verb, text in (
        ("list", "the clusters of the fleet file, with their labels and sync"),
        (
            "status",
            "reachability, Kubernetes version, last synced commit, state "
            "(SYNCED, PENDING, ERROR, STALLED), errors and unhealthy objects of each cluster",
        ),
    ):
        parser = verbs.add_parser(verb, help=text, description=text[0].upper() + text[1:] + ".")
        parser.add_argument(
            "--fleet",
            type=Path,
            metavar="FILE",
            default=os.environ.get("ACM_LITE_FLEET"),
            required="ACM_LITE_FLEET" not in os.environ,
            help="fleet file (default: $ACM_LITE_FLEET)",
        )
        parser.add_argument(
            "--cluster", action="append", metavar="NAME", help="only this cluster (repeatable)"
        )
        parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")
        clusterargs.add_system_namespace(parser)
        parser.set_defaults(handler=_list if verb == "list" else _status)


def _list(args: argparse.Namespace) -> int:
    from acm_lite.fleet import registry

    fleet = registry.load(args.fleet)
    rows = [
        {
            "name": c.name,
            "provider": c.provider,
            "labels": c.labels,
            "kubeconfig": c.kubeconfig or ("secret:" + c.secret_ref["name"] if c.secret_ref else "(default)"),
            "context": c.context or "",
            "sourceType": c.sync.source_type,
            "repo": _source(c.sync),
            "revision": _revision(c.sync),
            "dir": c.sync.oci.dir if c.sync.source_type == api.OCI and c.sync.oci else c.sync.dir,
            "sourceFormat": c.sync.source_format,
        }
        for c in fleet.select(args.cluster)
    ]
    output.emit(
        {"fleet": fleet.name, "clusters": rows},
        args.output,
        lambda d: output.table(
            [
                [
                    r["name"],
                    r["provider"],
                    ",".join(f"{k}={v}" for k, v in r["labels"].items()),
                    r["context"],
                    f"{r['repo'] or ''}@{r['revision']}:{r['dir']}",
                ]
                for r in d["clusters"]
            ],
            ["NAME", "PROVIDER", "LABELS", "CONTEXT", "SOURCE"],
        ),
    )
    return ExitStatus.SUCCESS


def _source(sync: registry.FleetSync) -> str | None:
    """The repository, chart or image a member syncs, without credentials."""
    from acm_lite.source.auth import strip_userinfo

    if sync.source_type == api.HELM and sync.helm:
        return sync.helm.display
    if sync.source_type == api.OCI and sync.oci:
        return strip_userinfo(sync.oci.image)
    return sync.repo and strip_userinfo(sync.repo)


def _revision(sync: registry.FleetSync) -> str:
    if sync.source_type == api.HELM and sync.helm:
        return sync.helm.version or "(newest)"
    if sync.source_type == api.OCI:
        return "(image)"
    return sync.revision


def _status(args: argparse.Namespace) -> int:
    from acm_lite.fleet import fanout, registry

    clusterargs.use_system_namespace(args)
    fleet = registry.load(args.fleet)
    states = fanout.states(fleet.select(args.cluster))
    rows = [s.to_dict() for s in states]

    def text(data: dict[str, Any]) -> str:
        table = output.table(
            [
                [
                    r["name"],
                    r["provider"],
                    "yes" if r["reachable"] else "no",
                    r["version"],
                    r["state"],
                    (r["commit"] or "")[:12],
                    str(r["errors"]),
                    str(r["managedObjects"]),
                    str(r["unhealthyObjects"]),
                ]
                for r in data["clusters"]
            ],
            ["NAME", "PROVIDER", "REACHABLE", "VERSION", "STATE", "COMMIT", "ERRORS", "MANAGED", "UNHEALTHY"],
        )
        notes = [f"  {r['name']}: {r['message']}" for r in data["clusters"] if r["message"]]
        return "\n".join([table, *notes])

    output.emit({"fleet": fleet.name, "clusters": rows}, args.output, text)
    return _status_exit(states)


def _status_exit(states: list[fanout.ClusterState]) -> int:
    """0 when every cluster was read; 3 when none could be reached (retrying may help); 1 when
    some could not be read, as the job ran and found problems."""
    failed = [s.problem for s in states if s.problem is not None]
    if not failed:
        return ExitStatus.SUCCESS
    if len(failed) == len(states):
        return for_problems(failed)
    return ExitStatus.FAILURE
