"""`acm-lite sync --once`: pull, validate, plan and apply a repository to one cluster."""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import errors
from acm_lite.cli import Subcommands, clusterargs, output, percluster, report
from acm_lite.cli.exitcodes import ExitStatus, for_problems
from acm_lite.errors import AcmError

if TYPE_CHECKING:  # the pipeline and the Kubernetes client load only when a command runs (fast --help)
    from acm_lite.apply import waiting
    from acm_lite.fleet import fanout
    from acm_lite.objects import ObjectId
    from acm_lite.plan.changeset import Result
    from acm_lite.reconcile import pipeline
    from acm_lite.reconcile.pipeline import SyncResult


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "sync",
        help="sync a repository to a cluster",
        description="Run the pipeline once: fetch, validate, plan against live state, apply with "
        "server-side apply, prune what left the source, record status. A blocking "
        "error before apply applies nothing. Exit 0 when synced without errors.",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run one pass and exit (the loop is `acm-lite serve`)",
    )
    clusterargs.add_sync_source(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="plan and have the API server validate every write, change nothing",
    )
    parser.add_argument(
        "--no-force-conflicts",
        dest="force_conflicts",
        action="store_false",
        help="fail instead of taking over fields another field manager owns",
    )
    parser.add_argument(
        "--allow-prune-all",
        action="store_true",
        help="allow a commit that would prune every object of the sync",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="objects applied at once (default 16)"
    )
    parser.add_argument(
        "--crd-timeout",
        type=percluster.positive(float, "a positive number of seconds"),
        default=60.0,
        metavar="SECONDS",
        help="how long CRDs the sync applies get to become Established before "
        "the objects after them are postponed (default 60)",
    )
    clusterargs.add_wait(parser)
    add_pass_timeout(parser)
    parser.set_defaults(handler=handle)


