"""`acm-lite vet`: validate a repository for every cluster it targets, as `nomos vet` does."""

from __future__ import annotations

import argparse
from typing import Any

from acm_lite.cli import output, rendering
from acm_lite.cli.exitcodes import ExitStatus


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "vet", help="validate a Config Sync repository",
        description="Validate a repository in Config Sync's hierarchical or unstructured format "
                    "for every cluster it targets. Exit 0 when clean, 1 on any blocking error.")
    rendering.add_arguments(parser)
    rendering.format_choice(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    results = rendering.render_all(args)
    blocking = any(r.blocking for r in results)
    clusters = [rendering.cluster_name(r) for r in results]
    data = {"clusters": clusters, "errors": rendering.problems_json(results)}

    def text(_data: Any) -> str:
        found = rendering.problems_text(results)
        if found:
            return found
        return f"No validation issues found ({', '.join(clusters)})."

    output.emit(data, args.output, text)
    return ExitStatus.FAILURE if blocking else ExitStatus.SUCCESS
