"""The daemon of ``serve --from-cluster`` in the test's process, over a real API server: it syncs
the RootSyncs and RepoSyncs it lists every 0.3 s (after clearing the RootSyncs earlier tests
recorded, so only the test's own are followed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions
from acm_lite.reconcile.rootsyncs import RootSyncs
from acm_lite.status import store
from tests.support.kube import without_other_rootsyncs


@contextmanager
def following(server: APIServer, tmp_path: Path) -> Iterator[Cluster]:
    """The daemon following ``server``'s sync objects; yields an admin client of ``server``."""
    cluster = Cluster.connect(server.kubeconfig)
    store.install(cluster)
    without_other_rootsyncs(cluster)
    daemon = Daemon([], SyncOptions(git_cache=tmp_path / "cache"), DaemonOptions(period=0.3, backoff_max=1.0))
    daemon.start()
    syncs = RootSyncs(daemon, lambda: Cluster.connect(server.kubeconfig))
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.3):
            syncs.refresh()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield cluster
    finally:
        stop.set()
        thread.join()
        daemon.stop()
