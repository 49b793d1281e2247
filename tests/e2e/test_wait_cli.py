"""`acm-lite sync --once --wait` as CI runs it against a real API server, the test writing each
object's status as its controller would: exit 0 once everything is Current, 1 naming an object
that Failed or never converged, a pruned object waited for until it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from tests.support.gitrepo import GitRepo
from tests.support.health import CURRENT, FAILED, deployment, deployment_path, when_created, write_status
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns


def start(kubeconfig: str, *args: str, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig, "ACM_LITE_CACHE": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "acm_lite", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(run: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = run.communicate(timeout=300)
    finally:
        run.kill()
    return run.returncode, out, err


@pytest.fixture
def setup(control_plane: APIServer, tmp_path: Path) -> tuple[Cluster, GitRepo, list[str], str]:
    name, namespace = f"wait-{uuid.uuid4().hex[:6]}", f"wait-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    common = ["--repo", repo.url, "--revision", "main", "--source-format", "unstructured", "--name", name]
    return Cluster.connect(control_plane.kubeconfig), repo, common, namespace


def sync(control_plane: APIServer, tmp_path: Path, common: list[str], *flags: str) -> subprocess.Popen[str]:
    return start(control_plane.kubeconfig, "sync", "--once", *common, *flags, cache=tmp_path / "cache")


def test_wait_exits_0_once_every_object_is_current(
    control_plane: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    repo.commit(
        {"ns.yaml": ns(namespace), "web.yaml": deployment("web", namespace), "a.yaml": cm("a", namespace)}
    )
    web = deployment_path("web", namespace)
    writer = when_created(cluster, web, lambda: write_status(cluster, web, CURRENT), settle=1.0)
    code, out, err = finish(sync(control_plane, tmp_path, common, "--wait", "--timeout", "2m"))
    writer.join(5)
    assert code == 0, err
    assert "waiting for 3 objects to be Current (timeout 120s)" in err
    assert "waiting: 2 Current, 1 InProgress" in err  # progress while the Deployment rolls out
    assert "waiting: 3 Current" in err
    assert "3 objects Current (" in out and "SYNCED: synced" in out
    assert "Traceback" not in err


def test_wait_exits_1_naming_an_object_that_failed(
    control_plane: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    repo.commit(
        {"ns.yaml": ns(namespace), "web.yaml": deployment("web", namespace), "a.yaml": cm("a", namespace)}
    )
    web = deployment_path("web", namespace)
    writer = when_created(cluster, web, lambda: write_status(cluster, web, FAILED))
    code, out, err = finish(sync(control_plane, tmp_path, common, "--wait", "--timeout", "2m"))
    writer.join(5)
    assert code == 1
    assert (
        f"KNV2009 ApplyError: failed to wait for apps/Deployment {namespace}/web: reconcile failed: "
        "Failed (ProgressDeadlineExceeded): Progress deadline exceeded"
    ) in err
    assert err.count("KNV2009") == 1  # the ConfigMap and the Namespace are Current
    assert "1 of 3 objects not Current (one Failed): KNV2009 ApplyError" in out
    assert "Traceback" not in err


def test_wait_exits_1_naming_an_object_that_never_converges(
    control_plane: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    _cluster, repo, common, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "web.yaml": deployment("web", namespace)})
    code, out, _ = finish(sync(control_plane, tmp_path, common, "--wait", "--timeout", "3s", "-o", "json"))
    assert code == 1
    result = json.loads(out)
    assert result["health"]["timedOut"] is True
    assert result["health"]["counts"]["Current"] == 1 and result["health"]["counts"]["InProgress"] == 1
    assert {
        "object": f"apps/Deployment {namespace}/web",
        "status": "InProgress",
        "reason": "LessReplicas",
        "message": "Replicas: 0/1",
    } in result["health"]["objects"]
    created = next(o for o in result["objects"] if o["object"].startswith("apps/Deployment"))
    assert created["health"]["status"] == "InProgress"
    assert [(e["code"], e["message"]) for e in result["errors"]] == [
        (
            "KNV2009",
            f"failed to wait for apps/Deployment {namespace}/web: reconcile timeout after 3s: "
            "InProgress (LessReplicas): Replicas: 0/1",
        )
    ]
    assert result["state"] == "SYNCED"  # applied; not healthy


def test_a_pruned_object_is_waited_for_until_gone(
    control_plane: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    cluster, repo, common, namespace = setup
    held = {name: cm(name, namespace) for name in ("held", "held2")}
    for body in held.values():
        body["metadata"]["finalizers"] = ["example.com/hold"]  # kept until the test lets go
    repo.commit({"ns.yaml": ns(namespace), **{f"{n}.yaml": b for n, b in held.items()}})
    code, _, err = finish(sync(control_plane, tmp_path, common, "--wait"))
    assert code == 0, err
    paths = {n: f"/api/v1/namespaces/{namespace}/configmaps/{n}" for n in held}

    def release(name: str) -> None:
        cluster.request(
            "PATCH",
            paths[name],
            body={"metadata": {"finalizers": None}},
            content_type="application/merge-patch+json",
        )

    def terminating(name: str) -> bool:
        return bool(((get(cluster, paths[name]) or {}).get("metadata") or {}).get("deletionTimestamp"))

    try:
        # still held by its finalizer when the time runs out: Terminating, named
        repo.commit({"held.yaml": None})
        code, out, err = finish(sync(control_plane, tmp_path, common, "--wait", "--timeout", "2s"))
        assert code == 1
        assert (
            f"failed to wait for ConfigMap {namespace}/held to be deleted: reconcile timeout after 2s: "
            "Terminating: Resource scheduled for deletion"
        ) in err
        assert terminating("held")

        # let go while the next sync waits for it: gone, exit 0
        repo.commit({"held2.yaml": None})
        run = sync(control_plane, tmp_path, common, "--wait", "--timeout", "2m", "-o", "json")
        eventually(lambda: terminating("held2"), timeout=60)
        assert run.poll() is None  # still waiting
        release("held2")
        code, out, err = finish(run)
        assert code == 0, err
        assert {
            "object": f"ConfigMap {namespace}/held2",
            "deleted": True,
            "status": "NotFound",
            "reason": "NotFound",
            "message": "Resource not found",
        } in json.loads(out)["health"]["objects"]
        assert get(cluster, paths["held2"]) is None
    finally:
        for name in held:
            if get(cluster, paths[name]) is not None:
                release(name)


def test_dry_run_and_diff_ignore_wait(
    control_plane: APIServer, tmp_path: Path, setup: tuple[Cluster, GitRepo, list[str], str]
) -> None:
    _cluster, repo, common, namespace = setup
    repo.commit({"ns.yaml": ns(namespace), "web.yaml": deployment("web", namespace)})
    code, out, err = finish(sync(control_plane, tmp_path, common, "--dry-run", "--wait", "--timeout", "1s"))
    assert code == 0, err
    assert "a dry run applies nothing, so there is nothing to wait for" in err
    assert "created (dry run)" in out
    diff = start(
        control_plane.kubeconfig, "diff", *common, "--wait", "--timeout", "5m", cache=tmp_path / "cache"
    )
    code, out, err = finish(diff)
    assert code == 1  # something would change; nothing waited for
    assert "diff applies nothing, so there is nothing to wait for" in err
    assert f"+++ desired/apps/Deployment/{namespace}/web" in out or "Deployment" in out
    bad = finish(sync(control_plane, tmp_path, common, "--wait", "--timeout", "soon"))
    assert bad[0] == 2 and "is not a duration" in bad[2]
