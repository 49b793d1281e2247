"""A fleet shared by replicas of `acm-lite serve --shards`: real processes, real Leases in a
management API server, four member API servers. Every cluster is synced by exactly one replica;
a replica killed with SIGKILL loses its clusters to the others within a lease duration; a new
replica takes its share without two replicas writing one cluster at once; a replica cut off from
the management cluster stops writing before its Leases expire."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import controlplane
from acm_lite.reconcile.shards import SET_LABEL, shard_of
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually
from tests.support.tcpproxy import TcpProxy
from tests.unit.repo_builder import cm, ns

MEMBERS = ["m-east", "m-west", "m-north", "m-south"]
SHARDS = 4
DURATION, DEADLINE, RETRY = 4.0, 3.0, 0.5
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
WRITES = ("created", "configured", "pruned", "unmanaged")


@pytest.fixture
def env(control_plane_binaries: dict[str, Path]) -> Iterator[controlplane.Environment]:
    environment = controlplane.start(
        ["mgmt", *MEMBERS],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    yield environment
    controlplane.stop(environment)


class LeaseWatcher:
    """Polls the shard Leases every 0.1 s and keeps each shard's history: (time, holder,
    record), the record changing at every renewal."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.history: dict[int, list[tuple[float, str, str]]] = {s: [] for s in range(SHARDS)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                items = self.cluster.request("GET", LEASES, query={"labelSelector": f"{SET_LABEL}=fleet"})
            except Exception:
                continue
            now = time.time()
            for lease in items["items"]:
                name = lease["metadata"]["name"]
                if "-shard-" not in name:
                    continue
                spec = lease["spec"]
                record = f"{spec.get('renewTime')}/{lease['metadata']['resourceVersion']}"
                self.history[int(name.rsplit("-", 1)[1])].append(
                    (now, spec.get("holderIdentity") or "", record)
                )

    def holders(self) -> dict[int, str]:
        return {s: (h[-1][1] if h else "") for s, h in self.history.items()}

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check_no_overlap(self) -> None:
        """A shard changes hands directly (not through a release) only once the old holder's
        record stood still for the lease duration: it was never renewed by two at once."""
        for shard, history in self.history.items():
            last_change: dict[str, float] = {}
            previous: tuple[float, str, str] | None = None
            for when, holder, record in history:
                if previous is None or previous[2] != record:
                    last_change[holder] = when
                if previous is not None and previous[1] and holder and holder != previous[1]:
                    stood = when - last_change.get(previous[1], when)
                    assert stood >= DURATION - 0.5, (shard, previous[1], holder, stood)
                previous = (when, holder, record)


