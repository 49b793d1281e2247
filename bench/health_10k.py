"""Health tracking in the daemon with 10,000 managed objects, against the same daemon without it
(`acm-lite serve --no-health-tracking`), in one run:

- the watch and compute cost: the daemon's CPU while 1,000 status updates arrive (Deployments'
  status written as their controller would, each a watch event), per 1,000 events;
- the daemon's peak resident memory (VmHWM) and its resident memory once synced and watched.

Each daemon syncs its own copy of the objects (9,000 ConfigMaps, 990 Deployments, 10 Namespaces)
into an empty part of one local API server, one after the other, so both do the same work; each
variant runs twice, in the order without, with, with, without.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apiserver_metrics  # bench/apiserver_metrics.py
import cpu  # bench/cpu.py
import yaml

from acm_lite.cluster.client import Call, Cluster
from acm_lite.devcluster import binaries, controlplane, process

NAMESPACES = 10
DEPLOYMENTS = 990
CONFIGMAPS = 9_000
EVENTS = 1_000


def repository(work: Path, prefix: str) -> Path:
    repo = work / prefix
    repo.mkdir()
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{prefix}-{n}"}}
        for n in range(NAMESPACES)
    ]
    docs += [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": f"{prefix}-{i % NAMESPACES}"},
            "data": {"value": str(i)},
        }
        for i in range(CONFIGMAPS)
    ]
    docs += [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"web-{i}", "namespace": f"{prefix}-{i % NAMESPACES}"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": f"web-{i}"}},
                "template": {
                    "metadata": {"labels": {"app": f"web-{i}"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/web:1"}]},
                },
            },
        }
        for i in range(DEPLOYMENTS)
    ]
    (repo / "objects.yaml").write_text(yaml.safe_dump_all(docs))
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    return repo


def status(ready: int) -> dict[str, Any]:
    return {
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if ready else "False",
                    "reason": "MinimumReplicasAvailable",
                },
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
    }


def peak_rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(env: controlplane.Environment, work: Path, prefix: str, tracking: bool) -> dict[str, float]:
    repo = repository(work, prefix)
    kubeconfig = env.clusters[0].kubeconfig
    argv = [sys.executable, "-m", "acm_lite", "serve", "--repo", str(repo), "--revision", "main"]
    argv += ["--source-format", "unstructured", "--name", prefix, "--period", "2"]
    argv += ["--kubeconfig", kubeconfig, "--metrics-address", "off"]
    if not tracking:
        argv.append("--no-health-tracking")
    daemon = subprocess.Popen(
        argv, env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")}, stderr=subprocess.PIPE, text=True
    )
    cluster = Cluster.connect(kubeconfig)
    try:
        assert daemon.stderr is not None
        started = time.perf_counter()
        for line in daemon.stderr:
            if '"message": "pass"' in line:
                break
        first_pass = time.perf_counter() - started
        time.sleep(10)  # watches established (their initial events seen), a few unchanged polls
        settled = process.rss_bytes(daemon.pid) / 2**20
        idle_before = cpu.of([daemon.pid])
        time.sleep(5)
        idle = cpu.of([daemon.pid]) - idle_before
        writes = apiserver_metrics.server_writes(cluster)
        calls = [
            Call(
                "PATCH",
                f"/apis/apps/v1/namespaces/{prefix}-{i % DEPLOYMENTS % NAMESPACES}/deployments/"
                f"web-{i % DEPLOYMENTS}/status",
                None,
                status(1 if i < DEPLOYMENTS else 0),
                "application/merge-patch+json",
            )
            for i in range(EVENTS)
        ]
        before = cpu.of([daemon.pid])
        sent = time.perf_counter()
        failed = [e for e in cluster.request_many(calls, width=8) if e is not None]
        assert not failed, failed[:3]
        time.sleep(5)  # the events consumed, a flush or two
        window = time.perf_counter() - sent
        busy = cpu.of([daemon.pid]) - before
        daemon_writes = apiserver_metrics.server_writes(cluster) - writes
        peak = peak_rss(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
    return {
        "first_pass": first_pass,
        "settled": settled,
        "peak": peak,
        "cpu": busy - idle * window / 5,  # less what the daemon spends idle over as long
        "writes": daemon_writes - EVENTS,
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    env = controlplane.start(
        ["bench"],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    try:  # in the order without, with, with, without: drift within the run weighs on both alike
        for n, tracking in enumerate((False, True, True, False)):
            runs[tracking].append(run(env, work, f"{'tracked' if tracking else 'plain'}-{n}", tracking))
    finally:
        controlplane.stop(env)
    total = NAMESPACES + CONFIGMAPS + DEPLOYMENTS
    print(f"{total} managed objects, one local API server, 2 cores; {EVENTS} status updates per daemon")
    for tracking in (False, True):
        for r in runs[tracking]:
            print(
                f"{'with' if tracking else 'without'} tracking: first pass {r['first_pass']:.1f}s, resident"
                f" {r['settled']:.0f} MiB once watched, peak {r['peak']:.0f} MiB; CPU for {EVENTS} events"
                f" {r['cpu']:.2f}s; writes besides the events: {r['writes']:.0f}"
            )

    def mean(tracking: bool, key: str) -> float:
        return sum(r[key] for r in runs[tracking]) / len(runs[tracking])

    print(
        "ratios of the means (with / without): CPU per 1,000 events"
        f" {mean(True, 'cpu') / max(mean(False, 'cpu'), 1e-3):.2f}x, peak RSS"
        f" {mean(True, 'peak') / mean(False, 'peak'):.2f}x, resident once watched"
        f" {mean(True, 'settled') / mean(False, 'settled'):.2f}x"
    )


if __name__ == "__main__":
    main()
