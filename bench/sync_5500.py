"""Full sync of 5,000 ConfigMaps + 500 Deployments into an empty cluster, against two baselines on
the same local control plane in the same run:

- ``kubectl apply --server-side -f DIR`` of the same hydrated objects (target: acm-lite >= 3x faster)
- a raw concurrent create loop, POSTs 16 at a time (the API server's ceiling; target: <= 1.5x)

and, for the analysis, the floor of any server-side-apply client: the same stamped bodies acm-lite
sends, applied 16 at a time with nothing read, planned or recorded around them. The loop and the
floor send through the same engine acm-lite applies with, so the comparison is of the work
around the requests and of create against server-side apply, not of HTTP clients.

and a no-op re-sync (target: under 10% of the full sync, zero write requests).
Every full sync goes into an empty cluster of its own (a fresh local control plane); acm-lite's
own CRDs are installed before its clock starts, as the Helm chart installs them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cpu  # bench/cpu.py
import yaml

from acm_lite import api
from acm_lite.cluster.client import Call, Cluster
from acm_lite.devcluster import binaries, controlplane
from acm_lite.objects import Manifest
from acm_lite.plan import ownership
from acm_lite.reconcile import pipeline
from acm_lite.status import store

NAMESPACES = 10
SETTLE = 3.0


def objects(prefix: str, configmaps: int, deployments: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{prefix}-{n}"}}
        for n in range(NAMESPACES)
    ]
    for i in range(configmaps):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i}", "namespace": f"{prefix}-{i % NAMESPACES}"},
                "data": {"key": f"value-{i}", "other": "x" * 64},
            }
        )
    for i in range(deployments):
        labels = {"app": f"app-{i}"}
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"app-{i}", "namespace": f"{prefix}-{i % NAMESPACES}"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "image": f"registry.example.com/app:{i}",
                                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                                }
                            ]
                        },
                    },
                },
            }
        )
    return out


def write_dir(root: Path, objs: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True)
    (root / "00-namespaces.yaml").write_text(yaml.safe_dump_all(objs[:NAMESPACES]))
    for i in range(NAMESPACES, len(objs), 500):  # kubectl reads files in order
        (root / f"{i:06d}.yaml").write_text(yaml.safe_dump_all(objs[i : i + 500]))
    return root


def collection(obj: dict[str, Any]) -> str:
    if obj["kind"] == "Namespace":
        return "/api/v1/namespaces"
    if obj["kind"] == "ConfigMap":
        return f"/api/v1/namespaces/{obj['metadata']['namespace']}/configmaps"
    return f"/apis/apps/v1/namespaces/{obj['metadata']['namespace']}/deployments"


def concurrently(cluster: Cluster, calls: list[Call]) -> float:
    """Namespaces first, then the rest, 16 at a time, through the same one-thread engine acm-lite
    applies with (``Cluster.request_many``); the seconds it took."""
    started = time.perf_counter()
    for batch in (calls[:NAMESPACES], calls[NAMESPACES:]):
        failed = [e for e in cluster.request_many(batch, width=16) if e is not None]
        assert not failed, failed[:3]
    return time.perf_counter() - started


def raw_create(cluster: Cluster, objs: list[dict[str, Any]]) -> float:
    return concurrently(cluster, [Call("POST", collection(obj), body=obj) for obj in objs])


def ssa_floor(cluster: Cluster, objs: list[dict[str, Any]], sync: str) -> float:
    """The server-side applies alone, with acm-lite's marks and query, nothing around them."""
    commit = "0" * 40
    bodies = [
        ownership.stamp(Manifest(obj, f"{i // 500:06d}.yaml", i), sync, commit) for i, obj in enumerate(objs)
    ]
    query = {"fieldManager": api.FIELD_MANAGER, "force": "true", "fieldValidation": "Ignore"}
    return concurrently(
        cluster,
        [
            Call(
                "PATCH",
                f"{collection(obj)}/{obj['metadata']['name']}",
                query,
                obj,
                "application/apply-patch+yaml",
            )
            for obj in bodies
        ],
    )


