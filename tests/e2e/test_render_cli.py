"""Every command renders a kustomization as a user runs it: `sync --once`, `diff`, `vet`, `hydrate`
and `serve`, with the real kustomize and helm, a real Git repository on disk and a real API
server. kustomize runs are counted by a wrapper that appends a line per run, then runs the real
binary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns, write

ORIGIN = "config.kubernetes.io/origin"


@pytest.fixture(scope="session")
def render_tools() -> dict[str, Path]:
    return binaries.ensure_all(["kustomize", "helm"])


@pytest.fixture
def cache(render_tools: dict[str, Path], tmp_path: Path) -> Path:
    """acm-lite's cache for the commands: kustomize (a counting wrapper of the real one) and helm
    where `acm-lite dev build` leaves them, at their versions."""
    root = tmp_path / "cache"
    kustomize = binaries.components()["kustomize"].cached_path(root)
    helm = binaries.components()["helm"].cached_path(root)
    kustomize.parent.mkdir(parents=True)
    helm.parent.mkdir(parents=True)
    kustomize.write_text(
        f'#!/bin/sh\necho run >> {tmp_path / "kustomize-runs"}\nexec {render_tools["kustomize"]} "$@"\n'
    )
    kustomize.chmod(0o755)
    helm.symlink_to(render_tools["helm"])
    return root


def kustomize_runs(tmp_path: Path) -> int:
    counted = tmp_path / "kustomize-runs"
    return len(counted.read_text().splitlines()) if counted.exists() else 0


def environment(kubeconfig: str, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBEBUILDER_ASSETS"}
    return {**env, "KUBECONFIG": kubeconfig, "ACM_LITE_CACHE": str(cache)}


def cli(kubeconfig: str, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        capture_output=True,
        text=True,
        env=environment(kubeconfig, cache),
        timeout=300,
    )


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "nginx"}]},
            },
        },
    }


def overlay(namespace: str) -> dict[str, Any]:
    """A base (outside the sync directory) and a production overlay of it, synced with
    --dir overlays/prod."""
    return {
        "base/kustomization.yaml": {"resources": ["cm.yaml", "deploy.yaml"]},
        "base/cm.yaml": cm("settings"),
        "base/deploy.yaml": deployment("web"),
        "overlays/prod/kustomization.yaml": {
            "namespace": namespace,
            "resources": ["../../base", "ns.yaml"],
            "patches": [{"path": "replicas.yaml"}],
        },
        "overlays/prod/ns.yaml": ns(namespace),
        "overlays/prod/replicas.yaml": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 3},
        },
    }


def rendered_and_recorded(kc: str, name: str, namespace: str, commit: str, cache: Path) -> None:
    """The overlay's objects are in the cluster with their origins, and the RootSync records the
    render (shown by `status`)."""
    cluster = Cluster.connect(kc)
    settings = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/settings")
    web = get(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
    assert settings is not None and web is not None
    assert web["spec"]["replicas"] == 3  # the overlay's patch
    origin = yaml.safe_load(settings["metadata"]["annotations"][ORIGIN])
    assert origin["path"].endswith("base/cm.yaml")
    assert settings["metadata"]["annotations"]["acm-lite.io/source-path"] == "../../base/cm.yaml"
    status = (store.read(cluster, name) or {})["status"]
    assert status["rendering"] == {
        "commit": commit,
        "message": "Rendering succeeded",
        "kustomization": "kustomization.yaml",
        "tools": {"kustomize": binaries.KUSTOMIZE_VERSION, "helm": binaries.HELM_VERSION},
        # Config Sync's shape: the errors of the rendering, none here
        "errors": [],
        "errorSummary": {"totalCount": 0, "truncated": False, "errorCountAfterTruncation": 0},
    }
    shown = cli(kc, "status", "--name", name, cache=cache)
    assert (
        f"{name}: Rendering succeeded (kustomization.yaml) with helm {binaries.HELM_VERSION}" in shown.stdout
    )
    listed = json.loads(cli(kc, "status", "--name", name, "-o", "json", cache=cache).stdout)
    assert listed["syncs"][0]["rendering"] == status["rendering"]


def test_sync_of_an_overlay_then_a_commit_that_fails_to_render(
    control_plane: APIServer, cache: Path, tmp_path: Path
) -> None:
    name, namespace = f"r-{uuid.uuid4().hex[:6]}", f"r-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    good = repo.commit(overlay(namespace))
    common = ["--repo", repo.url, "--revision", "main", "--dir", "overlays/prod"]
    common += ["--source-format", "unstructured", "--name", name]
    kc = control_plane.kubeconfig
    cluster = Cluster.connect(kc)

    synced = cli(kc, "sync", "--once", *common, "-o", "json", cache=cache)
    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert (result["commit"], result["state"], result["counts"]["created"]) == (good, "SYNCED", 3)
    assert "render" in result["durationSeconds"]
    assert kustomize_runs(tmp_path) == 1

    rendered_and_recorded(kc, name, namespace, good, cache)

    again = cli(kc, "sync", "--once", *common, "-o", "json", cache=cache)
    assert again.returncode == 0, again.stderr
    assert kustomize_runs(tmp_path) == 1  # the same commit, from the disk cache: nothing ran

    bad = repo.commit(
        {
            "overlays/prod/extra.yaml": cm("extra", namespace),
            "overlays/prod/kustomization.yaml": {
                "namespace": namespace,
                "resources": ["ns.yaml", "extra.yaml", "missing.yaml"],  # base dropped: would prune
            },
        }
    )
    failed = cli(kc, "sync", "--once", *common, "-o", "json", cache=cache)
    assert failed.returncode == 1, failed.stderr
    out = json.loads(failed.stdout)
    assert (out["state"], out["stage"], out["commit"], out["applied"]) == ("ERROR", "render", bad, 0)
    assert [(e["code"], e["source"]) for e in out["errors"]] == [("KNV1068", "kustomization.yaml")]
    assert "missing.yaml" in out["errors"][0]["message"]
    assert "Traceback" not in failed.stderr
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/extra") is None  # nothing applied
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/settings") is not None  # nor pruned
    assert get(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/web") is not None
    status = (store.read(cluster, name) or {})["status"]
    assert (status["state"], status["stage"], status["commit"], status["lastSyncedCommit"]) == (
        "ERROR",
        "render",
        bad,
        good,
    )
    assert status["errors"][0]["code"] == "KNV1068" and status["errors"][0]["source"] == "kustomization.yaml"
    assert status["rendering"]["message"] == "Rendering failed"

    plain = repo.commit({"overlays/prod/kustomization.yaml": None, "overlays/prod/replicas.yaml": None})
    read = cli(kc, "sync", "--once", *common, "-o", "json", cache=cache)
    assert read.returncode == 0, read.stderr
    assert "render" not in json.loads(read.stdout)["durationSeconds"]  # read as it is
    status = (store.read(cluster, name) or {})["status"]
    assert (status["state"], status["commit"]) == ("SYNCED", plain)
    assert "rendering" not in status
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/extra") is not None


CHART = {
    "charts/hello/Chart.yaml": {"apiVersion": "v2", "name": "hello", "version": "0.1.0"},
    "charts/hello/values.yaml": {"greeting": "hi"},
    "charts/hello/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\n"
        "  namespace: {{ .Release.Namespace }}\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    ),
}


def test_sync_of_a_local_helm_chart(control_plane: APIServer, cache: Path, tmp_path: Path) -> None:
    name, namespace = f"r-{uuid.uuid4().hex[:6]}", f"r-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            **CHART,
            "ns.yaml": ns(namespace),
            "kustomization.yaml": {
                "resources": ["ns.yaml"],
                "helmCharts": [
                    {
                        "name": "hello",
                        "releaseName": "rel",
                        "namespace": namespace,
                        "valuesInline": {"greeting": "hello"},
                    }
                ],
            },
        }
    )
    kc = control_plane.kubeconfig
    run = cli(
        kc,
        "sync",
        "--once",
        "--repo",
        repo.url,
        "--source-format",
        "unstructured",
        "--name",
        name,
        cache=cache,
    )
    assert run.returncode == 0, run.stderr
    made = get(Cluster.connect(kc), f"/api/v1/namespaces/{namespace}/configmaps/rel-hello")
    assert made is not None and made["data"] == {"greeting": "hello"}
    origin = yaml.safe_load(made["metadata"]["annotations"][ORIGIN])
    assert origin["configuredBy"]["kind"] == "HelmChartInflationGenerator"


def test_a_kustomization_in_a_hierarchical_repository_is_refused(
    control_plane: APIServer, cache: Path, tmp_path: Path
) -> None:
    name, namespace = f"r-{uuid.uuid4().hex[:6]}", f"r-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {"kustomization.yaml": {"resources": ["namespaces/ns.yaml"]}, "namespaces/ns.yaml": ns(namespace)}
    )
    kc = control_plane.kubeconfig
    run = cli(kc, "sync", "--once", "--repo", repo.url, "--name", name, "-o", "json", cache=cache)
    assert run.returncode == 1, run.stderr
    out = json.loads(run.stdout)
    assert out["stage"] == "render"
    assert [(e["code"], e["source"]) for e in out["errors"]] == [("ACM1070", "kustomization.yaml")]
    assert kustomize_runs(tmp_path) == 0
    assert get(Cluster.connect(kc), f"/api/v1/namespaces/{namespace}") is None


def test_a_render_past_its_time_limit_is_transient(
    control_plane: APIServer, cache: Path, tmp_path: Path
) -> None:
    slow = tmp_path / "slow-helm"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    helm = binaries.components()["helm"].cached_path(cache)
    helm.unlink()
    helm.symlink_to(slow)
    repo = GitRepo(tmp_path / "git")
    repo.commit({**CHART, "kustomization.yaml": {"helmCharts": [{"name": "hello", "releaseName": "rel"}]}})
    name = f"r-{uuid.uuid4().hex[:6]}"
    args = ["--repo", repo.url, "--source-format", "unstructured", "--name", name, "--render-timeout", "1"]
    started = time.monotonic()
    run = cli(control_plane.kubeconfig, "sync", "--once", *args, "-o", "json", cache=cache)
    assert time.monotonic() - started < 60
    assert run.returncode == 3, run.stderr  # retrying may help
    out = json.loads(run.stdout)
    assert out["stage"] == "render"
    assert [(e["code"], e["source"]) for e in out["errors"]] == [("KNV2016", "kustomization.yaml")]
    assert "did not finish within 1s" in out["errors"][0]["message"]


def test_diff_of_a_kustomize_repository(control_plane: APIServer, cache: Path, tmp_path: Path) -> None:
    name, namespace = f"r-{uuid.uuid4().hex[:6]}", f"r-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    repo.commit(overlay(namespace))
    common = ["--repo", repo.url, "--dir", "overlays/prod", "--source-format", "unstructured", "--name", name]
    kc = control_plane.kubeconfig
    before = cli(kc, "diff", *common, cache=cache)
    assert before.returncode == 1, before.stderr
    assert f"+++ desired/ConfigMap/{namespace}/settings" in before.stdout
    assert f"+++ desired/apps/Deployment/{namespace}/web" in before.stdout
    assert "replicas: 3" in before.stdout
    assert cli(kc, "sync", "--once", *common, cache=cache).returncode == 0
    assert cli(kc, "diff", *common, cache=cache).returncode == 0
    assert get(Cluster.connect(kc), f"/api/v1/namespaces/{namespace}/configmaps/settings") is not None


def kustomize_repo(root: Path) -> Path:
    """A kustomization at the top naming a base below it: what vet and hydrate read."""
    return write(
        root,
        {
            "kustomization.yaml": {"namespace": "shop", "resources": ["ns.yaml", "base"]},
            "ns.yaml": ns("shop"),
            "base/kustomization.yaml": {"resources": ["cm.yaml", "deploy.yaml"]},
            "base/cm.yaml": cm("settings"),
            "base/deploy.yaml": deployment("web"),
        },
    )


def test_vet_names_the_file_a_rendered_object_came_from(cache: Path, tmp_path: Path) -> None:
    root = kustomize_repo(tmp_path / "repo")
    clean = cli("", "vet", str(root), "--source-format", "unstructured", cache=cache)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No validation issues found" in clean.stdout

    write(root, {"base/cm.yaml": cm("settings", data={"bad key!": "x"})})
    found = cli("", "vet", str(root), "--source-format", "unstructured", "-o", "json", cache=cache)
    assert found.returncode == 1, found.stderr
    problems = json.loads(found.stdout)["errors"]
    assert [(p["code"], p["source"]) for p in problems] == [("ACM1043", "base/cm.yaml")]

    write(root, {"base/kustomization.yaml": {"resources": ["gone.yaml"]}})
    broken = cli("", "vet", str(root), "--source-format", "unstructured", cache=cache)
    assert broken.returncode == 1
    assert "KNV1068 ActionableHydrationError" in broken.stdout and "gone.yaml" in broken.stdout

    hierarchical = cli("", "vet", str(root), cache=cache)
    assert hierarchical.returncode == 1
    assert "ACM1070" in hierarchical.stdout and "KNV1017" not in hierarchical.stdout  # render stops it


def test_hydrate_writes_the_rendered_objects(cache: Path, tmp_path: Path) -> None:
    root = kustomize_repo(tmp_path / "repo")
    out = tmp_path / "out"
    run = cli("", "hydrate", str(root), "--source-format", "unstructured", "--output", str(out), cache=cache)
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert written == [
        "defaultcluster/namespace_shop.yaml",
        "defaultcluster/shop/configmap_settings.yaml",
        "defaultcluster/shop/deployment_web.yaml",
    ]
    settings = yaml.safe_load((out / "defaultcluster/shop/configmap_settings.yaml").read_text())
    assert yaml.safe_load(settings["metadata"]["annotations"][ORIGIN])["path"] == "base/cm.yaml"


def test_serve_renders_an_unchanged_commit_once(
    control_plane: APIServer, cache: Path, tmp_path: Path
) -> None:
    name, namespace = f"r-{uuid.uuid4().hex[:6]}", f"r-{uuid.uuid4().hex[:6]}"
    repo = GitRepo(tmp_path / "git")
    first = repo.commit(overlay(namespace))
    kc = control_plane.kubeconfig
    cluster = Cluster.connect(kc)
    log = tmp_path / "serve.log"
    args = ["--repo", repo.url, "--revision", "main", "--dir", "overlays/prod", "--source-format"]
    args += ["unstructured", "--name", name, "--period", "0.3", "--resync", "1", "--metrics-address", "off"]
    with log.open("w") as err:
        serve = subprocess.Popen(
            [sys.executable, "-m", "acm_lite", "serve", "--kubeconfig", kc, *args],
            env=environment(kc, cache),
            stderr=err,
            text=True,
        )
    try:

        def synced(commit: str) -> bool:
            status = ((store.read(cluster, name) or {}).get("status")) or {}
            return (status.get("state"), status.get("lastSyncedCommit")) == ("SYNCED", commit)

        eventually(lambda: synced(first), 60)
        # full passes of the same commit (every --resync second) while the commit stays
        eventually(lambda: log.read_text().count('"message": "pass"') >= 3, 30)
        assert kustomize_runs(tmp_path) == 1

        second = repo.commit(
            {
                "overlays/prod/more.yaml": cm("more"),
                "overlays/prod/kustomization.yaml": {
                    "namespace": namespace,
                    "resources": ["../../base", "ns.yaml", "more.yaml"],
                },
            }
        )
        eventually(lambda: synced(second), 60)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/more") is not None
        assert kustomize_runs(tmp_path) == 2
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
