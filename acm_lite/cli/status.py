"""`acm-lite status`: the state of each sync on a cluster, like `nomos status`."""

from __future__ import annotations

import argparse
from typing import Any

from acm_lite import api
from acm_lite.cli import Subcommands, clusterargs, output
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.status import store


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "status",
        help="show the syncs of a cluster",
        description="Show each sync's state (SYNCED, PENDING, ERROR, STALLED),"
        " commit, errors and managed objects.",
    )
    parser.add_argument("--name", help="only this sync")
    clusterargs.add_connection(parser)
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    parser.set_defaults(handler=handle)


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    return {
        "name": item["metadata"]["name"],
        "spec": item.get("spec") or {},
        "state": status.get("state", "PENDING"),
        "commit": status.get("commit"),
        "lastSyncedCommit": status.get("lastSyncedCommit"),
        "errors": status.get("errors") or [],
        "counts": status.get("counts") or {},
        "managedObjects": status.get("managedObjects", 0),
        "stage": status.get("stage", ""),
        "message": status.get("message", ""),
        "lastUpdate": status.get("lastUpdate"),
        **({"rendering": status["rendering"]} if status.get("rendering") else {}),
    }


def _text(data: dict[str, Any]) -> str:
    if not data["syncs"]:
        return f"No syncs in namespace {api.SYSTEM_NAMESPACE}."
    rows = [
        [
            s["name"],
            s["state"],
            (s["commit"] or s["lastSyncedCommit"] or "")[:12],
            str(len(s["errors"])),
            str(s["managedObjects"]),
            s["lastUpdate"] or "",
        ]
        for s in data["syncs"]
    ]
    lines = [output.table(rows, ["NAME", "STATE", "COMMIT", "ERRORS", "MANAGED", "LAST UPDATE"])]
    for sync in data["syncs"]:
        if sync.get("message"):
            lines.append(f"  {sync['name']}: {sync['message']}")
        if sync.get("rendering"):
            lines.append(f"  {sync['name']}: {_rendering(sync['rendering'])}")
        for err in sync["errors"]:
            where = f" ({err['source']})" if err.get("source") else ""
            lines.append(f"  {sync['name']}: {err['code']} {err['name']}: {err['message']}{where}")
    return "\n".join(lines)


def _rendering(rendering: dict[str, Any]) -> str:
    """One line on the render the status records: its outcome, the kustomization, the tools."""
    tools = ", ".join(f"{k} {v}" for k, v in sorted((rendering.get("tools") or {}).items()))
    where = f" ({rendering['kustomization']})" if rendering.get("kustomization") else ""
    return f"{rendering.get('message', '')}{where}" + (f" with {tools}" if tools else "")


def handle(args: argparse.Namespace) -> int:
    cluster = clusterargs.connect(args)
    items = store.list_syncs(cluster)
    if args.name:
        items = [i for i in items if i["metadata"]["name"] == args.name]
    output.emit({"syncs": [_entry(i) for i in items]}, args.output, _text)
    return ExitStatus.SUCCESS
