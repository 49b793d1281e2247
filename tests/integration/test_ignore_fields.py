"""Ignore rules against a real API server: a Deployment declared with replicas 2 and
``/spec/replicas`` ignored, scaled by another field manager (the test, acting as an autoscaler
through the scale subresource). Passes, `acm-lite diff` and the daemon's drift repair leave the
replicas alone, and acm-lite's managedFields entry never owns ``spec.replicas``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite.cli.main import main
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.plan.ignorefields import IgnoreRule
from acm_lite.reconcile import pipeline, rootsyncs
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get, without_other_rootsyncs
from tests.unit.repo_builder import ns

MERGE = "application/merge-patch+json"
RULES = (IgnoreRule("apps", "Deployment", ("/spec/replicas",)),)


def deployment(namespace: str, image: str = "nginx:1") -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def acm_lite_owns(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """acm-lite's server-side apply entries in the object's managedFields."""
    return [
        m["fieldsV1"]
        for m in obj["metadata"]["managedFields"]
        if m["manager"] == "acm-lite" and m["operation"] == "Apply"
    ]


def scale(cluster: Cluster, path: str, replicas: int) -> None:
    """What an autoscaler does: an update of the scale subresource under its own field manager."""
    cluster.request(
        "PATCH",
        f"{path}/scale",
        query={"fieldManager": "horizontal-pod-autoscaler"},
        body={"spec": {"replicas": replicas}},
        content_type=MERGE,
    )


def replicas(cluster: Cluster, path: str) -> int:
    found = get(cluster, path)
    assert found is not None
    return int(found["spec"]["replicas"])


@pytest.fixture
def setup(tmp_path: Path) -> tuple[GitRepo, str, str]:
    suffix = uuid.uuid4().hex[:6]
    return GitRepo(tmp_path / "git"), f"ig-{suffix}", f"ig-{suffix}"


def test_replicas_another_manager_sets_are_kept_by_passes_diff_and_the_daemon(
    control_plane: APIServer,
    setup: tuple[GitRepo, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, name, namespace = setup
    cluster = Cluster.connect(control_plane.kubeconfig)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/web"
    repo.commit({"ns.yaml": ns(namespace), "web.yaml": deployment(namespace)})
    spec = SyncSpec(
        repo=repo.url, name=name, revision="main", source_format="unstructured", ignore_fields=RULES
    )
    options = SyncOptions(git_cache=tmp_path / "cache")

    first = pipeline.run(spec, cluster, options)
    assert first.ok, [p.render() for p in first.problems]
    created = get(cluster, path)
    assert created is not None
    assert created["spec"]["replicas"] == 1  # never applied, not even on create: the default
    [owned] = acm_lite_owns(created)
    assert "f:replicas" not in owned["f:spec"] and "f:template" in owned["f:spec"]

    scale(cluster, path, 5)
    again = pipeline.run(spec, cluster, options)
    assert again.ok and again.applied == 0, [r.change.reason for r in again.results]
    assert replicas(cluster, path) == 5

    # `acm-lite diff` with the rules shows nothing; without them, the replicas
    monkeypatch.setenv("KUBECONFIG", control_plane.kubeconfig)
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cli-cache"))
    rules_file = tmp_path / "ignore.yaml"
    rules_file.write_text(yaml.safe_dump([r.to_spec() for r in RULES]))
    diff = [
        "diff",
        "--repo",
        repo.url,
        "--revision",
        "main",
        "--source-format",
        "unstructured",
        "--name",
        name,
    ]
    capsys.readouterr()
    assert main([*diff, "--ignore-fields", str(rules_file)]) == 0
    assert capsys.readouterr().out == ""
    assert main(diff) == 1
    assert "replicas: 2" in capsys.readouterr().out

    # A change elsewhere in the Deployment is applied; the replicas stay as scaled.
    repo.commit({"web.yaml": deployment(namespace, image="nginx:2")})
    changed = pipeline.run(spec, cluster, options)
    assert changed.ok and changed.counts["configured"] == 1
    updated = get(cluster, path)
    assert updated is not None
    assert updated["spec"]["replicas"] == 5
    assert updated["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert all("f:replicas" not in owned["f:spec"] for owned in acm_lite_owns(updated))

    # The daemon's drift repair reverts an edited image but never the replicas.
    daemon = Daemon([(spec, lambda: cluster)], options, DaemonOptions(period=0.3))
    daemon.start()
    worker = daemon.workers[0]
    try:
        eventually(lambda: worker.remediator is not None and worker.passes > 0)
        scale(cluster, path, 7)
        cluster.request(
            "PATCH",
            path,
            body={"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "edited"}]}}}},
            content_type="application/strategic-merge-patch+json",
        )
        eventually(
            lambda: (
                (get(cluster, path) or {})["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
            ),
            5,
        )
        time.sleep(1.0)
        assert replicas(cluster, path) == 7
    finally:
        daemon.stop()
    final = get(cluster, path)
    assert final is not None and all("f:replicas" not in owned["f:spec"] for owned in acm_lite_owns(final))


def test_bad_ignore_rules_fail_the_pass_naming_the_sync_before_anything_is_applied(
    control_plane: APIServer, setup: tuple[GitRepo, str, str], tmp_path: Path
) -> None:
    repo, name, namespace = setup
    cluster = Cluster.connect(control_plane.kubeconfig)
    repo.commit({"ns.yaml": ns(namespace), "web.yaml": deployment(namespace)})
    spec = SyncSpec(
        repo=repo.url,
        name=name,
        revision="main",
        source_format="unstructured",
        ignore_fields=(IgnoreRule("apps", "Deployment", ("spec/replicas",)),),
    )
    result = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
    assert not result.ok
    assert [(p.code.id, name in p.message) for p in result.problems] == [("KNV1061", True)]
    assert get(cluster, f"/api/v1/namespaces/{namespace}") is None


def rootsync(name: str, repo: GitRepo, pointers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "acm-lite.io/v1alpha1",
        "kind": "RootSync",
        "metadata": {"name": name, "namespace": "acm-lite-system"},
        "spec": {
            "sourceFormat": "unstructured",
            "git": {"repo": repo.url, "revision": "main", "dir": "."},
            "override": {"ignoreFields": [{"group": "apps", "kind": "Deployment", "jsonPointers": pointers}]},
        },
    }


def test_rootsyncs_in_the_cluster_carry_their_rules_and_a_bad_one_is_reported_on_its_status(
    control_plane: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    good, bad = f"rs-{suffix}", f"rsbad-{suffix}"
    cluster = Cluster.connect(control_plane.kubeconfig)
    store.install(cluster)
    without_other_rootsyncs(cluster)
    good_repo, bad_repo = GitRepo(tmp_path / "good"), GitRepo(tmp_path / "bad")
    good_repo.commit({"ns.yaml": ns(good), "web.yaml": deployment(good)})
    bad_repo.commit({"ns.yaml": ns(bad), "web.yaml": deployment(bad)})
    collection = "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs"
    cluster.request("POST", collection, body=rootsync(good, good_repo, ["/spec/replicas"]))
    cluster.request("POST", collection, body=rootsync(bad, bad_repo, ["spec/replicas"]))
    path = f"/apis/apps/v1/namespaces/{good}/deployments/web"

    daemon = Daemon([], SyncOptions(git_cache=tmp_path / "cache"), DaemonOptions(period=0.3))
    syncs = rootsyncs.RootSyncs(daemon, lambda: cluster)
    daemon.start()
    try:
        assert set(syncs.specs) == {good, bad}  # only the two of this test
        eventually(lambda: get(cluster, path) is not None, 30)
        assert replicas(cluster, path) == 1  # declared 2, never applied
        scale(cluster, path, 5)

        def bad_status() -> list[dict[str, Any]]:
            found = store.read(cluster, bad) or {}
            return list((found.get("status") or {}).get("errors") or [])

        eventually(lambda: bool(bad_status()), 30)
        [error] = bad_status()
        assert error["code"] == "KNV1061" and bad in error["message"], error
        assert get(cluster, f"/api/v1/namespaces/{bad}") is None  # nothing applied
        time.sleep(1.0)
        assert replicas(cluster, path) == 5
    finally:
        daemon.stop()
