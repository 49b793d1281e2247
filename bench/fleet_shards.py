"""12 clusters shared by 3 replicas of `acm-lite serve --fleet --shards 12`, against one replica
syncing the same 12 clusters, both in the same run on the same machine.

Measured: the time from starting the replicas until every cluster holds the commit (3 replicas,
and 1 replica as the baseline); after one of the 3 replicas is killed with SIGKILL, the time
until its clusters hold a new commit, synced by the other two (goal: one lease duration plus one
pass). The Leases live in a 13th API server, the management cluster; all 13 share one etcd, as
`acm-lite dev up` does, so on a small machine they compete with the daemons for the same cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import binaries, controlplane

CLUSTERS = 12
OBJECTS = 50  # per cluster
MEMBERS = [f"c{i:02d}" for i in range(CLUSTERS)]


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", *args], cwd=root, check=True
    )


def write_repo(root: Path, namespace: str, marker: str) -> None:
    objs: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    ]
    objs += [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i}", "namespace": namespace},
            "data": {"key": f"value-{i}"},
        }
        for i in range(OBJECTS - 2)
    ]
    objs.append(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": marker, "namespace": namespace}}
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "objects.yaml").write_text(yaml.safe_dump_all(objs))
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", marker)


def fleet_file(path: Path, kubeconfig: str, repo: Path, name: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": name},
                "spec": {
                    "sync": {
                        "name": name,
                        "repo": str(repo),
                        "revision": "main",
                        "sourceFormat": "unstructured",
                    },
                    "clusters": [{"name": m, "kubeconfig": kubeconfig, "context": m} for m in MEMBERS],
                },
            }
        )
    )
    return path


def serve(
    identity: str,
    fleet: Path,
    mgmt_kubeconfig: str,
    lease_set: str,
    *,
    work: Path,
    timing: argparse.Namespace,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acm_lite",
            "serve",
            "--fleet",
            str(fleet),
            "--shards",
            str(CLUSTERS),
            "--kubeconfig",
            mgmt_kubeconfig,
            "--lease-namespace",
            "default",
            "--lease-name",
            lease_set,
            "--identity",
            identity,
            "--lease-duration",
            str(timing.lease_duration),
            "--renew-deadline",
            str(timing.renew_deadline),
            "--lease-retry",
            str(timing.lease_retry),
            "--period",
            str(timing.period),
            "--no-drift-repair",
            "--metrics-address",
            "off",
        ],
        env={**os.environ, "ACM_LITE_CACHE": str(work / f"cache-{identity}")},
        stderr=(work / f"{identity}.log").open("w"),
        text=True,
    )


def has(cluster: Cluster, namespace: str, name: str) -> bool:
    try:
        cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    except ApiError:
        return False
    return True


def wait_for(
    members: dict[str, Cluster], names: list[str], namespace: str, marker: str, limit: float
) -> float:
    started = time.monotonic()
    pending = set(names)
    while pending:
        pending = {m for m in pending if not has(members[m], namespace, marker)}
        if time.monotonic() - started > limit:
            raise SystemExit(f"not synced within {limit:.0f}s: {sorted(pending)}")
        time.sleep(0.1)
    return time.monotonic() - started


def pass_seconds(logs: list[Path]) -> list[float]:
    out = []
    for log in logs:
        for line in log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == "pass" and entry.get("cluster"):
                out.append(float(entry["seconds"]))
    return out


def holders(mgmt: Cluster, lease_set: str) -> dict[int, str]:
    items = mgmt.request(
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        query={"labelSelector": f"acm-lite.io/lease-set={lease_set}"},
    )["items"]
    return {
        int(i["metadata"]["name"].rsplit("-", 1)[1]): i["spec"].get("holderIdentity") or ""
        for i in items
        if "-shard-" in i["metadata"]["name"]
    }


class ShareWatch:
    """When the 3 replicas' shares first reach 4/4/4, in seconds from its start."""

    def __init__(self, mgmt: Cluster):
        self.mgmt, self.started = mgmt, time.monotonic()
        self.settled: float | None = None
        self.done = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.done.wait(0.2):
            with contextlib.suppress(Exception):
                shares = list(holders(self.mgmt, "three").values())
                if sorted(shares.count(r) for r in ("r1", "r2", "r3")) == [4, 4, 4]:
                    self.settled = time.monotonic() - self.started
                    return


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def report(
    timing: argparse.Namespace,
    *,
    one: float,
    one_passes: list[float],
    three: float,
    three_passes: list[float],
    shares: dict[int, str],
    settled: float | None,
    victims: int,
    recovered: float,
    everyone: float,
) -> None:
    one_pass = statistics.median(three_passes) if three_passes else 0.0
    goal = timing.lease_duration + one_pass
    solo_pass = statistics.median(one_passes) if one_passes else 0.0
    print(f"clusters {CLUSTERS}, objects per cluster {OBJECTS}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"lease duration {timing.lease_duration}s, renew deadline {timing.renew_deadline}s, "
        f"retry {timing.lease_retry}s, poll period {timing.period}s"
    )
    print(f"1 replica : every cluster synced in {one:6.1f}s (median pass {solo_pass:.2f}s)")
    print(f"3 replicas: every cluster synced in {three:6.1f}s ({three / one:.2f}x the 1-replica time)")
    counts = sorted(list(shares.values()).count(r) for r in ("r1", "r2", "r3"))
    when = f"{settled:.1f}s after the start" if settled is not None else "not seen"
    print(f"shares after settling: {counts} (4/4/4 first {when})")
    print(
        f"killed r2 ({victims} clusters): its clusters synced again by the others in "
        f"{recovered:6.1f}s = {recovered / timing.lease_duration:.2f}x the lease duration, "
        f"{recovered / goal:.2f}x the goal (lease duration + one {one_pass:.2f}s pass); "
        f"every cluster in {everyone:.1f}s"
    )


