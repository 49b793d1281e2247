"""The daemon's memory per managed object: `acm-lite serve` as a user runs it, over 10,000 and
100,000 ConfigMaps (``--objects``), each in a local control plane of its own.

The objects exist before the daemon starts, as a daemon finds them after a restart (the usual
case, and the one where each pass reads every live body): created with acm-lite's marks by
concurrent POSTs, far faster than a first sync, so the daemon's first pass plans every object
unchanged and writes only its inventory and health record. Resident memory is read once that
pass ended and the drift watches are established, and again after a few unchanged polls.

Baseline, in the same run: an idle interpreter with acm-lite imported (the daemon's modules, which
the command line imports only when it runs `serve`), on the allocator `serve` runs on.
(RSS - baseline) / objects is the figure, against the goal of 3 KiB per managed object. With more
than one size, the slope between the smallest and the largest is printed too: the memory each
further object costs, free of any cost the daemon pays once whatever it manages.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from acm_lite.apply import writes
from acm_lite.cluster.client import Call, Cluster
from acm_lite.devcluster import binaries, controlplane, process
from acm_lite.objects import Manifest
from acm_lite.plan import ownership

GOAL = 3 * 1024  # bytes per managed object
NAMESPACES = 10
PER_FILE = 1_000  # objects per file, under the reader's documents-per-file limit
SYNC = "bench"
# the baseline: the modules `serve` runs imported (the command line alone imports them lazily)
IDLE = (
    "import acm_lite.cli.main, acm_lite.cli.serve, acm_lite.reconcile.daemon, acm_lite.reconcile.pipeline,"
    " time; time.sleep(3600)"
)


def write_repo(repo: Path, objects: int) -> list[Manifest]:
    """A Git repository of ``objects`` objects (Namespaces and ConfigMaps); the manifests as the
    daemon reads them."""
    repo.mkdir()
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}}
        for n in range(NAMESPACES)
    ]
    docs += [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": f"bench-{i % NAMESPACES}"},
            "data": {"value": str(i)},
        }
        for i in range(objects - NAMESPACES)
    ]
    manifests = []
    for start in range(0, len(docs), PER_FILE):
        name = f"objects-{start // PER_FILE:04d}.yaml"
        chunk = docs[start : start + PER_FILE]
        (repo / name).write_text(yaml.safe_dump_all(chunk))
        manifests += [Manifest(doc, name, i) for i, doc in enumerate(chunk)]
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=repo, check=True)
    return manifests


def create_all(cluster: Cluster, manifests: list[Manifest], commit: str) -> float:
    """Every object, as acm-lite applies it (its marks, this commit), by concurrent creates."""
    started = time.perf_counter()
    calls = []
    for m in manifests:
        base = f"/api/v1/namespaces/{m.namespace}/configmaps" if m.namespace else "/api/v1/namespaces"
        calls.append(writes.create(base, ownership.stamp(m, SYNC, commit)))
    namespaces = [c for c in calls if c.path == "/api/v1/namespaces"]
    rest: list[Call] = [c for c in calls if c.path != "/api/v1/namespaces"]
    for batch in (namespaces, rest):
        failed = [e for e in cluster.request_many(batch, width=32) if e is not None]
        assert not failed, failed[:3]
    return time.perf_counter() - started


class Daemon:
    """`acm-lite serve` in a process of its own; its log lines read as they come."""

    def __init__(self, repo: Path, kubeconfig: str, work: Path):
        self.proc = subprocess.Popen(
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
                SYNC,
                "--period",
                "2",
                "--kubeconfig",
                kubeconfig,
                "--metrics-address",
                "off",
            ],
            env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")},
            stderr=subprocess.PIPE,
            text=True,
        )
        self.passes: list[dict[str, Any]] = []
        self.lines = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines += 1
            if '"message": "pass"' in line:
                self.passes.append(json.loads(line))

    def first_pass(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.passes:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"no pass within {timeout:.0f}s (exit code {self.proc.poll()})")
            time.sleep(0.5)
        return self.passes[0]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(objects: int, polls: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    manifests = write_repo(work / "repo", objects)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work / "repo", check=True, capture_output=True, text=True
    ).stdout.strip()
    env = controlplane.start(
        ["bench"],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    # on the allocator `serve` runs on (see acm_lite/cli/allocator.py), like for like
    allocator = os.environ.get("PYTHONMALLOC") or "malloc"
    idle = subprocess.Popen([sys.executable, "-c", IDLE], env={**os.environ, "PYTHONMALLOC": allocator})
    daemon = None
    try:
        kubeconfig = env.clusters[0].kubeconfig
        created = create_all(Cluster.connect(kubeconfig), manifests, commit)
        del manifests
        started = time.perf_counter()
        daemon = Daemon(work / "repo", kubeconfig, work)
        first = daemon.first_pass(timeout=3600)
        synced = time.perf_counter() - started
        time.sleep(10)  # the drift watches list and establish
        rss_synced = process.rss_bytes(daemon.proc.pid)
        time.sleep(2.0 * polls + 1)  # unchanged polls
        rss_polled = process.rss_bytes(daemon.proc.pid)
        baseline = process.rss_bytes(idle.pid)
        assert daemon.proc.poll() is None, "the daemon exited"
        extra_passes = len(daemon.passes) - 1
    finally:
        if daemon is not None:
            daemon.stop()
        idle.kill()
        controlplane.stop(env)
    return {
        "objects": objects,
        "created": created,
        "synced": synced,
        "counts": first.get("counts", {}),
        "baseline": baseline,
        "synced_rss": rss_synced,
        "polled_rss": rss_polled,
        "extra_passes": extra_passes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--polls", type=int, default=3, help="unchanged polls before the second reading")
    args = parser.parse_args()
    mib = 2**20
    measured = []
    for objects in args.objects:
        r = measure(objects, args.polls)
        measured.append(r)
        print(f"{objects} managed objects (Namespaces + ConfigMaps), one local API server")
        print(
            f"  created beforehand in {r['created']:.0f}s; the daemon's first pass ended "
            f"{r['synced']:.0f}s after it started: {r['counts']}"
        )
        print(f"  idle interpreter with acm-lite imported: {r['baseline'] / mib:.0f} MiB")
        for label, rss in (
            ("synced and watched", r["synced_rss"]),
            (f"after {args.polls} unchanged polls", r["polled_rss"]),
        ):
            per = (rss - r["baseline"]) / objects
            print(
                f"  {label}: {rss / mib:.0f} MiB resident, {per:,.0f} bytes per managed object "
                f"= {per / GOAL:.2f}x the goal of {GOAL} bytes"
            )
        if r["extra_passes"]:
            print(f"  (passes after the first while measuring: {r['extra_passes']}, expected 0)")
    if len(measured) > 1:
        small, large = min(measured, key=lambda r: r["objects"]), max(measured, key=lambda r: r["objects"])
        slope = (large["polled_rss"] - small["polled_rss"]) / (large["objects"] - small["objects"])
        print(
            f"each further object, {small['objects']} -> {large['objects']}: {slope:,.0f} bytes "
            f"= {slope / GOAL:.2f}x the goal"
        )


if __name__ == "__main__":
    main()
