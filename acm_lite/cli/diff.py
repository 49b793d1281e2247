"""`acm-lite diff`: what `acm-lite sync` would change, as unified diffs; exit 1 when anything would."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from acm_lite.cli import Subcommands, clusterargs, output, percluster, report
from acm_lite.cli.exitcodes import ExitStatus

if TYPE_CHECKING:  # the pipeline and the Kubernetes client load only when a command runs (fast --help)
    from acm_lite.reconcile import pipeline
    from acm_lite.reconcile.pipeline import SyncResult


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "diff",
        help="show what a sync would change",
        description="Plan a sync without writing anything and print a unified diff per object "
        "that would change, prunes included. Exit 0 when nothing would change, 1 when "
        "something would, 3 on errors (as kubectl diff: >1).",
    )
    clusterargs.add_sync_source(parser)
    clusterargs.add_wait(parser, applies=False)
    parser.set_defaults(handler=handle)


def _data(result: SyncResult) -> dict[str, Any]:
    from acm_lite.plan import render_diff
    from acm_lite.plan.changeset import Action

    assert result.changeset is not None
    changes = result.changeset.of(Action.CREATE, Action.UPDATE, Action.PRUNE, Action.UNMANAGE)
    return {
        "commit": result.status.commit,
        "counts": result.changeset.counts(),
        "changes": [
            {
                "object": c.subject,
                "action": c.action.value,
                "reason": c.reason,
                "diff": render_diff.unified(c),
            }
            for c in changes
        ],
    }


def _fleet(args: argparse.Namespace, options: pipeline.SyncOptions) -> int:
    from acm_lite.fleet import fanout, registry

    fleet = registry.load(args.fleet)
    outcomes = fanout.sync_all(
        fleet.select(args.cluster),
        options,
        parallel=args.parallel,
        overrides=clusterargs.fleet_override(args),
    )
    clusters, failed = [], False
    for o in outcomes:
        if not o.ok or o.result is None or o.result.changeset is None:
            failed = True
            print(f"# {o.cluster.name}\n{report.problems(o.problems)}", file=sys.stderr)
            continue
        clusters.append({"name": o.cluster.name, **_data(o.result)})
    output.emit(
        {"fleet": fleet.name, "clusters": clusters},
        args.output,
        lambda d: "\n".join(
            f"# {c['name']}: {sum(1 for _ in c['changes'])} change(s)\n"
            + "".join(x["diff"] for x in c["changes"])
            for c in d["clusters"]
        ).rstrip(),
    )
    if failed:
        return ExitStatus.UNAVAILABLE
    return ExitStatus.FAILURE if any(c["changes"] for c in clusters) else ExitStatus.SUCCESS


def handle(args: argparse.Namespace) -> int:
    from acm_lite.reconcile import pipeline

    clusterargs.use_system_namespace(args)
    options = pipeline.SyncOptions(
        plan_only=True,
        schema=not args.no_schema,
        policies=percluster.policy_sources(args),
        render=percluster.render_options(args, cache=True),
    )
    if args.wait:
        output.progress("--wait: diff applies nothing, so there is nothing to wait for")
    if args.fleet:
        return _fleet(args, options)
    spec = clusterargs.spec(args)
    result = pipeline.run(spec, clusterargs.connect(args), options)
    if not result.ok or result.changeset is None:
        print(report.problems(result.problems), file=sys.stderr)
        return ExitStatus.UNAVAILABLE
    data = _data(result)
    output.emit(data, args.output, lambda d: "".join(c["diff"] for c in d["changes"]).rstrip())
    return ExitStatus.FAILURE if data["changes"] else ExitStatus.SUCCESS
