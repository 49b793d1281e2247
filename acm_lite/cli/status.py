"""`acm-lite status`: the state of each sync on a cluster (RootSyncs, then RepoSyncs), like
`nomos status`."""

from __future__ import annotations

import argparse
from typing import Any

from acm_lite import api
from acm_lite.cli import Subcommands, clusterargs, output
from acm_lite.cli.exitcodes import ExitStatus


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "status",
        help="show the syncs of a cluster",
        description="Show each sync's state (SYNCED, PENDING, ERROR, STALLED),"
        " commit, errors and managed objects; with --resources, each managed object's health.",
    )
    parser.add_argument("--name", help="only this sync (a RepoSync as NAMESPACE/NAME)")
    parser.add_argument(
        "--resources",
        action="store_true",
        help="list each managed object's health (Current, InProgress, Failed, Terminating, "
        "NotFound, Unknown) with its reason and message, as the daemon last recorded it",
    )
    clusterargs.add_connection(parser)
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")
    parser.set_defaults(handler=handle)


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    meta = item["metadata"]
    repo_sync = item.get("kind") == api.REPO_SYNC
    return {
        "name": f"{meta.get('namespace')}/{meta['name']}" if repo_sync else meta["name"],
        "kind": api.REPO_SYNC if repo_sync else api.ROOT_SYNC,
        # the name its objects, inventory and health record carry (a RepoSync's reconciler's)
        "sync": api.reconciler_name(str(meta.get("namespace")), str(meta["name"]))
        if repo_sync
        else meta["name"],
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
        **({"objectHealth": status["objectHealth"]} if isinstance(status.get("objectHealth"), dict) else {}),
        **({"conditions": status["conditions"]} if isinstance(status.get("conditions"), list) else {}),
    }


def _resources(cluster: Any, syncs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every managed object's recorded health, sync by sync."""
    from acm_lite.status import resourcestore

    out = []
    for sync in syncs:
        for entry in resourcestore.entries(resourcestore.read(cluster, sync["sync"])):
            out.append({"sync": sync["name"], **entry.to_dict()})
    return out


def _resource_text(data: dict[str, Any]) -> str:
    rows = [
        [
            r["sync"],
            f"{r['kind']}.{r['group']}" if r["group"] else r["kind"],
            f"{r['namespace']}/{r['name']}" if r["namespace"] else r["name"],
            r["status"],
            ": ".join(x for x in (r.get("reason", ""), r.get("message", "")) if x),
            _drift_text(r.get("lastDrift")),
        ]
        for r in data["resources"]
    ]
    if not rows:
        return "No object health recorded."
    return output.table(rows, ["SYNC", "KIND", "NAME", "STATUS", "MESSAGE", "LAST DRIFT"])


def _drift_text(drift: Any) -> str:
    """``2026-01-02T03:04:05Z kubectl-edit (Update) as alice``: who last changed the object."""
    if not isinstance(drift, dict):
        return ""
    operation = drift.get("operation", "")
    who = "" if operation == "Delete" else str(drift.get("manager", "unknown"))
    if operation and who:
        who += f" ({operation})"
    elif operation:
        who = "deleted"
    if drift.get("user"):
        who += f" as {drift['user']}"
    return f"{drift.get('time', '')} {who}".strip()


def _text(data: dict[str, Any]) -> str:
    if not data["syncs"]:
        return f"No syncs in namespace {api.system_namespace()}."
    rows = [
        [
            s["name"],
            s["state"],
            (s["commit"] or s["lastSyncedCommit"] or "")[:12],
            str(len(s["errors"])),
            str(s["managedObjects"]),
            _ready(s),
            s["lastUpdate"] or "",
        ]
        for s in data["syncs"]
    ]
    lines = [output.table(rows, ["NAME", "STATE", "COMMIT", "ERRORS", "MANAGED", "READY", "LAST UPDATE"])]
    for sync in data["syncs"]:
        if sync.get("message"):
            lines.append(f"  {sync['name']}: {sync['message']}")
        ready = next((c for c in sync.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") != "True" and ready.get("message"):
            lines.append(f"  {sync['name']}: not ready: {ready['message']}")
        if sync.get("rendering"):
            lines.append(f"  {sync['name']}: {_rendering(sync['rendering'])}")
        for err in sync["errors"]:
            where = f" ({err['source']})" if err.get("source") else ""
            lines.append(f"  {sync['name']}: {err['code']} {err['name']}: {err['message']}{where}")
    return "\n".join(lines)


def _ready(sync: dict[str, Any]) -> str:
    """The Ready condition's status (True, False), or "-" before a pass recorded conditions."""
    for c in sync.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return str(c.get("status", "-"))
    return "-"


def _rendering(rendering: dict[str, Any]) -> str:
    """One line on the render the status records: its outcome, the kustomization, the tools."""
    tools = ", ".join(f"{k} {v}" for k, v in sorted((rendering.get("tools") or {}).items()))
    where = f" ({rendering['kustomization']})" if rendering.get("kustomization") else ""
    return f"{rendering.get('message', '')}{where}" + (f" with {tools}" if tools else "")


def _repo_syncs(cluster: Any) -> list[dict[str, Any]]:
    """The cluster's RepoSyncs; none when this user may not list them in every namespace."""
    from acm_lite import errors
    from acm_lite.errors import AcmError
    from acm_lite.status import store

    try:
        return [{**i, "kind": api.REPO_SYNC} for i in store.list_repo_syncs(cluster) if i.get("metadata")]
    except AcmError as e:
        if e.code is errors.INSUFFICIENT_PERMISSION:
            return []
        raise


def handle(args: argparse.Namespace) -> int:
    from acm_lite.status import store

    cluster = clusterargs.connect(args)
    items = store.list_syncs(cluster) + _repo_syncs(cluster)
    syncs = [_entry(i) for i in items]
    if args.name:
        syncs = [s for s in syncs if args.name in (s["name"], s["sync"])]
    if args.resources:
        found = {"syncs": syncs, "resources": _resources(cluster, syncs)}
        output.emit(found, args.output, _resource_text)
    else:
        output.emit({"syncs": syncs}, args.output, _text)
    return ExitStatus.SUCCESS