class Replica:
    def __init__(self, identity: str, kubeconfig: str, fleet: Path, tmp_path: Path):
        self.identity = identity
        self.log = tmp_path / f"{identity}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "serve",
                "--fleet",
                str(fleet),
                "--shards",
                str(SHARDS),
                "--kubeconfig",
                kubeconfig,
                "--lease-namespace",
                "default",
                "--lease-name",
                "fleet",
                "--identity",
                identity,
                "--lease-duration",
                str(int(DURATION)),
                "--renew-deadline",
                str(DEADLINE),
                "--lease-retry",
                str(RETRY),
                "--period",
                "1",
                "--no-drift-repair",
                "--metrics-address",
                "off",
            ],
            env={**os.environ, "ACM_LITE_CACHE": str(tmp_path / f"cache-{identity}")},
            stderr=self.log.open("w"),
            text=True,
        )

    def passes(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == "pass" and entry.get("cluster"):
                entry["end"] = dt.datetime.fromisoformat(entry["time"]).timestamp()
                entry["writes"] = sum(entry.get("counts", {}).get(k, 0) for k in WRITES)
                lines.append(entry)
        return lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def names_in(cluster: Cluster) -> set[str]:
    try:
        items = cluster.request("GET", "/api/v1/namespaces/apps/configmaps")["items"]
    except ApiError:
        return set()
    return {i["metadata"]["name"] for i in items}


def proxied_kubeconfig(env: controlplane.Environment, proxy: TcpProxy, path: Path) -> str:
    server = env.cluster("mgmt")
    assert server is not None
    config = yaml.safe_load(Path(server.kubeconfig).read_text())
    for entry in config["clusters"]:
        url = urlparse(entry["cluster"]["server"])
        entry["cluster"]["server"] = f"{url.scheme}://{url.hostname}:{proxy.port}"
    path.write_text(yaml.safe_dump(config))
    return str(path)


class Scene:
    """The management cluster, the members, the repository and the replicas of one test."""

    def __init__(self, env: controlplane.Environment, tmp_path: Path):
        server = env.cluster("mgmt")
        assert server is not None
        self.mgmt_kubeconfig, self.tmp_path = server.kubeconfig, tmp_path
        self.members = {m: Cluster.connect(env.merged_kubeconfig, m) for m in MEMBERS}
        self.shard = {m: shard_of(m, SHARDS) for m in MEMBERS}
        self.repo = GitRepo(tmp_path / "git")
        self.files: dict[str, Any] = {"ns.yaml": ns("apps")}
        self.commit("step-0")
        self.fleet = tmp_path / "fleet.yaml"
        self.fleet.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "acm-lite.io/v1alpha1",
                    "kind": "Fleet",
                    "metadata": {"name": "shared"},
                    "spec": {
                        "sync": {"repo": self.repo.url, "revision": "main", "sourceFormat": "unstructured"},
                        "clusters": [
                            {"name": m, "kubeconfig": env.merged_kubeconfig, "context": m} for m in MEMBERS
                        ],
                    },
                }
            )
        )
        url = urlparse(server.url)
        self.proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 443)
        self.proxied = proxied_kubeconfig(env, self.proxy, tmp_path / "a.kubeconfig")
        self.watcher = LeaseWatcher(Cluster.connect(server.kubeconfig))
        self.replicas: dict[str, Replica] = {}

    def start(self, identity: str, *, proxied: bool = False) -> None:
        kubeconfig = self.proxied if proxied else self.mgmt_kubeconfig
        self.replicas[identity] = Replica(identity, kubeconfig, self.fleet, self.tmp_path)

    def commit(self, name: str) -> None:
        self.files[f"{name}.yaml"] = cm(name, "apps")
        self.repo.commit(self.files)

    def synced(self, name: str) -> bool:
        return all(name in names_in(c) for c in self.members.values())

    def holders(self) -> list[str]:
        return sorted(self.watcher.holders().values())

    def passes(self, member: str, *, since: float = 0.0, writes: bool = False) -> list[tuple[float, str]]:
        """(end, replica) of each pass on ``member`` that ended after ``since``."""
        return sorted(
            (p["end"], r)
            for r, rep in self.replicas.items()
            for p in rep.passes()
            if p["cluster"] == member and p["end"] > since and (p["writes"] or not writes)
        )

    def close(self) -> None:
        self.watcher.stop()
        for replica in self.replicas.values():
            replica.stop()
        self.proxy.close()


@pytest.fixture
def scene(env: controlplane.Environment, tmp_path: Path) -> Iterator[Scene]:
    created = Scene(env, tmp_path)
    yield created
    created.close()


def _two_replicas_split_the_fleet(scene: Scene) -> None:
    scene.start("a", proxied=True)  # through a proxy the test cuts later
    scene.start("b")
    eventually(lambda: scene.synced("step-0"), 120)
    eventually(lambda: scene.holders() == ["a", "a", "b", "b"], 30)
    holders = scene.watcher.holders()
    settled = time.time()
    scene.commit("step-0b")
    eventually(lambda: scene.synced("step-0b"), 60)
    assert scene.watcher.holders() == holders
    for member in MEMBERS:  # each cluster written only by its shard's holder
        writers = {r for _end, r in scene.passes(member, since=settled, writes=True)}
        assert writers == {holders[scene.shard[member]]}, (member, writers)


