"""`acm-lite fleet list|status` and `sync --once --fleet` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from acm_lite.devcluster.controlplane import APIServer
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def test_fleet_list_of_the_sample_fleet() -> None:
    data = json.loads(cli("fleet", "list", "--fleet", "sample-repo/fleet.yaml", "-o", "json").stdout)
    assert [(c["name"], c["provider"], c["context"]) for c in data["clusters"]] == [
        ("eks-prod", "eks", "eks-prod"),
        ("aks-staging", "aks", "aks-staging"),
        ("baremetal-edge", "baremetal", "baremetal-edge"),
    ]
    text = cli("fleet", "list", "--fleet", "sample-repo/fleet.yaml").stdout
    assert text.startswith("NAME") and "provider=baremetal" in text


def test_sync_status_of_a_fleet_with_one_member_down(fleet: dict[str, APIServer], tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns("fleet-cli"), "a.yaml": cm("a", "fleet-cli")})
    down = tmp_path / "down.yaml"
    down.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "gone",
                "clusters": [
                    {
                        "name": "gone",
                        "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True},
                    }
                ],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    members = [
        {"name": name, "kubeconfig": server.kubeconfig, "labels": {"provider": name[:3]}}
        for name, server in fleet.items()
    ]
    members.append({"name": "unreachable", "kubeconfig": str(down), "labels": {"provider": "gke"}})
    (tmp_path / "fleet.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "cli"},
                "spec": {
                    "sync": {
                        "repo": repo.url,
                        "revision": "main",
                        "sourceFormat": "unstructured",
                        "name": "fleet-cli",
                    },
                    "clusters": members,
                },
            }
        )
    )
    cache = {"ACM_LITE_CACHE": str(tmp_path / "cache")}
    run = cli("sync", "--once", "--fleet", str(tmp_path / "fleet.yaml"), "-o", "json", env=cache)
    assert run.returncode == 1, run.stderr
    rows = {r["name"]: r for r in json.loads(run.stdout)["clusters"]}
    assert {n: r["state"] for n, r in rows.items()} == {
        "eks-prod": "SYNCED",
        "aks-staging": "SYNCED",
        "baremetal-edge": "SYNCED",
        "unreachable": "ERROR",
    }
    assert rows["eks-prod"]["counts"]["created"] == 2
    assert rows["unreachable"]["errors"][0]["code"] == "KNV2002"

    only = cli("sync", "--once", "--fleet", str(tmp_path / "fleet.yaml"), "--cluster", "eks-prod", env=cache)
    assert only.returncode == 0 and "unreachable" not in only.stdout

    status = json.loads(cli("fleet", "status", "--fleet", str(tmp_path / "fleet.yaml"), "-o", "json").stdout)
    states = {c["name"]: (c["reachable"], c["state"], c["errors"]) for c in status["clusters"]}
    assert states == {
        "eks-prod": (True, "SYNCED", 0),
        "aks-staging": (True, "SYNCED", 0),
        "baremetal-edge": (True, "SYNCED", 0),
        "unreachable": (False, "ERROR", 1),
    }
    assert {c["provider"] for c in status["clusters"]} >= {"eks", "gke"}
