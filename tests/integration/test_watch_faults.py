"""Drift watches through a loopback proxy that cuts them, against real API servers: a watch cut
mid-stream resumes from its resourceVersion in the same epoch and still repairs an edit made
while it was cut; a watch whose resourceVersion etcd compacted meanwhile gets a real 410 Gone,
starts over in a new epoch (``synced`` false, then true) and repairs an edit and a deletion
made while it was cut.

The 410 needs a resume that misses the API server's watch cache: kube-apiserver 1.37 serves a
watch from its cache, which keeps recent events (at least 100, or 75 s) whatever etcd
compacted, so a short cut never expires there. The second control plane runs without a watch
cache for ConfigMaps (``--watch-cache-sizes=configmaps#0``, so their watches go to etcd) and
compacts etcd every second (``--etcd-compaction-interval=1s``): a resume from before the last
compaction gets etcd's "required revision has been compacted", which the API server sends as an
ERROR event of ``410 Expired``."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import pytest
import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.devcluster import controlplane
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.metrics import Metrics
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.reconcile.remediator import Remediator
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.support.tcpproxy import TcpProxy
from tests.unit.repo_builder import cm, ns

MERGE = "application/merge-patch+json"
COMPACTION_FLAGS = ["--watch-cache-sizes=configmaps#0", "--etcd-compaction-interval=1s"]


@pytest.fixture(scope="module")
def compacting(control_plane_binaries: dict[str, Path]) -> Iterator[APIServer]:
    """A control plane whose ConfigMap watches read etcd, compacted every second."""
    env = controlplane.start(
        ["compacting"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
        apiserver_flags=COMPACTION_FLAGS,
    )
    yield env.clusters[0]
    controlplane.stop(env)


def _proxied(server: APIServer, tmp_path: Path) -> tuple[TcpProxy, Path]:
    """A proxy to ``server`` the test can cut, and a kubeconfig that goes through it."""
    url = urlparse(server.url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 443)
    config = yaml.safe_load(Path(server.kubeconfig).read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    proxied = tmp_path / "proxied.kubeconfig"
    proxied.write_text(yaml.safe_dump(config))
    return proxy, proxied


class Scene:
    """A synced namespace of two ConfigMaps, a and b, defended by a remediator whose requests go
    through a proxy the test cuts; the test's own requests go straight to the server."""

    def __init__(self, server: APIServer, tmp_path: Path):
        suffix = uuid.uuid4().hex[:6]
        self.name, self.namespace = f"w-{suffix}", f"w-{suffix}"
        self.direct = Cluster.connect(server.kubeconfig)
        self.proxy, proxied = _proxied(server, tmp_path)
        repo = GitRepo(tmp_path / "git")
        repo.commit(
            {
                "ns.yaml": ns(self.namespace),
                "a.yaml": cm("a", self.namespace),
                "b.yaml": cm("b", self.namespace),
            }
        )
        spec = SyncSpec(repo=repo.url, name=self.name, revision="main", source_format="unstructured")
        result = pipeline.run(spec, self.direct, SyncOptions(git_cache=tmp_path / "cache"))
        assert result.ok and result.changeset is not None, [p.render() for p in result.problems]
        cluster = Cluster.connect(str(proxied))
        self.remediator = Remediator(
            cluster, Discovery(cluster), self.name, metrics=Metrics(), allowed=lambda: True
        )
        self.remediator.backoff = (0.2, 1.0, 120.0)  # a test's cut is seconds long
        self.remediator.update(result.changeset)
        self.path = f"/api/v1/namespaces/{self.namespace}/configmaps"
        self.states: list[tuple[int, bool]] = []  # every (epoch, synced) seen, in order
        self._watching = threading.Event()
        threading.Thread(target=self._record, daemon=True).start()

    def _record(self) -> None:
        while not self._watching.is_set():
            state = (self.remediator.epoch, self.remediator.synced)
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            time.sleep(0.005)

    def data(self, name: str) -> Any:
        return (get(self.direct, f"{self.path}/{name}") or {}).get("data")

    def edit(self, name: str) -> str:
        """Someone else's edit of a managed ConfigMap; its resourceVersion."""
        edited = self.direct.request(
            "PATCH", f"{self.path}/{name}", body={"data": {"k": "edited"}}, content_type=MERGE
        )
        return str(edited["metadata"]["resourceVersion"])

    def relists(self) -> float:
        value = self.remediator.metrics.registry.get_sample_value(
            "acm_lite_watch_relists_total", {"sync": self.name, "resource": "configmaps.v1"}
        )
        return value or 0.0

    def close(self) -> None:
        self._watching.set()
        self.remediator.stop()
        self.proxy.close()


