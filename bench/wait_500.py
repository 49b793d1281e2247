"""What ``sync --wait`` adds to a sync: 500 ConfigMaps (Current as soon as they exist) in 10
namespaces, synced into one local control plane with and without waiting, alternately, each
measurement into namespaces of its own (a first sync: 510 objects created). Prints the median
times, their ratio (target: under 1.1), the wait stage's own time and the requests it sent.

The 500 Deployments version (objects that become Current only once controllers roll them out)
needs a cluster with controllers and nodes; it is not measured here.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import sync_5500  # bench/sync_5500.py: the objects and an empty control plane of its own

from acm_lite.reconcile import pipeline
from acm_lite.status import store


def commit(work: Path, prefix: str, configmaps: int) -> Path:
    repo = sync_5500.write_dir(work / prefix, sync_5500.objects(prefix, configmaps, 0))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configmaps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"sync": [], "wait": []}
    stage: list[float] = []
    reads: dict[str, list[int]] = {"sync": [], "wait": []}
    with tempfile.TemporaryDirectory() as tmp, sync_5500.empty_cluster("wait") as (_, cluster, _pids):
        work = Path(tmp)
        store.install(cluster)
        time.sleep(sync_5500.SETTLE)
        for n in range(args.rounds):
            order = ("sync", "wait") if n % 2 == 0 else ("wait", "sync")
            for what in order:
                prefix = f"{what}{n}"
                repo = commit(work, prefix, args.configmaps)
                spec = pipeline.SyncSpec(
                    repo=str(repo), name=prefix, revision="main", source_format="unstructured"
                )
                options = pipeline.SyncOptions(concurrency=16, git_cache=work / "cache", wait=what == "wait")
                cluster.requests.clear()
                started = time.perf_counter()
                result = pipeline.run(spec, cluster, options)
                times[what].append(time.perf_counter() - started)
                assert result.ok, [p.render() for p in result.problems[:3]]
                if what == "wait":
                    assert result.waited is not None
                    assert result.waited.counts()["Current"] == args.configmaps + sync_5500.NAMESPACES
                    stage.append(result.status.durations["wait"])
                reads[what].append(cluster.requests["GET"])
                print(f"round {n} {what}: {times[what][-1]:.2f}s", flush=True)
    plain, waiting = statistics.median(times["sync"]), statistics.median(times["wait"])
    ratios = [w / s for s, w in zip(times["sync"], times["wait"], strict=True)]
    print(f"\n{args.configmaps} ConfigMaps + {sync_5500.NAMESPACES} Namespaces, {args.rounds} rounds")
    print(f"sync         median {plain:.2f}s  {[round(t, 2) for t in times['sync']]}")
    print(f"sync --wait  median {waiting:.2f}s  {[round(t, 2) for t in times['wait']]}")
    print(f"wait stage   median {statistics.median(stage):.3f}s")
    get_plain, get_wait = statistics.median(reads["sync"]), statistics.median(reads["wait"])
    print(f"GET requests: sync {get_plain:.0f}, sync --wait {get_wait:.0f} (+{get_wait - get_plain:.0f})")
    print(f"ratio of medians {waiting / plain:.3f}; median of round ratios {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
