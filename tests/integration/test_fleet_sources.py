"""A fleet file whose members sync different kinds of source: one cluster a Git repository, the
other a chart from a Helm repository on loopback (packaged and indexed by the real helm), both
by `acm-lite sync --once --fleet` against real API servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import store
from tests.support import helmrepo
from tests.support.gitrepo import GitRepo
from tests.support.helmrepo import HelmRepository
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBEBUILDER_ASSETS" and not k.startswith(("ACM_LITE_HELM_", "ACM_LITE_OCI_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        capture_output=True,
        text=True,
        env={**env, "ACM_LITE_CACHE": str(cache)},
        timeout=300,
    )


def test_one_member_syncs_git_and_the_other_a_helm_chart(
    fleet: dict[str, APIServer], helm_binary: Path, helm_repository: HelmRepository, tmp_path: Path
) -> None:
    space = f"fleet-{uuid.uuid4().hex[:8]}"
    repo = GitRepo(tmp_path / "git")
    head = repo.commit({"ns.yaml": ns(space), "cm.yaml": {**cm("from-git", space), "data": {"via": "git"}}})
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Values.namespace }}\n"
    templates = {"configmap.yaml": helmrepo.CONFIGMAP, "namespace.yaml": namespace}
    chart = helmrepo.make_chart(tmp_path / "charts", "web", "1.4.0", templates)
    helmrepo.package(helm_binary, chart, helm_repository.directory)
    helmrepo.index(helm_binary, helm_repository.directory)

    cache = tmp_path / "cache"
    helm = binaries.components()["helm"].cached_path(cache)
    helm.parent.mkdir(parents=True)
    helm.symlink_to(helm_binary)
    here = tmp_path / "fleet"
    (here / "values").mkdir(parents=True)
    (here / "values" / "edge.yaml").write_text("greeting: from-a-values-file\n")
    (here / "fleet.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "mixed"},
                "spec": {
                    "sync": {"repo": repo.url, "revision": "main", "sourceFormat": "unstructured"},
                    "clusters": [
                        {"name": "eks-prod", "kubeconfig": fleet["eks-prod"].kubeconfig},
                        {
                            "name": "aks-staging",
                            "kubeconfig": fleet["aks-staging"].kubeconfig,
                            "sync": {
                                "sourceType": "helm",
                                "name": "web-chart",
                                "helm": {
                                    "repo": helm_repository.url,
                                    "chart": "web",
                                    "version": "~1.4",
                                    "releaseName": "front",
                                    "values": {"namespace": space},
                                    "valuesFiles": ["values/edge.yaml"],  # relative to the fleet file
                                    "auth": "none",
                                },
                            },
                        },
                    ],
                },
            }
        )
    )
    run = cli("sync", "--once", "--fleet", str(here / "fleet.yaml"), "-o", "json", cache=cache)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {r["name"]: r for r in json.loads(run.stdout)["clusters"]}
    assert rows["eks-prod"]["ok"] and rows["aks-staging"]["ok"], rows
    assert rows["aks-staging"]["commit"].startswith("1.4.0@sha256:")
    assert rows["eks-prod"]["commit"] == head

    eks = Cluster.connect(fleet["eks-prod"].kubeconfig)
    aks = Cluster.connect(fleet["aks-staging"].kubeconfig)
    git_cm = get(eks, f"/api/v1/namespaces/{space}/configmaps/from-git")
    assert git_cm is not None and git_cm["data"] == {"via": "git"}
    assert get(eks, f"/api/v1/namespaces/{space}/configmaps/front-settings") is None
    chart_cm = get(aks, f"/api/v1/namespaces/{space}/configmaps/front-settings")
    assert chart_cm is not None
    assert chart_cm["data"] == {"version": "1.4.0", "greeting": "from-a-values-file"}
    assert get(aks, f"/api/v1/namespaces/{space}/configmaps/from-git") is None
    recorded = store.read(aks, "web-chart")
    assert recorded is not None and recorded["spec"]["sourceType"] == "helm"
    assert recorded["spec"]["helm"]["chart"] == "web" and recorded["spec"]["helm"]["auth"] == "none"

    # the same fleet again: both members unchanged, nothing applied
    again = cli("sync", "--once", "--fleet", str(here / "fleet.yaml"), "-o", "json", cache=cache)
    assert again.returncode == 0, again.stderr
    for row in json.loads(again.stdout)["clusters"]:
        assert row["counts"].get("created", 0) == row["counts"].get("configured", 0) == 0, row
