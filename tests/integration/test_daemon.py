"""The daemon against a real API server: the loop, drift repair, the Lease, metrics, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.devcluster.process import free_port
from acm_lite.reconcile import metrics as metrics_mod
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.leader import LeaderElector
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get, without_other_rootsyncs
from tests.unit.repo_builder import cm, ns

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(control_plane: APIServer, tmp_path: Path) -> Iterator[tuple[GitRepo, str, str]]:
    suffix = uuid.uuid4().hex[:6]
    yield GitRepo(tmp_path / "git"), f"d-{suffix}", f"d-{suffix}"


def daemon_for(
    control_plane: APIServer,
    repo: GitRepo,
    name: str,
    tmp_path: Path,
    elector: LeaderElector | None = None,
    *,
    options: DaemonOptions | None = None,
) -> tuple[Daemon, Cluster]:
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache"),
        options or DaemonOptions(period=0.3),
        elector,
    )
    return daemon, cluster


def test_loop_new_commit_drift_repair_skips_and_metrics(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
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

        second = repo.commit({"b.yaml": cm("b", namespace)})  # picked up by the loop
        eventually(lambda: get(cluster, f"{path}/b") is not None)
        eventually(lambda: worker.synced_commit == second)  # that pass has finished, status too
        passes = worker.passes

        writes = cluster.writes
        time.sleep(1.5)  # several unchanged polls
        assert worker.passes == passes
        assert cluster.writes == writes  # an unchanged poll writes nothing

        cluster.request(
            "PATCH", f"{path}/a", body={"data": {"k": "edited"}}, content_type="application/merge-patch+json"
        )
        eventually(lambda: (get(cluster, f"{path}/a") or {}).get("data") == {"k": "v"}, 5)
        cluster.request("DELETE", f"{path}/b")
        eventually(lambda: get(cluster, f"{path}/b") is not None, 5)

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
        repairs = [
            s.value
            for s in families["acm_lite_drift_repairs"].samples
            if s.name.endswith("_total") and s.labels["sync"] == name
        ]
        assert repairs and repairs[0] >= 2
        assert any(s.labels.get("sync") == name for s in families["acm_lite_sync_duration_seconds"].samples)
        assert (
            next(
                s.value
                for s in families["acm_lite_skipped_polls"].samples
                if s.name.endswith("_total") and s.labels["sync"] == name
            )
            > 0
        )
        for endpoint in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{endpoint}") as resp:
                assert resp.status == 200
    finally:
        daemon.stop()
        server.shutdown()


def test_two_daemons_one_lease_one_writer(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    repo, name, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    lease_cluster = Cluster.connect(control_plane.kubeconfig)
    lease_name = f"lease-{name}"
    electors = [
        LeaderElector(lease_cluster, "default", lease_name, who, duration=6.0, renew_every=1.0)
        for who in ("one", "two")
    ]
    pairs = [
        daemon_for(control_plane, repo, name, tmp_path / who, e)
        for who, e in zip(("one", "two"), electors, strict=True)
    ]
    for daemon, _ in pairs:
        daemon.start()
    try:
        eventually(lambda: get(pairs[0][1], f"/api/v1/namespaces/{namespace}/configmaps/a") is not None)
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
        eventually(lambda: get(pairs[other][1], f"/api/v1/namespaces/{namespace}/configmaps/b") is not None)
        assert pairs[other][1].writes > 0
    finally:
        for daemon, _ in pairs:
            daemon.stop()


def test_sigterm_mid_sync_then_restart_converges(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    repo, name, namespace = setup
    files: dict[str, Any] = {"ns.yaml": ns(namespace)}
    files.update({f"cm/{i:03d}.yaml": cm(f"c{i:03d}", namespace) for i in range(300)})
    repo.commit(files)
    env = {**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache")}
    args = [
        sys.executable,
        "-m",
        "acm_lite",
        "serve",
        "--repo",
        repo.url,
        "--revision",
        "main",
        "--source-format",
        "unstructured",
        "--name",
        name,
        "--kubeconfig",
        control_plane.kubeconfig,
        "--period",
        "0.5",
        "--metrics-address",
        "off",
        "--leader-elect",
        "--lease-namespace",
        "default",
        "--lease-name",
        f"l-{name}",
    ]
    cluster = Cluster.connect(control_plane.kubeconfig)

    def count() -> int:
        items = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
        return sum(1 for i in items if i["metadata"]["name"].startswith("c"))

    first = subprocess.Popen(args, env=env, stderr=(tmp_path / "first.log").open("w"), text=True)
    try:
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}") is not None, 60)
        first.send_signal(signal.SIGTERM)  # mid-sync: some objects are applied, some not yet
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
    lease = cluster.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/default/leases/l-{name}")
    assert lease["spec"].get("holderIdentity", "") == ""  # released on the way out
    (tmp_path / "serve.log").write_text("")
    second = subprocess.Popen(args, env=env, stderr=(tmp_path / "serve.log").open("a"), text=True)
    try:
        _wait_for_pass(second, tmp_path)  # JSON logs: the restarted daemon's first pass
        eventually(lambda: count() == 300, 90)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    assert count() == 300


@contextmanager
def _serving(control_plane: APIServer, tmp_path: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """The daemon as a process for the body of a ``with``; its JSON logs go to a file (a pipe
    nobody reads would block it). Stopped with SIGTERM afterwards, which it must end cleanly."""
    log = (tmp_path / "serve.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "acm_lite", "serve", "--kubeconfig", control_plane.kubeconfig, *extra],
        env={**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache")},
        stderr=log,
        text=True,
    )
    try:
        yield daemon
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0


def _wait_for_pass(daemon: subprocess.Popen[str], tmp_path: Path) -> None:
    eventually(lambda: '"message": "pass"' in (tmp_path / "serve.log").read_text(), 60)


def test_a_signed_push_webhook_syncs_at_once(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    import hashlib
    import hmac

    repo, name, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    (tmp_path / "secret").write_text("hook-secret\n")
    port = free_port()
    cluster = Cluster.connect(control_plane.kubeconfig)
    with _serving(
        control_plane,
        tmp_path,
        "--repo",
        repo.url,
        "--revision",
        "main",
        "--source-format",
        "unstructured",
        "--name",
        name,
        "--period",
        "600",
        "--metrics-address",
        f"127.0.0.1:{port}",
        "--webhook-secret-file",
        str(tmp_path / "secret"),
    ) as daemon:
        _wait_for_pass(daemon, tmp_path)
        repo.commit({"b.yaml": cm("b", namespace)})
        body = b'{"ref": "refs/heads/main"}'

        def post(signature: str) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhook",
                data=body,
                method="POST",
                headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signature},
            )
            try:
                with urllib.request.urlopen(request) as resp:
                    return int(resp.status)
            except urllib.error.HTTPError as e:
                return int(e.code)

        assert post("sha256=" + "0" * 64) == 401
        time.sleep(1)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/b") is None
        good = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        assert post(good) == 202
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/b") is not None, 10)
        listed = cluster.request("GET", "/api/v1/namespaces/acm-lite-system/events")["items"]
        assert any(e["involvedObject"]["name"] == name and e["reason"] == "Synced" for e in listed)


def test_a_saved_file_in_a_local_directory_syncs_within_seconds(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    import yaml

    _, name, namespace = setup
    folder = tmp_path / "live-edit"
    folder.mkdir()
    (folder / "ns.yaml").write_text(yaml.safe_dump(ns(namespace)))
    cluster = Cluster.connect(control_plane.kubeconfig)
    with _serving(
        control_plane,
        tmp_path,
        "--repo",
        str(folder),
        "--source-format",
        "unstructured",
        "--name",
        name,
        "--period",
        "600",
        "--metrics-address",
        "off",
    ) as daemon:
        _wait_for_pass(daemon, tmp_path)
        saved = time.monotonic()
        (folder / "cm.yaml").write_text(yaml.safe_dump(cm("saved", namespace)))
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/saved") is not None, 10)
        assert time.monotonic() - saved < 5


def test_rootsync_objects_start_and_stop_syncs(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    repo, name, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    cluster = Cluster.connect(control_plane.kubeconfig)
    from acm_lite.status import store

    store.install(cluster)
    without_other_rootsyncs(cluster)
    with _serving(control_plane, tmp_path, "--from-cluster", "--period", "0.5", "--metrics-address", "off"):
        time.sleep(1)
        assert get(cluster, f"/api/v1/namespaces/{namespace}") is None
        path = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs"
        cluster.request(
            "POST",
            path,
            body={
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "RootSync",
                "metadata": {"name": name, "namespace": "acm-lite-system"},
                "spec": {
                    "sourceFormat": "unstructured",
                    "git": {"repo": repo.url, "revision": "main", "dir": "."},
                },
            },
        )
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a") is not None, 30)
        cluster.request("DELETE", f"{path}/{name}")
        time.sleep(3)  # the worker notices and stops
        repo.commit({"b.yaml": cm("b", namespace)})
        time.sleep(3)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/b") is None
        assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/a") is not None  # kept


def test_syncs_from_a_config_file(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    import yaml

    repo, name, namespace = setup
    repo.commit(
        {
            "one/ns.yaml": ns(f"{namespace}-1"),
            "one/a.yaml": cm("a", f"{namespace}-1"),
            "two/ns.yaml": ns(f"{namespace}-2"),
            "two/a.yaml": cm("a", f"{namespace}-2"),
        }
    )
    (tmp_path / "syncs.yaml").write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "acm-lite.io/v1alpha1",
                    "kind": "RootSync",
                    "metadata": {"name": f"{name}-{n}"},
                    "spec": {
                        "sourceFormat": "unstructured",
                        "git": {"repo": repo.url, "revision": "main", "dir": d},
                    },
                }
                for n, d in ((1, "one"), (2, "two"))
            ]
        )
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "acm_lite",
            "serve",
            "--kubeconfig",
            control_plane.kubeconfig,
            "--config",
            str(bad),
            "--metrics-address",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "ACM4001" in refused.stderr
    cluster = Cluster.connect(control_plane.kubeconfig)
    with _serving(
        control_plane,
        tmp_path,
        "--config",
        str(tmp_path / "syncs.yaml"),
        "--period",
        "0.5",
        "--metrics-address",
        "off",
    ):
        path = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs"

        def states() -> list[str | None]:  # PENDING while a pass runs, then where it ended
            return [
                ((get(cluster, f"{path}/{name}-{n}") or {}).get("status") or {}).get("state") for n in (1, 2)
            ]

        eventually(lambda: states() == ["SYNCED", "SYNCED"], 60)
        for n in (1, 2):
            live = get(cluster, f"/api/v1/namespaces/{namespace}-{n}/configmaps/a")
            assert live is not None
            assert live["metadata"]["labels"]["acm-lite.io/sync"] == f"{name}-{n}"


def test_a_fight_is_reported_instead_of_looped_on(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    repo, name, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    daemon, cluster = daemon_for(
        control_plane, repo, name, tmp_path, options=DaemonOptions(period=0.3, fight_threshold=3)
    )
    daemon.start()
    worker = daemon.workers[0]
    path = f"/api/v1/namespaces/{namespace}/configmaps/a"
    try:
        eventually(lambda: worker.remediator is not None)
        rogue = Cluster.connect(control_plane.kubeconfig)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not worker.remediator.fights:  # type: ignore[union-attr]
            rogue.request(
                "PATCH", path, body={"data": {"k": "mine"}}, content_type="application/merge-patch+json"
            )
            time.sleep(0.2)
        assert worker.remediator is not None and worker.remediator.fights
        rogue.request(
            "PATCH", path, body={"data": {"k": "mine"}}, content_type="application/merge-patch+json"
        )
        time.sleep(1.5)
        assert (get(cluster, path) or {}).get("data") == {"k": "mine"}  # no more looping
        status = cluster.request(
            "GET", f"/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs/{name}"
        )["status"]
        assert status["state"] == "ERROR"
        assert [e["code"] for e in status["errors"]] == ["KNV2005"]
        listed = cluster.request("GET", "/api/v1/namespaces/acm-lite-system/events")["items"]
        assert any(e["involvedObject"]["name"] == name and e["reason"] == "Fight" for e in listed)
        assert daemon.metrics.fights.labels(name)._value.get() == 1
    finally:
        daemon.stop()