def add_pass_timeout(parser: argparse.ArgumentParser) -> None:
    """The pass deadline; how long one request may take is $ACM_LITE_REQUEST_TIMEOUT."""
    parser.add_argument(
        "--pass-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="stop sending requests once a pass has run this long (default "
        "1800; 0: no limit); $ACM_LITE_REQUEST_TIMEOUT bounds one request",
    )


def health_json(waited: waiting.Waited) -> dict[str, Any]:
    """What waiting saw: the counts per status, whether the time ran out, and each object's
    health (status, reason, message)."""
    return {
        "seconds": round(waited.seconds, 3),
        "timedOut": waited.timed_out,
        "counts": waited.counts(),
        "objects": [
            {"object": str(t.id), **({"deleted": True} if t.gone else {}), **_health(waited, t.id)}
            for t in waited.targets
        ],
    }


def _health(waited: waiting.Waited, oid: ObjectId) -> dict[str, str]:
    seen = waited.health.get(oid)
    if seen is None:
        return {"status": "Unknown", "reason": "NotRead", "message": "not read"}
    return {"status": seen.status.value, "reason": seen.reason, "message": seen.message}


def result_json(result: SyncResult) -> dict[str, Any]:
    from acm_lite.plan.changeset import Outcome

    waited = result.waited
    objects = [r.to_dict() for r in result.results if r.outcome is not Outcome.UNCHANGED]
    if waited is not None:
        for row, r in zip(
            objects, (r for r in result.results if r.outcome is not Outcome.UNCHANGED), strict=True
        ):
            if r.change.id in waited.health:
                row["health"] = _health(waited, r.change.id)
    return {
        "sync": result.spec.name,
        "commit": result.status.commit,
        "state": result.status.state.value,
        "counts": result.counts,
        "durationSeconds": result.status.durations,
        "stage": result.status.stage,
        "applied": result.applied,
        "planned": result.planned,
        "errors": [p.to_dict() for p in result.problems],
        "statusRecorded": result.status_error is None,
        **({"statusError": result.status_error.to_dict()} if result.status_error else {}),
        "objects": objects,
        **({"health": health_json(waited)} if waited is not None else {}),
    }


def exit_status(result: SyncResult) -> ExitStatus:
    """As for any job's problems (1 when the input or an object must change, 3 when only the
    world failed: the API server or the source out of reach); 3 too when the pass went well but
    its status could not be recorded: retrying may help."""
    code = for_problems(result.problems)
    if code is ExitStatus.SUCCESS and result.status_error is not None:
        return ExitStatus.UNAVAILABLE
    return code


def fleet_json(outcomes: list[fanout.ClusterResult]) -> list[dict[str, Any]]:
    rows = []
    for o in outcomes:
        result = o.result
        rows.append(
            {
                "name": o.cluster.name,
                "provider": o.cluster.provider,
                "state": result.status.state.value if result else "ERROR",
                "commit": result.status.commit if result else None,
                "counts": result.counts if result else {},
                "errors": [p.to_dict() for p in o.problems],
                "ok": o.ok,
                "seconds": round(o.seconds, 2),
            }
        )
    return rows


def fleet_text(rows: list[dict[str, Any]]) -> str:
    table = output.table(
        [
            [
                r["name"],
                r["provider"],
                r["state"],
                (r["commit"] or "")[:12],
                *(str(r["counts"].get(k, 0)) for k in ("created", "configured", "pruned", "failed")),
                str(len(r["errors"])),
                f"{r['seconds']:.1f}s",
            ]
            for r in rows
        ],
        [
            "CLUSTER",
            "PROVIDER",
            "STATE",
            "COMMIT",
            "CREATED",
            "CONFIGURED",
            "PRUNED",
            "FAILED",
            "ERRORS",
            "TIME",
        ],
    )
    details = [
        f"  {r['name']}: {e['code']} {e['name']}: {e['message']}"
        + (f" ({e['source']})" if e.get("source") else "")
        for r in rows
        for e in r["errors"]
    ]
    return "\n".join([table, *details])


def _sync_fleet(args: argparse.Namespace, options: pipeline.SyncOptions) -> int:
    from acm_lite.fleet import fanout, registry

    fleet = registry.load(args.fleet)
    outcomes = fanout.sync_all(
        fleet.select(args.cluster),
        options,
        parallel=args.parallel,
        overrides=clusterargs.fleet_override(args),
    )
    rows = fleet_json(outcomes)
    output.emit({"fleet": fleet.name, "clusters": rows}, args.output, lambda d: fleet_text(d["clusters"]))
    if all(o.ok for o in outcomes):
        return ExitStatus.SUCCESS
    if all(o.result is None for o in outcomes):  # no cluster could even be tried
        return for_problems(p for o in outcomes for p in o.problems)
    return ExitStatus.FAILURE


_REMOTE = re.compile(r"^[A-Za-z][-+.A-Za-z0-9]*://|^[^/]+:")  # a URL, or scp-like host:path


def check_local_repo(repo: str) -> None:
    """A --repo that names a local path must exist: otherwise Git is asked to fetch it as a URL
    and the pass fails with a transient fetch error rather than saying the path is missing."""
    if _REMOTE.match(repo):
        return
    path = Path(repo).expanduser()
    if not path.exists():
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND,
            f"--repo {repo}: no such file or directory",
            path=repo,
            hint="give a Git URL, a local Git repository or a directory",
        )


def handle(args: argparse.Namespace) -> int:
    from acm_lite.plan.changeset import Outcome
    from acm_lite.reconcile import pipeline

    clusterargs.use_system_namespace(args)
    options = pipeline.SyncOptions(
        dry_run=args.dry_run,
        force_conflicts=args.force_conflicts,
        allow_prune_all=args.allow_prune_all,
        concurrency=args.concurrency,
        crd_timeout=args.crd_timeout,
        reconcile_timeout=args.timeout,
        wait=args.wait and not args.dry_run,
        schema=not args.no_schema,
        policies=percluster.policy_sources(args),
        deadline=args.pass_timeout,
        render=percluster.render_options(args, cache=True),
    )
    if args.wait and args.dry_run:
        output.progress("--wait: a dry run applies nothing, so there is nothing to wait for")
    if args.fleet:
        if args.repo:
            check_local_repo(args.repo)
        return _sync_fleet(args, options)
    spec = clusterargs.spec(args)
    if spec.source_type == "git":
        check_local_repo(spec.repo)
    cluster = clusterargs.connect(args)
    text = args.output == "text"

    def on_result(r: Result) -> None:
        if text and r.outcome is not Outcome.UNCHANGED:
            print(report.result_line(r, dry_run=args.dry_run), flush=True)

    result = pipeline.run(
        spec, cluster, options, progress=output.progress if text else lambda _m: None, on_result=on_result
    )
    if result.exception is not None and getattr(args, "debug", False):
        traceback.print_exception(result.exception, file=sys.stderr)
    if text:
        problems = report.problems(result.problems)
        if problems:
            print(problems, file=sys.stderr)
    output.emit(result_json(result), args.output, lambda _d: report.summary(result, args.dry_run))
    return exit_status(result)
