"""The daemon with 10,000 managed objects, run as a user would (`acm-lite serve`):

- resident memory once everything is synced and watched (target: under 200 MB);
- drift repair latency, from an edit to the declared value being back (target: p95 under 2 s);
- write requests made by unchanged polls (target: 0), counted by the API server itself.

Baseline for the memory figure: the same Python interpreter with acm-lite imported, idle.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apiserver_metrics  # bench/apiserver_metrics.py
import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries, controlplane, process

OBJECTS = 10_000
EDITS = 40


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    repo = work / "repo"
    repo.mkdir()
    docs: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}} for n in range(10)
    ]
    docs += [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": f"bench-{i % 10}"},
            "data": {"value": str(i)},
        }
        for i in range(OBJECTS - 10)
    ]
    (repo / "objects.yaml").write_text(yaml.safe_dump_all(docs))
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    env = controlplane.start(
        ["bench"],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    idle = subprocess.Popen([sys.executable, "-c", "import acm_lite.cli.main, time; time.sleep(60)"])
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acm_lite",
            "serve",
            "--repo",
            str(repo),
            "--revision",
            "main",
            "--source-format",
            "unstructured",
            "--name",
            "bench",
            "--period",
            "2",
            "--kubeconfig",
            env.clusters[0].kubeconfig,
            "--metrics-address",
            "off",
        ],
        env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cluster = Cluster.connect(env.clusters[0].kubeconfig)
        assert daemon.stderr is not None
        for line in daemon.stderr:
            if '"message": "pass"' in line:
                break
        time.sleep(8)  # watches established, a few unchanged polls
        rss = process.rss_bytes(daemon.pid) / 2**20
        baseline = process.rss_bytes(idle.pid) / 2**20

        before = apiserver_metrics.server_writes(cluster)
        time.sleep(6)  # three unchanged polls
        idle_writes = apiserver_metrics.server_writes(cluster) - before

        latencies = []
        for _ in range(EDITS):
            i = random.randrange(10, OBJECTS - 10)
            path = f"/api/v1/namespaces/bench-{i % 10}/configmaps/cm-{i}"
            cluster.request(
                "PATCH",
                path,
                body={"data": {"value": "tampered"}},
                content_type="application/merge-patch+json",
            )
            started = time.perf_counter()
            while cluster.request("GET", path)["data"]["value"] != str(i):
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
        p95 = statistics.quantiles(latencies, n=20)[18]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
        idle.kill()
        controlplane.stop(env)
    print(f"{OBJECTS} managed objects, one local API server, 2 cores")
    print(
        f"daemon resident memory: {rss:.0f} MiB (target < 200) = {rss / baseline:.1f}x an idle "
        f"interpreter with acm-lite imported ({baseline:.0f} MiB)"
    )
    print(
        f"drift repair, edit -> declared value back: median {statistics.median(latencies):.2f}s,"
        f" p95 {p95:.2f}s over {EDITS} edits (target p95 < 2 s)"
    )
    print(f"write requests during 3 unchanged polls: {idle_writes} (target 0)")


if __name__ == "__main__":
    main()
