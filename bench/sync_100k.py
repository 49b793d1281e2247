"""A sync of 100,000 objects (95,000 ConfigMaps + 5,000 Deployments in 10 namespaces) into an empty
local control plane, then its no-op re-sync, each as a new ``acm-lite sync --once`` process:
wall time, the process's peak RSS, and the inventory it leaves (how many ResourceInventory
objects, the largest one's size against etcd's 1.5 MiB request limit, which the local etcd keeps).
The no-op re-sync also counts the write requests the API server saw (target 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apiserver_metrics  # bench/apiserver_metrics.py
import sync_5500  # bench/sync_5500.py: the objects and an empty control plane of its own

from acm_lite import api
from acm_lite.apply import inventory_parts
from acm_lite.cluster.client import Cluster
from acm_lite.status import store

ETCD_LIMIT = 1536 * 1024


def run_sync(repo: Path, kubeconfig: str, work: Path) -> tuple[float, int, dict[str, Any]]:
    """One ``acm-lite sync --once`` process: seconds, peak RSS in bytes, its JSON result."""
    out = work / "result.json"
    started = time.perf_counter()
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "sync",
                "--once",
                "--repo",
                str(repo),
                "--revision",
                "main",
                "--source-format",
                "unstructured",
                "--name",
                "bench",
                "--kubeconfig",
                kubeconfig,
                "-o",
                "json",
            ],
            stdout=sink,
            env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")},
        )
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = json.loads(out.read_text())
    assert os.waitstatus_to_exitcode(status) == 0 and not result["errors"], result["errors"][:3]
    return seconds, usage.ru_maxrss * 1024, result


def inventory_sizes(cluster: Cluster) -> list[int]:
    """The size of each ResourceInventory of the sync, as stored (compact JSON)."""
    path = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/resourceinventories"
    items = cluster.request("GET", path, query={"labelSelector": inventory_parts.selector("bench")})["items"]
    return [len(json.dumps(i, separators=(",", ":"))) for i in items]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configmaps", type=int, default=95_000)
    parser.add_argument("--deployments", type=int, default=5_000)
    args = parser.parse_args()
    total = args.configmaps + args.deployments + sync_5500.NAMESPACES
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    try:
        repo = sync_5500.write_dir(
            work / "repo", sync_5500.objects("bench", args.configmaps, args.deployments)
        )
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
        for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
            subprocess.run([*git, *step], cwd=repo, check=True)
        with sync_5500.empty_cluster("sync100k") as (kubeconfig, cluster, _):
            store.install(cluster)  # acm-lite's own CRDs, as the Helm chart installs them
            time.sleep(sync_5500.SETTLE)
            full_s, full_rss, full = run_sync(repo, kubeconfig, work)
            assert full["counts"]["created"] == total, full["counts"]
            sizes = inventory_sizes(cluster)
            before = apiserver_metrics.server_writes(cluster)
            noop_s, noop_rss, noop = run_sync(repo, kubeconfig, work)
            writes = apiserver_metrics.server_writes(cluster) - before
            assert noop["counts"]["unchanged"] == total, noop["counts"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{total} objects ({args.configmaps} ConfigMaps, {args.deployments} Deployments, "
        f"{sync_5500.NAMESPACES} namespaces) into a fresh local API server, "
        f"{len(os.sched_getaffinity(0))} cores; each sync a new `acm-lite sync --once` process"
    )
    print(f"full sync:       {full_s:8.2f}s  peak RSS {full_rss / 2**20:7.1f} MiB")
    print(
        f"no-op re-sync:   {noop_s:8.2f}s  peak RSS {noop_rss / 2**20:7.1f} MiB  "
        f"= {100 * noop_s / full_s:.1f}% of the full sync, {writes} write requests (target 0)"
    )
    print(
        f"inventory:       {len(sizes)} ResourceInventory objects, the largest "
        f"{max(sizes) / 1024:.0f} KiB ({100 * max(sizes) / ETCD_LIMIT:.0f}% of etcd's 1.5 MiB "
        f"request limit), {sum(sizes) / 2**20:.2f} MiB in all"
    )


if __name__ == "__main__":
    main()