@contextmanager
def empty_cluster(name: str) -> Iterator[tuple[str, Cluster, list[int]]]:
    """A control plane of its own for one measurement, so each one starts from an empty cluster
    (a shared one grows by 5,510 objects per measurement, which slows the later ones). Yields
    its kubeconfig, a client, and the process ids of its etcd and kube-apiserver."""
    env = controlplane.start(
        [name],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    try:
        kubeconfig = env.clusters[0].kubeconfig
        cluster = Cluster.connect(kubeconfig)
        time.sleep(SETTLE)  # let the new API server finish its start-up work first
        yield kubeconfig, cluster, [env.etcd.pid, env.clusters[0].pid]
    finally:
        controlplane.stop(env)


def one_round(work: Path, n: int, args: argparse.Namespace) -> dict[str, float]:
    """The three full syncs (raw, kubectl, acm-lite), the server-side-apply floor and acm-lite's
    no-op re-syncs, each full sync into an empty cluster of its own."""
    total = args.configmaps + args.deployments
    with empty_cluster("raw") as (_, cluster, servers):
        before = cpu.of(servers)
        raw = raw_create(cluster, objects("bench", args.configmaps, args.deployments))
        raw_server_cpu = cpu.of(servers) - before
    with empty_cluster("floor") as (_, cluster, servers):
        before = cpu.of(servers)
        floor = ssa_floor(cluster, objects("bench", args.configmaps, args.deployments), "bench")
        floor_server_cpu = cpu.of(servers) - before

    kubectl_dir = write_dir(work / f"kubectl{n}", objects("bench", args.configmaps, args.deployments))
    with empty_cluster("kubectl") as (kubeconfig, _, _):
        started = time.perf_counter()
        subprocess.run(
            [
                str(binaries.ensure("kubectl")),
                "apply",
                "--server-side",
                "--field-manager=bench",
                f"--cache-dir={work / 'kubectl-cache'}",
                "-f",
                str(kubectl_dir),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "KUBECONFIG": kubeconfig},
        )
        kubectl = time.perf_counter() - started

    repo = write_dir(work / f"repo{n}", objects("bench", args.configmaps, args.deployments))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    spec = pipeline.SyncSpec(repo=str(repo), name="bench", revision="main", source_format="unstructured")
    options = pipeline.SyncOptions(concurrency=16, git_cache=work / "cache")
    with empty_cluster("sync") as (kubeconfig, cluster, _):
        store.install(cluster)  # acm-lite's own CRDs, as the Helm chart installs them,
        time.sleep(SETTLE)  # and time for the API server to rebuild its OpenAPI documents
        started = time.perf_counter()
        full = pipeline.run(spec, cluster, options)
        sync = time.perf_counter() - started
        assert full.ok, [p.render() for p in full.problems[:3]]

        cluster.requests.clear()
        started = time.perf_counter()
        noop = pipeline.run(spec, cluster, options)
        resync = time.perf_counter() - started
        assert noop.ok and noop.counts["unchanged"] == total + NAMESPACES
        writes = cluster.writes

        started = time.perf_counter()
        subprocess.run(
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
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")},
        )
        cli_noop = time.perf_counter() - started
    return {
        "raw": raw,
        "raw_server_cpu": raw_server_cpu,
        "floor": floor,
        "floor_server_cpu": floor_server_cpu,
        "kubectl": kubectl,
        "sync": sync,
        "noop": resync,
        "cli_noop": cli_noop,
        "writes": writes,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configmaps", type=int, default=5000)
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    try:
        rounds = [one_round(work, n, args) for n in range(args.rounds)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    # ratios within a round first: the machine's speed drifts between rounds more than within one
    by_round = {
        "kubectl": statistics.median(r["kubectl"] / r["sync"] for r in rounds),
        "raw": statistics.median(r["sync"] / r["raw"] for r in rounds),
    }
    total = args.configmaps + args.deployments
    cores = len(os.sched_getaffinity(0))
    print(
        f"{total} objects (+{NAMESPACES} namespaces), each full sync into a fresh local API "
        f"server, {cores} cores, median of {args.rounds} rounds"
    )
    print(f"raw concurrent create loop:      {m['raw']:7.2f}s")
    print(f"kubectl apply --server-side:     {m['kubectl']:7.2f}s")
    print(
        f"acm-lite sync --once (full):     {m['sync']:7.2f}s  "
        f"= {m['kubectl'] / m['sync']:.2f}x faster than kubectl (target >= 3x), "
        f"{m['sync'] / m['raw']:.2f}x the raw loop (target <= 1.5x)"
    )
    versus_kubectl = ", ".join(f"{r['kubectl'] / r['sync']:.2f}x" for r in rounds)
    versus_raw = ", ".join(f"{r['sync'] / r['raw']:.2f}x" for r in rounds)
    print(
        f"  per round: {versus_kubectl} faster than kubectl (median {by_round['kubectl']:.2f}x); "
        f"{versus_raw} the raw loop (median {by_round['raw']:.2f}x)"
    )
    print(
        f"server-side apply floor:         {m['floor']:7.2f}s  = {m['floor'] / m['raw']:.2f}x the raw "
        f"loop, {m['kubectl'] / m['floor']:.2f}x faster than kubectl (the same applies, nothing "
        "around them)"
    )
    server_floor = m["floor_server_cpu"] / cores
    print(
        f"  the API server and etcd alone used {m['floor_server_cpu']:.2f} CPU-s for those applies: "
        f"at least {server_floor:.2f}s on {cores} cores, {m['kubectl'] / server_floor:.2f}x "
        "faster than kubectl for a client that used no CPU at all"
    )
    apply_cost = statistics.median(r["floor_server_cpu"] / r["raw_server_cpu"] for r in rounds)
    print(
        f"  the raw loop's creates cost the API server and etcd {m['raw_server_cpu']:.2f} CPU-s: "
        f"a server-side apply costs them {apply_cost:.2f}x a create (median per round)"
    )
    print(
        f"acm-lite no-op re-sync:          {m['noop']:7.2f}s  = {100 * m['noop'] / m['sync']:.1f}% "
        f"of the full sync (target < 10%), {max(r['writes'] for r in rounds)} write requests "
        "(target 0)"
    )
    print(
        f"  as a new `acm-lite sync --once` process (reads the commit again): "
        f"{m['cli_noop']:.2f}s = {100 * m['cli_noop'] / m['sync']:.1f}%"
    )


if __name__ == "__main__":
    main()
