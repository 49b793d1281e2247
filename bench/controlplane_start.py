"""Warm start of one local control plane (binaries cached), light and full, and resident memory.

Baseline: etcd alone, started and probed the same way, in the same run. Light: etcd +
kube-apiserver (what the test suite's session fixtures start). Full: light + kube-controller-manager,
kube-scheduler and kwok with three fake nodes, ready once every Node is Ready and the default
ServiceAccount exists (``acm-lite dev up``). Memory: the peak resident set of each process (VmHWM)
after the start has settled.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from acm_lite.devcluster import binaries, controlplane, process
from acm_lite.devcluster.controllers import Controllers

RUNS = 3
SETTLE_SECONDS = 10


def _peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


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


def _measure(spec: Controllers | None, etcd: Path, apiserver: Path) -> tuple[float, dict[str, int]]:
    started = time.perf_counter()
    env = controlplane.start(
        ["bench"], etcd_binary=str(etcd), apiserver_binary=str(apiserver), controllers=spec
    )
    elapsed = time.perf_counter() - started
    time.sleep(SETTLE_SECONDS)  # let post-start hooks and the first controller syncs settle
    server = env.clusters[0]
    peaks = {"etcd": _peak_rss(env.etcd.pid), "kube-apiserver": _peak_rss(server.pid)}
    peaks.update({child.name: _peak_rss(child.pid) for child in server.children})
    controlplane.stop(env)
    return elapsed, peaks


def _report(label: str, base: float, results: list[tuple[float, dict[str, int]]]) -> None:
    start = statistics.median(r[0] for r in results)
    print(f"{label} ready in {start:.2f}s (median of {RUNS}) = {start / base:.1f}x etcd")
    names = list(results[0][1])
    mib = {n: statistics.median(r[1][n] for r in results) / 2**20 for n in names}
    parts = ", ".join(f"{n} {v:.0f}" for n, v in mib.items())
    print(f"  peak resident memory (MiB, median): {parts}; total {sum(mib.values()):.0f}")


def main() -> None:
    etcd, apiserver = binaries.ensure("etcd"), binaries.ensure("kube-apiserver")
    spec = Controllers(
        controller_manager=str(binaries.ensure("kube-controller-manager")),
        scheduler=str(binaries.ensure("kube-scheduler")),
        kwok=str(binaries.ensure("kwok")),
    )
    baselines, light, full = [], [], []
    for _ in range(RUNS):  # interleaved, so a busy moment of the machine hits every mode alike
        baselines.append(_etcd_only(etcd))
        light.append(_measure(None, etcd, apiserver))
        full.append(_measure(spec, etcd, apiserver))
    base = statistics.median(baselines)
    print(f"etcd alone ready in {base:.2f}s (median of {RUNS})")
    _report("light: etcd + kube-apiserver", base, light)
    _report(f"full: + controller-manager, scheduler, kwok, {spec.nodes} Ready nodes", base, full)


if __name__ == "__main__":
    main()
