"""What ``sync --wait`` adds to a sync: 500 ConfigMaps (Current as soon as they exist) in 10
namespaces, synced into one local control plane with and without waiting, alternately, each
measurement into namespaces of its own (a first sync: 510 objects created). Prints the median
times, their ratio (target: under 1.1), the wait stage's own time and the requests it sent.

``--deployments N``: N Deployments (replicas 1) in 10 namespaces instead, synced into a full local
cluster of their own (kube-controller-manager, kube-scheduler and kwok, as ``acm-lite dev up``
starts it, with enough fake nodes for every Pod at 110 Pods a node), so each is Current only once
the controllers have rolled it out. Each measurement goes into namespaces of its own, deleted (and
waited for until gone) before the next. Besides ``sync`` and ``sync --wait`` it prints how long the
Deployments of a plain ``sync`` took to become Available, and then Current (kstatus also wants the
controller's Progressing reason NewReplicaSetAvailable, which comes later), from the sync's start.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sync_5500  # bench/sync_5500.py: the objects and an empty control plane of its own

from acm_lite import health
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import binaries, controlplane
from acm_lite.devcluster.controllers import Controllers
from acm_lite.health import Status
from acm_lite.reconcile import pipeline
from acm_lite.status import store

PODS_PER_NODE = 110  # what kwok's nodes report as allocatable (acm_lite/data/kwok-stages.yaml)
GONE_TIMEOUT = 600.0


def commit(work: Path, prefix: str, configmaps: int, deployments: int = 0) -> Path:
    repo = sync_5500.write_dir(work / prefix, sync_5500.objects(prefix, configmaps, deployments))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    return repo


@contextlib.contextmanager
def full_cluster(deployments: int) -> Iterator[Cluster]:
    """A local cluster with controllers and enough fake nodes for every Deployment's Pod, twice
    over (a round's Pods may still be going while the next round's are scheduled)."""
    nodes = max(3, math.ceil(2 * deployments / PODS_PER_NODE))
    env = controlplane.start(
        ["waitdeploy"],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
        controllers=Controllers(
            controller_manager=str(binaries.ensure("kube-controller-manager")),
            scheduler=str(binaries.ensure("kube-scheduler")),
            kwok=str(binaries.ensure("kwok")),
            nodes=nodes,
        ),
    )
    try:
        print(f"full local cluster with {nodes} fake nodes", flush=True)
        yield Cluster.connect(env.clusters[0].kubeconfig)
    finally:
        controlplane.stop(env)


def namespaces(prefix: str) -> list[str]:
    return [f"{prefix}-{n}" for n in range(sync_5500.NAMESPACES)]


def available(cluster: Cluster, prefix: str) -> tuple[int, int]:
    """How many Deployments in the round's namespaces report Available, and how many are Current
    (kstatus: also rolled out, the controller's Progressing reason NewReplicaSetAvailable)."""
    ready = current = 0
    for name in namespaces(prefix):
        listed = cluster.request("GET", f"/apis/apps/v1/namespaces/{name}/deployments")
        for d in listed.get("items") or []:
            conditions = (d.get("status") or {}).get("conditions") or []
            ready += any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)
            current += (
                health.compute({"apiVersion": "apps/v1", "kind": "Deployment", **d}).status is Status.CURRENT
            )
    return ready, current


def until_available(
    cluster: Cluster, prefix: str, want: int, started: float, timeout: float
) -> tuple[float, float]:
    """Seconds from ``started`` until ``want`` Deployments are Available, and until they are
    Current (read every 0.5 s)."""
    when_available = None
    while True:
        ready, current = available(cluster, prefix)
        elapsed = time.perf_counter() - started
        if ready >= want and when_available is None:
            when_available = elapsed
        if current >= want and when_available is not None:
            return when_available, elapsed
        if elapsed > timeout:
            raise SystemExit(f"{prefix}: fewer than {want} Deployments Current after {timeout:.0f}s")
        time.sleep(0.5)


def delete_round(cluster: Cluster, prefix: str) -> None:
    """Delete the round's namespaces and wait until they are gone (their Pods with them)."""
    for name in namespaces(prefix):
        cluster.request("DELETE", f"/api/v1/namespaces/{name}")
    deadline = time.monotonic() + GONE_TIMEOUT
    for name in namespaces(prefix):
        while True:
            try:
                cluster.request("GET", f"/api/v1/namespaces/{name}")
            except ApiError as e:
                if e.status == 404:
                    break
                raise
            if time.monotonic() > deadline:
                raise SystemExit(f"namespace {name} not gone after {GONE_TIMEOUT:.0f}s")
            time.sleep(0.5)


def deployments_main(args: argparse.Namespace) -> None:
    want = args.deployments
    times: dict[str, list[float]] = {"sync": [], "wait": []}
    rollout: list[float] = []
    rolled: list[float] = []
    stage: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, full_cluster(want) as cluster:
        work = Path(tmp)
        store.install(cluster)
        time.sleep(sync_5500.SETTLE)
        for n in range(args.rounds):
            order = ("sync", "wait") if n % 2 == 0 else ("wait", "sync")
            for what in order:
                prefix = f"{what}{n}"
                repo = commit(work, prefix, 0, want)
                spec = pipeline.SyncSpec(
                    repo=str(repo), name=prefix, revision="main", source_format="unstructured"
                )
                options = pipeline.SyncOptions(
                    concurrency=16,
                    git_cache=work / "cache",
                    wait=what == "wait",
                    reconcile_timeout=args.timeout,
                )
                started = time.perf_counter()
                result = pipeline.run(spec, cluster, options)
                times[what].append(time.perf_counter() - started)
                assert result.ok, [p.render() for p in result.problems[:3]]
                if what == "wait":
                    assert result.waited is not None
                    assert result.waited.counts()["Current"] == want + sync_5500.NAMESPACES
                    assert available(cluster, prefix) == (want, want)  # every one Available on return
                    stage.append(result.status.durations["wait"])
                    extra = ""
                else:
                    first, last = until_available(cluster, prefix, want, started, args.timeout)
                    rollout.append(first)
                    rolled.append(last)
                    extra = f", all Available after {first:.2f}s, all Current after {last:.2f}s"
                print(f"round {n} {what}: {times[what][-1]:.2f}s{extra}", flush=True)
                delete_round(cluster, prefix)
    plain, waiting = statistics.median(times["sync"]), statistics.median(times["wait"])
    ratios = [w / s for s, w in zip(times["sync"], times["wait"], strict=True)]
    print(f"\n{want} Deployments (replicas 1) + {sync_5500.NAMESPACES} Namespaces, {args.rounds} rounds")
    print(f"sync         median {plain:.2f}s  {[round(t, 2) for t in times['sync']]}")
    print(f"sync --wait  median {waiting:.2f}s  {[round(t, 2) for t in times['wait']]}")
    print(f"plain sync until all Available  median {statistics.median(rollout):.2f}s")
    print(f"plain sync until all Current    median {statistics.median(rolled):.2f}s")
    print(f"wait stage   median {statistics.median(stage):.2f}s")
    print(f"ratio of medians {waiting / plain:.3f}; median of round ratios {statistics.median(ratios):.3f}")
    print(f"sync --wait against sync until all Current: {waiting / statistics.median(rolled):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configmaps", type=int, default=500)
    parser.add_argument("--deployments", type=int, default=0, help="N Deployments on a full cluster instead")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a rollout")
    args = parser.parse_args()
    if args.deployments > 0:
        deployments_main(args)
        return
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