def _a_third_replica_takes_its_share(scene: Scene) -> None:
    """Shares become 2/1/1, handed over by a release after the giver stopped."""
    scene.start("c")
    eventually(lambda: scene.holders() == ["a", "a", "b", "c"], 30)
    scene.commit("step-1")
    eventually(lambda: scene.synced("step-1"), 60)
    holders = scene.watcher.holders()
    for member in MEMBERS:
        last = scene.passes(member)[-1]
        assert last[1] == holders[scene.shard[member]], (member, last, holders)


def _a_killed_replica_is_replaced_within_a_lease_duration(scene: Scene) -> None:
    """Killed mid-pass: as soon as the first of its clusters has the new commit."""
    b_shards = [s for s, h in scene.watcher.holders().items() if h == "b"]
    b_members = [m for m in MEMBERS if scene.shard[m] in b_shards]
    scene.commit("step-2")
    eventually(lambda: any("step-2" in names_in(scene.members[m]) for m in b_members), 30)
    scene.replicas["b"].proc.kill()
    scene.replicas["b"].proc.wait()
    killed = time.monotonic()
    eventually(lambda: all(scene.watcher.holders()[s] in ("a", "c") for s in b_shards), DURATION + 10)
    taken = time.monotonic() - killed
    eventually(lambda: scene.synced("step-2"), 60)
    resynced = time.monotonic() - killed
    assert taken <= DURATION + 2 * RETRY + 2.0, taken
    assert resynced <= DURATION + 2 * RETRY + 6.0, resynced  # plus one pass on each cluster
    eventually(lambda: scene.holders() == ["a", "a", "c", "c"], 30)


def _a_partitioned_replica_stops_before_its_leases_expire(scene: Scene) -> None:
    """Commits keep coming while a cannot reach the management cluster: a writes its clusters
    until its renew deadline at most, c only after that."""
    a_clusters = [m for m in MEMBERS if scene.watcher.holders()[scene.shard[m]] == "a"]
    scene.proxy.cut()
    cut = time.time()
    step = 3
    while time.time() - cut < DURATION + 4:
        scene.commit(f"step-{step}")
        step += 1
        time.sleep(0.7)
    last_step = f"step-{step - 1}"
    eventually(lambda: scene.synced(last_step), 60)  # c took every shard and synced
    assert scene.holders() == ["c"] * SHARDS
    for member in a_clusters:
        writes = scene.passes(member, since=cut, writes=True)
        late = [(end, r) for end, r in writes if r == "a" and end > cut + DEADLINE + 0.5]
        assert late == [], late  # a stopped writing before its Leases could expire for c
        by_c = [end for end, r in writes if r == "c"]
        assert by_c and min(by_c) > cut + DEADLINE, (member, writes)
    assert "ACM2018" in scene.replicas["a"].log.read_text()  # it said why


def test_replicas_share_a_fleet_through_leases(scene: Scene) -> None:
    _two_replicas_split_the_fleet(scene)
    _a_third_replica_takes_its_share(scene)
    _a_killed_replica_is_replaced_within_a_lease_duration(scene)
    _a_partitioned_replica_stops_before_its_leases_expire(scene)
    # throughout: no shard went directly from one live holder to another, and no two replicas'
    # passes with writes overlapped on one cluster
    scene.watcher.stop()
    scene.watcher.check_no_overlap()
    for member in MEMBERS:
        spans = sorted(
            (p["end"] - p["seconds"], p["end"], r)
            for r, rep in scene.replicas.items()
            for p in rep.passes()
            if p["cluster"] == member and p["writes"]
        )
        for (s1, e1, r1), (s2, _e2, r2) in itertools.pairwise(spans):
            assert r1 == r2 or s2 >= e1, (member, (s1, e1, r1), (s2, r2))