@pytest.fixture
def scene(control_plane: APIServer, tmp_path: Path) -> Iterator[Scene]:
    s = Scene(control_plane, tmp_path)
    yield s
    s.close()


@pytest.fixture
def compacted_scene(compacting: APIServer, tmp_path: Path) -> Iterator[Scene]:
    s = Scene(compacting, tmp_path)
    yield s
    s.close()


def test_a_watch_cut_mid_stream_resumes_in_the_same_epoch_and_repairs_an_edit_made_meanwhile(
    scene: Scene,
) -> None:
    remediator = scene.remediator
    eventually(lambda: remediator.synced)
    assert remediator.epoch == 2  # the first start of the Namespace and the ConfigMap watches
    scene.edit("a")  # repaired through the live watch
    eventually(lambda: scene.data("a") == {"k": "v"}, 10)

    scene.proxy.cut()
    eventually(lambda: not remediator.synced, 10)
    scene.edit("a")
    time.sleep(1.0)  # retries against the cut proxy, which refuses them
    assert scene.data("a") == {"k": "edited"}
    scene.proxy.restore()

    eventually(lambda: scene.data("a") == {"k": "v"}, 15)  # the resumed watch brought the edit
    eventually(lambda: remediator.synced, 10)
    assert remediator.epoch == 2 and scene.relists() == 0
    # synced, not synced while cut, synced again: never a new epoch
    assert max(epoch for epoch, _ in scene.states) == 2 and scene.states[-1] == (2, True)
    first = scene.states.index((2, True))
    assert (2, False) in scene.states[first:]


