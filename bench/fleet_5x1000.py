"""5 clusters x 1,000 objects synced concurrently, against 1 cluster x 1,000 objects, both measured
in the same run on the same machine (target: under 2x).

Every cluster is a local control plane; all share one etcd, as `acm-lite dev up --clusters 5` does.
On a small machine the API servers compete with each other for the same cores, which real clusters
never do; the CPU each side used is printed too, with the least time the servers' work alone can
take on this machine's cores.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cpu  # bench/cpu.py
import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries, controlplane
from acm_lite.fleet import fanout, registry
from acm_lite.reconcile.pipeline import SyncOptions
from acm_lite.status import store

OBJECTS = 1000
CLUSTERS = 5


def repo(root: Path, prefix: str) -> str:
    objs: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{prefix}-{n}"}} for n in range(5)
    ]
    objs += [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": f"{prefix}-{i % 5}"},
            "data": {"key": f"value-{i}"},
        }
        for i in range(OBJECTS - 5)
    ]
    root.mkdir(parents=True)
    (root / "objects.yaml").write_text(yaml.safe_dump_all(objs))
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=root, check=True)
    return str(root)


def fleet(path: Path, kubeconfig: str, source: str, names: list[str]) -> registry.Fleet:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "spec": {
                    "sync": {
                        "repo": source,
                        "revision": "main",
                        "sourceFormat": "unstructured",
                        "name": path.stem,
                    },
                    "clusters": [{"name": n, "kubeconfig": kubeconfig, "context": n} for n in names],
                },
            }
        )
    )
    return registry.load(path)


def timed(servers: list[int], run: Callable[[], None]) -> tuple[float, float, float]:
    """Wall seconds, the servers' CPU seconds, acm-lite's CPU seconds."""
    server_before, own_before = cpu.of(servers), cpu.own()
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started, cpu.of(servers) - server_before, cpu.own() - own_before)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    names = [f"c{i}" for i in range(CLUSTERS)]
    env = controlplane.start(
        names,
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    servers = [env.etcd.pid, *(c.pid for c in env.clusters)]
    singles: list[tuple[float, float, float]] = []
    fleets: list[tuple[float, float, float]] = []
    try:
        for server in env.clusters:  # acm-lite's CRDs, as the Helm chart installs them
            store.install(Cluster.connect(server.kubeconfig))
        time.sleep(5)  # the API servers rebuild their OpenAPI documents after new CRDs
        options = SyncOptions(git_cache=work / "cache")
        for n in range(3):  # alternate, fresh namespaces every time
            one = fleet(
                work / f"one{n}.yaml", env.merged_kubeconfig, repo(work / f"r1-{n}", f"one{n}"), names[:1]
            )
            singles.append(timed(servers, syncing(one, options, parallel=1)))
            many = fleet(
                work / f"many{n}.yaml", env.merged_kubeconfig, repo(work / f"r5-{n}", f"many{n}"), names
            )
            fleets.append(timed(servers, syncing(many, options, parallel=CLUSTERS)))
    finally:
        controlplane.stop(env)
        shutil.rmtree(work, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    single, many_t = (
        tuple(statistics.median(r[i] for r in runs) for i in range(3)) for runs in (singles, fleets)
    )
    print(
        f"1 cluster x {OBJECTS} objects: {single[0]:.2f}s (median of {len(singles)}); "
        f"CPU: servers {single[1]:.2f}s, acm-lite {single[2]:.2f}s"
    )
    print(
        f"{CLUSTERS} clusters x {OBJECTS} objects, concurrently: {many_t[0]:.2f}s = "
        f"{many_t[0] / single[0]:.2f}x ({'under' if many_t[0] < 2 * single[0] else 'OVER'} the 2x "
        f"target); CPU: servers {many_t[1]:.2f}s, acm-lite {many_t[2]:.2f}s"
    )
    floor = many_t[1] / cores
    print(
        f"on {cores} cores the servers' work alone takes at least {floor:.2f}s = "
        f"{floor / single[0]:.2f}x the 1-cluster time, whatever the client does (real clusters "
        "each run on machines of their own)"
    )


def syncing(members: registry.Fleet, options: SyncOptions, parallel: int) -> Callable[[], None]:
    def run() -> None:
        outcomes = fanout.sync_all(list(members.clusters), options, parallel=parallel)
        assert all(o.ok for o in outcomes), [p.render() for o in outcomes for p in o.problems]

    return run


if __name__ == "__main__":
    main()
