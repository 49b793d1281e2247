"""The daemon and `sync --once` when things go wrong: a pass that raises, an API server that hangs
mid-pass (SIGSTOP of a dedicated control plane's kube-apiserver), and the status they leave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acm_lite.apply import inventory
from acm_lite.cluster.client import Cluster, load_configuration
from acm_lite.devcluster import controlplane
from acm_lite.devcluster.controlplane import APIServer, Environment
from acm_lite.devcluster.process import free_port
from acm_lite.reconcile import metrics as metrics_mod
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns

TIMEOUT = 4.0  # seconds one request to the hung API server may take (a loaded machine is slow)


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    found = store.read(cluster, name) or {}
    return dict(found.get("status") or {})


def test_a_pass_that_raises_is_reported_and_the_loop_goes_on(
    control_plane: APIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = namespace = f"f-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    checked = pipeline._policy

    def policy_that_trips(declared: Any, *args: Any, **kwargs: Any) -> Any:  # a bug, not an input defect
        if any(o.id.name == "trips" for o in declared.objects):
            raise KeyError("injected: a stage that raises")
        return checked(declared, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_policy", policy_that_trips)
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache"),
        DaemonOptions(period=0.3, backoff_max=0.6, unready_after=1.5),
    )
    port = free_port()
    server = metrics_mod.serve(("127.0.0.1", port), daemon.metrics, daemon.ready)
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: status_of(cluster, name).get("state") == "SYNCED", 30)
        assert readyz(port) == 200

        repo.commit({"trips.yaml": cm("trips", namespace)})
        eventually(lambda: status_of(cluster, name).get("state") == "ERROR", 30)
        status = status_of(cluster, name)
        assert [e["code"] for e in status["errors"]] == ["ACM2012"]
        assert "KeyError: 'injected: a stage that raises'" in status["errors"][0]["message"]
        assert status["stage"] == "policy"
        assert "Traceback" not in json.dumps(status)
        failed_passes = worker.passes
        eventually(lambda: worker.passes >= failed_passes + 2, 10)  # still polling, retrying
        assert worker.thread.is_alive()
        eventually(lambda: readyz(port) == 503, 10)  # no progress for longer than 1.5 s

        fixed = repo.commit({"trips.yaml": None})
        eventually(lambda: status_of(cluster, name).get("lastSyncedCommit") == fixed, 30)
        assert status_of(cluster, name)["errors"] == []
        eventually(lambda: readyz(port) == 200, 5)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/trips") is None
    finally:
        daemon.stop()
        server.shutdown()


@pytest.fixture(scope="module")
def hangable(control_plane_binaries: dict[str, Path]) -> Iterator[Environment]:
    """A control plane of its own, whose kube-apiserver the tests stop (SIGSTOP) and resume."""
    env = controlplane.start(
        ["hang"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    yield env
    os.kill(env.clusters[0].pid, signal.SIGCONT)
    controlplane.stop(env)


def many(namespace: str, count: int) -> dict[str, Any]:
    return {
        "ns.yaml": ns(namespace),
        **{f"cm/{i:04d}.yaml": cm(f"c{i:04d}", namespace) for i in range(count)},
    }


def test_sync_once_against_an_api_server_that_hangs_mid_pass(hangable: Environment, tmp_path: Path) -> None:
    server = hangable.clusters[0]
    name = namespace = f"h-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    commit = repo.commit(many(namespace, 400))
    args = [
        sys.executable,
        "-m",
        "acm_lite",
        "sync",
        "--once",
        "--repo",
        repo.url,
        "--revision",
        "main",
        "--source-format",
        "unstructured",
        "--name",
        name,
        "--kubeconfig",
        server.kubeconfig,
        "--concurrency",
        "4",
    ]
    env = {**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache"), "ACM_LITE_REQUEST_TIMEOUT": str(TIMEOUT)}
    sync = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert sync.stdout is not None
    lines = []
    try:
        while len(lines) < 30:  # some objects are applied: now the API server hangs
            line = sync.stdout.readline()
            assert line, f"the pass ended before the API server hung: {sync.communicate()[1]}"
            lines.append(line)
        os.kill(server.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        out, err = sync.communicate(timeout=60)
        took = time.monotonic() - stopped
    finally:
        os.kill(server.pid, signal.SIGCONT)
        if sync.poll() is None:
            sync.kill()
    assert sync.returncode == 3, err
    assert took < 30, took  # a few request timeouts, not one per object left
    assert "Found issues: 1 error(s), 0 warning(s)" in err
    assert "ACM2010 APIServerUnreachable" in err and "Traceback" not in err
    summary = [line for line in out.splitlines() if line.startswith("ERROR: ")]
    assert len(summary) == 1, out
    assert summary[0].startswith(f"ERROR: sync of {commit[:12]} as '{name}' failed at stage apply")
    assert "changes applied before the failure" in summary[0] and "synced" not in summary[0]
    assert "\nstatus could not be recorded: ACM2013 StatusNotRecorded" in out

    cluster = Cluster(load_configuration(server.kubeconfig))
    eventually(lambda: _answers(cluster), 60)
    status = status_of(cluster, name)  # written before the first object was applied
    assert (status["state"], status["stage"], status["commit"]) == ("PENDING", "apply", commit)
    assert status["managedObjects"] == len(inventory.read(cluster, name)) == 401

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith(f"SYNCED: synced {commit[:12]}")
    status = status_of(cluster, name)
    assert (status["state"], status["errors"], status["managedObjects"]) == ("SYNCED", [], 401)


def _answers(cluster: Cluster) -> bool:
    try:
        cluster.request("GET", "/api/v1/namespaces/default")
    except Exception:
        cluster.breaker.reset()
        return False
    return True


def test_the_daemon_backs_off_from_a_hung_api_server_and_recovers(
    hangable: Environment, tmp_path: Path
) -> None:
    server = hangable.clusters[0]
    name = namespace = f"r-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace)})
    cluster = Cluster(load_configuration(server.kubeconfig), timeouts=(TIMEOUT, TIMEOUT))
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache", concurrency=4),
        DaemonOptions(period=0.3, backoff_max=1.0, unready_after=2.0),
    )
    port = free_port()
    http = metrics_mod.serve(("127.0.0.1", port), daemon.metrics, daemon.ready)
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: worker.synced_commit is not None, 60)
        commit = repo.commit(many(namespace, 400))
        eventually(lambda: cluster.requests["PATCH"] > 40, 60)
        os.kill(server.pid, signal.SIGSTOP)
        try:
            eventually(lambda: worker.failures >= 2, 30)  # the pass ended; retried, failed again
            assert worker.thread.is_alive()
            eventually(lambda: readyz(port) == 503, 15)
        finally:
            os.kill(server.pid, signal.SIGCONT)
        eventually(lambda: worker.synced_commit == commit, 90)  # the next pass after recovery
        status = status_of(cluster, name)
        assert (status["state"], status["errors"], status["managedObjects"]) == ("SYNCED", [], 401)
        eventually(lambda: readyz(port) == 200, 10)
    finally:
        daemon.stop()
        http.shutdown()
