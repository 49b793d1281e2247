"""Warm start of one local control plane (binaries cached), and its resident memory.

Baseline: etcd alone, started and probed the same way, in the same run.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from acm_lite.devcluster import binaries, controlplane, process

RUNS = 3


def _etcd_only(etcd: Path) -> float:
    root = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    started = time.perf_counter()
    server, proc = controlplane._start_etcd(root, str(etcd), detached=False)
    process.wait_ready(
        "etcd", proc, root / "etcd.log", lambda: controlplane._http_ok(f"{server.url}/health"), 60
    )
    elapsed = time.perf_counter() - started
    process.stop(server.pid)
    shutil.rmtree(root, ignore_errors=True)
    return elapsed


def main() -> None:
    etcd, apiserver = binaries.ensure("etcd"), binaries.ensure("kube-apiserver")
    baselines, starts, rss = [], [], []
    for _ in range(RUNS):
        baselines.append(_etcd_only(etcd))
        started = time.perf_counter()
        env = controlplane.start(["bench"], etcd_binary=str(etcd), apiserver_binary=str(apiserver))
        starts.append(time.perf_counter() - started)
        time.sleep(5)  # let post-start hooks settle before reading memory
        rss.append((process.rss_bytes(env.clusters[0].pid), process.rss_bytes(env.etcd.pid)))
        controlplane.stop(env)
    base, start = statistics.median(baselines), statistics.median(starts)
    api_mb = statistics.median(r[0] for r in rss) / 2**20
    etcd_mb = statistics.median(r[1] for r in rss) / 2**20
    print(f"etcd alone ready in {base:.2f}s (median of {RUNS})")
    print(f"etcd + kube-apiserver ready in {start:.2f}s (median of {RUNS}) = {start / base:.1f}x etcd")
    print(f"resident memory: kube-apiserver {api_mb:.0f} MiB, etcd {etcd_mb:.0f} MiB")


if __name__ == "__main__":
    main()
