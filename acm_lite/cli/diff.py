"""`acm-lite diff`: what `acm-lite sync` would change, as unified diffs; exit 1 when anything would."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from acm_lite.cli import clusterargs, output, rendering
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.plan import render_diff
from acm_lite.plan.changeset import Action
from acm_lite.reconcile import pipeline
from acm_lite.status import render

CHANGING = (Action.CREATE, Action.UPDATE, Action.PRUNE, Action.UNMANAGE)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "diff", help="show what a sync would change",
        description="Plan a sync without writing anything and print a unified diff per object "
                    "that would change, prunes included. Exit 0 when nothing would change, 1 when "
                    "something would, 3 on errors (as kubectl diff: >1).")
    clusterargs.add_sync_source(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    cluster = clusterargs.connect(args)
    options = pipeline.SyncOptions(plan_only=True, schema=not args.no_schema,
                                   policies=rendering.policy_sources(args))
    result = pipeline.run(clusterargs.spec(args), cluster, options)
    if not result.ok or result.changeset is None:
        print(render.problems(result.problems), file=sys.stderr)
        return ExitStatus.UNAVAILABLE
    changes = result.changeset.of(*CHANGING)
    data = {"commit": result.status.commit, "counts": result.changeset.counts(),
            "changes": [{"object": c.subject, "action": c.action.value, "reason": c.reason,
                         "diff": render_diff.unified(c)} for c in changes]}
    output.emit(data, args.output, lambda d: "".join(c["diff"] for c in d["changes"]).rstrip())
    return ExitStatus.FAILURE if changes else ExitStatus.SUCCESS
