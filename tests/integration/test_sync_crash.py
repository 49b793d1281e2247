"""An API server killed in the middle of a sync: the next run converges and nothing still declared
is ever deleted."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from acm_lite.apply import inventory
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import controlplane
from acm_lite.plan.changeset import Outcome
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

COUNT = 300


def _files(version: str, names: range) -> dict[str, object]:
    return {f"cm/{i:04d}.yaml": {**cm(f"c{i:04d}", "crash"), "data": {"v": version}} for i in names}


def _live(cluster: Cluster) -> dict[str, str]:
    items = cluster.request("GET", "/api/v1/namespaces/crash/configmaps")["items"]
    return {
        i["metadata"]["name"]: (i.get("data") or {}).get("v", "")
        for i in items
        if i["metadata"]["name"].startswith("c")
    }


def test_killed_api_server_mid_sync_then_convergence(
    control_plane_binaries: dict[str, Path], tmp_path: Path
) -> None:
    env = controlplane.start(
        ["crash"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    try:
        repo = GitRepo(tmp_path / "git")
        repo.commit({"ns.yaml": ns("crash"), **_files("one", range(COUNT))})
        spec = SyncSpec(repo=repo.url, name="crash", revision="main", source_format="unstructured")
        options = SyncOptions(git_cache=tmp_path / "cache", concurrency=4)
        cluster = Cluster.connect(env.clusters[0].kubeconfig)
        assert pipeline.run(spec, cluster, options).ok

        # commit 2: every object changes, 50 leave the source, 50 new ones arrive
        removed = range(COUNT - 50, COUNT)
        second = repo.commit(
            {
                **_files("two", range(COUNT - 50)),
                **dict.fromkeys(f"cm/{i:04d}.yaml" for i in removed),
                **_files("two", range(COUNT, COUNT + 50)),
            }
        )
        declared = {f"c{i:04d}" for i in [*range(COUNT - 50), *range(COUNT, COUNT + 50)]}

        before = cluster.requests["PATCH"]  # the first pass's writes count too

        def kill_after_some_writes() -> None:
            while cluster.requests["PATCH"] < before + 60:
                time.sleep(0.005)
            controlplane.stop_apiserver(env, "crash")

        killer = threading.Thread(target=kill_after_some_writes)
        killer.start()
        crashed = pipeline.run(spec, cluster, options)
        killer.join()
        assert not crashed.ok
        # one error for the whole pass, not one per object left, and how far it got
        assert [p.code.id for p in crashed.problems if p.blocking] == ["ACM2010"]
        assert crashed.status.stage == "apply" and 0 < crashed.applied < crashed.planned
        assert crashed.status_error is not None  # the server is gone: status not recorded
        assert not any(r.outcome is Outcome.PRUNED for r in crashed.results)

        controlplane.restart_apiserver(env, "crash")
        cluster = Cluster.connect(env.clusters[0].kubeconfig)
        live = _live(cluster)
        assert set(live) >= {f"c{i:04d}" for i in range(COUNT - 50)}  # nothing declared was lost
        # the status written before applying says a pass of the new commit did not finish, and
        # counts what the inventory holds (not "0 managed" nor the old commit as synced)
        status = store.read(cluster, "crash")["status"]  # type: ignore[index]
        assert (status["state"], status["stage"], status["commit"]) == ("PENDING", "apply", second)
        assert status["managedObjects"] == len(inventory.read(cluster, "crash")) == COUNT + 51

        converged = pipeline.run(spec, cluster, options)
        assert converged.ok, [p.render() for p in converged.problems]
        assert _live(cluster) == dict.fromkeys(sorted(declared), "two")
        status = store.read(cluster, "crash")["status"]  # type: ignore[index]
        assert (status["state"], status["errors"], status["managedObjects"]) == (
            "SYNCED",
            [],
            len(declared) + 1,
        )
        again = pipeline.run(spec, cluster, options)
        assert again.ok and set(again.counts) and again.counts["unchanged"] == len(declared) + 1
    finally:
        controlplane.stop(env)
