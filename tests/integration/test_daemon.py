"""The daemon against a real API server: the loop, drift repair, the Lease, metrics, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.devcluster.process import free_port
from acm_lite.reconcile import metrics as metrics_mod
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.leader import LeaderElector
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

ROOT = Path(__file__).resolve().parents[2]


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cluster.request("GET", path)
        return found
    except ApiError as e:
        if e.status == 404:
            return None
        raise


@pytest.fixture
def setup(control_plane: APIServer, tmp_path: Path) -> Iterator[tuple[GitRepo, str, str]]:
    suffix = uuid.uuid4().hex[:6]
    yield GitRepo(tmp_path / "git"), f"d-{suffix}", f"d-{suffix}"


def daemon_for(control_plane: APIServer, repo: GitRepo, name: str, tmp_path: Path,
               elector: LeaderElector | None = None) -> tuple[Daemon, Cluster]:
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon([(spec, lambda: cluster)], SyncOptions(git_cache=tmp_path / "cache"),
                    DaemonOptions(period=0.3), elector)
    return daemon, cluster


def test_loop_new_commit_drift_repair_skips_and_metrics(
        control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path) -> None:
    repo, name, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    daemon, cluster = daemon_for(control_plane, repo, name, tmp_path)
    port = free_port()
    server = metrics_mod.serve(("127.0.0.1", port), daemon.metrics, daemon.ready)
    daemon.start()
    worker = daemon.workers[0]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    try:
        eventually(lambda: get(cluster, f"{path}/a") is not None)
        eventually(lambda: worker.remediator is not None)

        repo.commit({"b.yaml": cm("b", namespace)})  # a new commit is picked up by the loop
        eventually(lambda: get(cluster, f"{path}/b") is not None)
        passes = worker.passes

        writes = cluster.writes
        time.sleep(1.5)  # several unchanged polls
        assert worker.passes == passes
        assert cluster.writes == writes  # an unchanged poll writes nothing

        cluster.request("PATCH", f"{path}/a", body={"data": {"k": "edited"}},
                        content_type="application/merge-patch+json")
        eventually(lambda: (get(cluster, f"{path}/a") or {}).get("data") == {"k": "v"}, 5)
        cluster.request("DELETE", f"{path}/b")
        eventually(lambda: get(cluster, f"{path}/b") is not None, 5)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
        repairs = [s.value for s in families["acm_lite_drift_repairs"].samples
                   if s.name.endswith("_total") and s.labels["sync"] == name]
        assert repairs and repairs[0] >= 2
        assert any(s.labels.get("sync") == name for s in
                   families["acm_lite_sync_duration_seconds"].samples)
        assert next(s.value for s in families["acm_lite_skipped_polls"].samples
                    if s.name.endswith("_total") and s.labels["sync"] == name) > 0
        for endpoint in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{endpoint}") as resp:
                assert resp.status == 200
    finally:
        daemon.stop()
        server.shutdown()


def test_two_daemons_one_lease_one_writer(control_plane: APIServer,
                                          setup: tuple[GitRepo, str, str], tmp_path: Path) -> None:
    repo, name, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    lease_cluster = Cluster.connect(control_plane.kubeconfig)
    lease_name = f"lease-{name}"
    electors = [LeaderElector(lease_cluster, "default", lease_name, who, duration=6.0,
                              renew_every=1.0) for who in ("one", "two")]
    pairs = [daemon_for(control_plane, repo, name, tmp_path / who, e)
             for who, e in zip(("one", "two"), electors, strict=True)]
    for daemon, _ in pairs:
        daemon.start()
    try:
        eventually(lambda: get(pairs[0][1], f"/api/v1/namespaces/{namespace}/configmaps/a")
                   is not None)
        time.sleep(2)
        leaders = [e.is_leader() for e in electors]
        assert sorted(leaders) == [False, True]
        writers = [c.writes > 0 for _, c in pairs]
        assert writers == leaders  # only the lease holder ever wrote an object
        lead = leaders.index(True)
        pairs[lead][0].stop()  # graceful: releases the lease
        other = 1 - lead
        repo.commit({"b.yaml": cm("b", namespace)})
        eventually(electors[other].is_leader, 10)
        eventually(lambda: get(pairs[other][1], f"/api/v1/namespaces/{namespace}/configmaps/b")
                   is not None)
        assert pairs[other][1].writes > 0
    finally:
        for daemon, _ in pairs:
            daemon.stop()


def test_sigterm_mid_sync_then_restart_converges(control_plane: APIServer,
                                                 setup: tuple[GitRepo, str, str],
                                                 tmp_path: Path) -> None:
    repo, name, namespace = setup
    files: dict[str, Any] = {"ns.yaml": ns(namespace)}
    files.update({f"cm/{i:03d}.yaml": cm(f"c{i:03d}", namespace) for i in range(300)})
    repo.commit(files)
    env = {**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "acm_lite", "serve", "--repo", repo.url, "--revision", "main",
            "--source-format", "unstructured", "--name", name, "--kubeconfig",
            control_plane.kubeconfig, "--period", "0.5", "--metrics-address", "off",
            "--leader-elect", "--lease-namespace", "default", "--lease-name", f"l-{name}"]
    cluster = Cluster.connect(control_plane.kubeconfig)

    def count() -> int:
        items = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
        return sum(1 for i in items if i["metadata"]["name"].startswith("c"))

    first = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}") is not None, 60)
        first.send_signal(signal.SIGTERM)  # mid-sync: some objects are applied, some not yet
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
    lease = cluster.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/default/leases/"
                                   f"l-{name}")
    assert lease["spec"].get("holderIdentity", "") == ""  # released on the way out
    second = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert second.stderr is not None
        for line in second.stderr:  # JSON logs: wait for the restarted daemon's first pass
            if '"message": "pass"' in line:
                break
        eventually(lambda: count() == 300, 90)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    assert count() == 300