def main() -> None:
    from acm_lite.reconcile.shards import shard_of

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lease-duration", type=int, default=15)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--lease-retry", type=float, default=2.0)
    parser.add_argument("--period", type=float, default=2.0)
    timing = parser.parse_args()
    bins = binaries.ensure_all(["etcd", "kube-apiserver"])
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-shards-"))
    env = controlplane.start(
        ["mgmt", *MEMBERS], etcd_binary=str(bins["etcd"]), apiserver_binary=str(bins["kube-apiserver"])
    )
    procs: list[subprocess.Popen[str]] = []
    try:
        mgmt_server = env.cluster("mgmt")
        assert mgmt_server is not None
        mgmt = Cluster.connect(mgmt_server.kubeconfig)
        members = {m: Cluster.connect(env.merged_kubeconfig, m) for m in MEMBERS}

        # one replica: the baseline
        write_repo(work / "one", "bench-one", "ready")
        fleet_one = fleet_file(work / "one.yaml", env.merged_kubeconfig, work / "one", "one")
        procs = [serve("solo", fleet_one, mgmt_server.kubeconfig, "one", work=work, timing=timing)]
        one = wait_for(members, MEMBERS, "bench-one", "ready", 600)
        one_passes = pass_seconds([work / "solo.log"])
        stop(procs)

        # three replicas over the same clusters (their own sync and objects)
        write_repo(work / "three", "bench-three", "ready")
        fleet_three = fleet_file(work / "three.yaml", env.merged_kubeconfig, work / "three", "three")
        procs = [
            serve(r, fleet_three, mgmt_server.kubeconfig, "three", work=work, timing=timing)
            for r in ("r1", "r2", "r3")
        ]
        watch = ShareWatch(mgmt)
        three = wait_for(members, MEMBERS, "bench-three", "ready", 600)
        settle = time.monotonic()
        while sorted(set(holders(mgmt, "three").values())) != ["r1", "r2", "r3"]:
            if time.monotonic() - settle > 120:
                raise SystemExit(f"shares did not settle: {holders(mgmt, 'three')}")
            time.sleep(0.2)
        wait_for(members, MEMBERS, "bench-three", "ready", 60)
        watch.done.set()
        shares = holders(mgmt, "three")
        victim_clusters = [m for m in MEMBERS if shares[shard_of(m, CLUSTERS)] == "r2"]
        write_repo(work / "three", "bench-three", "after-kill")
        procs[1].kill()  # SIGKILL: no release, its Leases must expire
        procs[1].wait()
        recovered = wait_for(members, victim_clusters, "bench-three", "after-kill", 600)
        everyone = wait_for(members, MEMBERS, "bench-three", "after-kill", 600)
        three_passes = pass_seconds([work / f"{r}.log" for r in ("r1", "r2", "r3")])
        stop(procs)

        report(
            timing,
            one=one,
            one_passes=one_passes,
            three=three,
            three_passes=three_passes,
            shares=shares,
            settled=watch.settled,
            victims=len(victim_clusters),
            recovered=recovered,
            everyone=everyone,
        )
    finally:
        stop(procs)
        controlplane.stop(env)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