def test_a_real_410_gone_starts_over_in_a_new_epoch_and_repairs_what_changed_meanwhile(
    compacted_scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    scene, remediator = compacted_scene, compacted_scene.remediator
    eventually(lambda: remediator.synced)
    assert remediator.epoch == 2  # the first start of the Namespace and the ConfigMap watches

    scene.proxy.cut()
    eventually(lambda: not remediator.synced, 10)
    edited = scene.edit("a")  # later than any resourceVersion the cut watch holds
    scene.direct.request("DELETE", f"{scene.path}/b")
    # etcd compacts past the edit: a watch from there (so from the cut watch's place) gets 410
    filler = f"/api/v1/namespaces/{scene.namespace}/configmaps"
    deadline = time.monotonic() + 60
    for n in range(10_000):
        scene.direct.request("POST", filler, body={"metadata": {"name": f"filler-{n}"}})
        if _expired(scene.direct, filler, edited):
            break
        assert time.monotonic() < deadline, "etcd never compacted past the edit"
        time.sleep(0.3)
    assert scene.data("a") == {"k": "edited"} and scene.data("b") is None

    with caplog.at_level(logging.INFO, logger="acm_lite"):
        scene.proxy.restore()
        eventually(lambda: remediator.epoch == 3, 15)
        eventually(lambda: remediator.synced, 15)
        eventually(lambda: scene.data("a") == {"k": "v"} and scene.data("b") == {"k": "v"}, 15)
    assert scene.relists() == 1
    lost = [r for r in caplog.records if r.getMessage().startswith("watch lost its place")]
    whys = [getattr(r, "fields", {}).get("why", "") for r in lost]
    assert len(whys) == 1 and "410" in whys[0], whys
    # synced, cut (not synced), the start over (a new epoch, not synced until read), synced again
    assert scene.states[-1] == (3, True) and remediator.epoch == 3
    assert (2, True) in scene.states and (3, False) in scene.states
    assert scene.states.index((2, True)) < scene.states.index((3, False)) < len(scene.states) - 1


def _expired(cluster: Cluster, path: str, version: str) -> bool:
    """Whether a watch from ``version`` is answered 410 Gone (etcd compacted past it)."""
    stop = threading.Event()
    watch = cluster.watch(path, {"resourceVersion": version, "timeoutSeconds": 1}, stop)
    with contextlib.closing(cast(Generator[Any, None, None], watch)) as events:
        for event in events:
            return bool(event.get("type") == "ERROR" and event["object"].get("code") == 410)
    return False


def _passes(daemon: Daemon, name: str, mode: str) -> float:
    return (
        daemon.metrics.registry.get_sample_value("acm_lite_passes_total", {"sync": name, "mode": mode}) or 0
    )


def test_after_a_watch_lost_its_place_the_next_commit_gets_a_full_pass(
    compacting: APIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An incremental pass trusts the drift watches for every object a commit leaves alone: once
    one of them got 410 Gone (it may have missed changes), the next commit is synced in full, and
    the one after it incrementally again."""
    suffix = uuid.uuid4().hex[:6]
    name = namespace = f"wi-{suffix}"
    direct = Cluster.connect(compacting.kubeconfig)
    proxy, proxied = _proxied(compacting, tmp_path)
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace), "b.yaml": cm("b", namespace)})
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    cluster = Cluster.connect(str(proxied))
    daemon = Daemon(
        [(spec, lambda: cluster)], SyncOptions(git_cache=tmp_path / "cache"), DaemonOptions(period=0.3), None
    )
    worker = daemon.workers[0]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    daemon.start()
    try:
        eventually(lambda: worker.baseline is not None and worker.baseline.relists is not None, 20)
        remediator = worker.remediator
        assert remediator is not None
        remediator.backoff = (0.2, 1.0, 120.0)
        full = _passes(daemon, name, "full")  # one, or more if a pass failed on the way
        first = repo.commit({"a.yaml": cm("a", namespace, data={"k": "one"})})
        eventually(lambda: worker.synced_commit == first, 20)
        assert (_passes(daemon, name, "full"), _passes(daemon, name, "incremental")) == (full, 1)
        epoch, relists = remediator.epoch, remediator.relists

        proxy.cut()
        eventually(lambda: not remediator.synced, 10)
        edited = direct.request("PATCH", f"{path}/b", body={"data": {"k": "edited"}}, content_type=MERGE)
        for n in range(200):
            direct.request("POST", path, body={"metadata": {"name": f"filler-{n}"}})
            if _expired(direct, path, str(edited["metadata"]["resourceVersion"])):
                break
            time.sleep(0.3)
        proxy.restore()
        eventually(lambda: remediator.epoch > epoch and remediator.synced, 20)
        assert remediator.relists == relists + 1
        eventually(lambda: (get(direct, f"{path}/b") or {}).get("data") == {"k": "v"}, 15)

        with caplog.at_level(logging.INFO, logger="acm_lite"):
            second = repo.commit({"a.yaml": cm("a", namespace, data={"k": "two"})})
            eventually(lambda: worker.synced_commit == second, 20)
        assert (_passes(daemon, name, "full"), _passes(daemon, name, "incremental")) == (full + 1, 1)
        said = [r.getMessage() for r in caplog.records]
        assert any(m.startswith("full pass: a drift watch lost its place") for m in said), said
        eventually(lambda: worker.baseline is not None and worker.baseline.relists is not None, 20)
        third = repo.commit({"a.yaml": cm("a", namespace, data={"k": "three"})})
        eventually(lambda: worker.synced_commit == third, 20)
        assert (_passes(daemon, name, "full"), _passes(daemon, name, "incremental")) == (full + 1, 2)
        assert (get(direct, f"{path}/a") or {}).get("data") == {"k": "three"}
    finally:
        daemon.stop()
        proxy.close()
