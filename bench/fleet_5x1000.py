"""5 clusters x 1,000 objects synced concurrently, against 1 cluster x 1,000 objects, both measured
in the same run on the same machine (target: under 2x).

Every cluster is a local control plane; all share one etcd, as `acm-lite dev up --clusters 5` does.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from acm_lite.devcluster import binaries, controlplane
from acm_lite.fleet import fanout, registry
from acm_lite.reconcile.pipeline import SyncOptions

OBJECTS = 1000
CLUSTERS = 5


def repo(root: Path, prefix: str) -> str:
    objs: list[dict[str, object]] = [{"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": f"{prefix}-{n}"}} for n in range(5)]
    objs += [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"cm-{i}", "namespace": f"{prefix}-{i % 5}"},
              "data": {"key": f"value-{i}"}} for i in range(OBJECTS - 5)]
    root.mkdir(parents=True)
    (root / "objects.yaml").write_text(yaml.safe_dump_all(objs))
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com"]
    for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
        subprocess.run([*git, *step], cwd=root, check=True)
    return str(root)


def fleet(path: Path, kubeconfig: str, source: str, names: list[str]) -> registry.Fleet:
    path.write_text(yaml.safe_dump({
        "apiVersion": "acm-lite.io/v1alpha1", "kind": "Fleet",
        "spec": {"sync": {"repo": source, "revision": "main", "sourceFormat": "unstructured",
                          "name": path.stem},
                 "clusters": [{"name": n, "kubeconfig": kubeconfig, "context": n} for n in names]}}))
    return registry.load(path)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    names = [f"c{i}" for i in range(CLUSTERS)]
    env = controlplane.start(names, etcd_binary=str(binaries.ensure("etcd")),
                             apiserver_binary=str(binaries.ensure("kube-apiserver")))
    singles, fleets = [], []
    try:
        options = SyncOptions(git_cache=work / "cache")
        for n in range(2):  # alternate, fresh namespaces every time
            one = fleet(work / f"one{n}.yaml", env.merged_kubeconfig,
                        repo(work / f"r1-{n}", f"one{n}"), names[:1])
            started = time.perf_counter()
            outcomes = fanout.sync_all(list(one.clusters), options, parallel=1)
            singles.append(time.perf_counter() - started)
            assert all(o.ok for o in outcomes)
            many = fleet(work / f"many{n}.yaml", env.merged_kubeconfig,
                         repo(work / f"r5-{n}", f"many{n}"), names)
            started = time.perf_counter()
            outcomes = fanout.sync_all(list(many.clusters), options, parallel=CLUSTERS)
            fleets.append(time.perf_counter() - started)
            assert all(o.ok for o in outcomes), [p.render() for o in outcomes for p in o.problems]
    finally:
        controlplane.stop(env)
        shutil.rmtree(work, ignore_errors=True)
    single, many_t = statistics.median(singles), statistics.median(fleets)
    print(f"1 cluster x {OBJECTS} objects: {single:.2f}s (median of {len(singles)})")
    print(f"{CLUSTERS} clusters x {OBJECTS} objects, concurrently: {many_t:.2f}s = "
          f"{many_t / single:.2f}x ({'under' if many_t < 2 * single else 'OVER'} the 2x target)")


if __name__ == "__main__":
    main()
