"""`acm-lite dev up / env / status / down` as a user runs them, with kubectl pointed at the cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acm_lite.devcluster import binaries, process


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args], env=env, text=True, capture_output=True, timeout=600
    )


def _exports(text: str, env: dict[str, str]) -> dict[str, str]:
    """Evaluate `dev env` output the way a shell would, in a clean environment whose HOME (where
    kubectl keeps its cache) is the test's own."""
    home = Path(env["ACM_LITE_STATE_DIR"]).parent / "home"
    script = f"{text}\nenv -0"
    out = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    ).stdout.decode()
    return dict(line.split("=", 1) for line in out.split("\0") if "=" in line)


@pytest.fixture
def user_env(tmp_path: Path, control_plane_binaries: dict[str, Path]) -> Iterator[dict[str, str]]:
    env = {**os.environ, "ACM_LITE_STATE_DIR": str(tmp_path / "state")}
    yield env
    _cli("dev", "down", env=env)  # never leave servers behind, whatever the test did


def test_up_env_kubectl_down(user_env: dict[str, str], tmp_path: Path) -> None:
    up = _cli("dev", "up", "-o", "json", env=user_env)
    assert up.returncode == 0, up.stderr
    clusters = json.loads(up.stdout)
    assert [c["name"] for c in clusters] == ["dev-1"]
    assert clusters[0]["mode"] == "full"
    assert clusters[0]["controllers"] == {
        "kube-controller-manager": True,
        "kube-scheduler": True,
        "kwok": True,
    }
    state_file = json.loads((Path(user_env["ACM_LITE_STATE_DIR"]) / "dev" / "state.json").read_text())
    pids = [c["pid"] for c in clusters] + [
        child["pid"] for c in state_file["clusters"] for child in c["children"]
    ]
    assert len(pids) == 4

    again = _cli("dev", "up", env=user_env)
    assert again.returncode == 1
    assert "ACM9006" in again.stderr

    exported = _exports(_cli("dev", "env", env=user_env).stdout, user_env)
    state = Path(user_env["ACM_LITE_STATE_DIR"]) / "dev"
    assert exported["KUBECONFIG"] == str(state / "kubeconfig")
    version = subprocess.run(
        ["kubectl", "get", "--raw", "/version"], env=exported, capture_output=True, text=True, check=True
    )
    assert json.loads(version.stdout)["gitVersion"] == binaries.components()["kubectl"].version

    apply = subprocess.run(
        ["kubectl", "create", "configmap", "hello", "--from-literal=greeting=hi"],
        env=exported,
        capture_output=True,
        text=True,
    )
    assert apply.returncode == 0, apply.stderr
    nodes = subprocess.run(
        ["kubectl", "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"],
        env=exported,
        capture_output=True,
        text=True,
        check=True,
    )
    assert nodes.stdout.split() == ["kwok-node-1", "kwok-node-2", "kwok-node-3"]

    state_dir = tmp_path / "state"
    assert any(state_dir.iterdir())
    down = _cli("dev", "down", env=user_env)
    assert down.returncode == 0, down.stderr
    assert [p for p in pids if process.alive(p)] == []
    assert not (state_dir / "dev").exists()

    after = _cli("dev", "env", env=user_env)
    assert after.returncode == 3
    assert "ACM9004" in after.stderr


def test_light_clusters_from_a_fleet_file_are_named_after_it(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "apiVersion: acm-lite.io/v1alpha1\nkind: Fleet\nmetadata:\n  name: pair\nspec:\n"
        "  clusters:\n  - name: eks-prod\n    labels: {provider: eks}\n"
        "  - name: baremetal-edge\n    labels: {provider: baremetal}\n"
    )
    up = _cli("dev", "up", "--light", "--fleet", str(fleet), env=user_env)
    assert up.returncode == 0, up.stderr
    status = json.loads(_cli("dev", "status", "-o", "json", env=user_env).stdout)
    assert [(c["name"], c["running"], c["mode"], c["nodes"]) for c in status] == [
        ("eks-prod", True, "light", []),
        ("baremetal-edge", True, "light", []),
    ]
    for name in ("eks-prod", "baremetal-edge"):
        exported = _exports(_cli("dev", "env", "--cluster", name, env=user_env).stdout, user_env)
        made = subprocess.run(
            ["kubectl", "create", "namespace", f"on-{name}"], env=exported, capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr
    listed = subprocess.run(
        ["kubectl", "get", "namespaces", "-o", "name"],
        env=_exports(_cli("dev", "env", "--cluster", "baremetal-edge", env=user_env).stdout, user_env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "namespace/on-baremetal-edge" in listed
    assert "namespace/on-eks-prod" not in listed

    unknown = _cli("dev", "env", "--cluster", "nope", env=user_env)
    assert unknown.returncode == 1
    assert "ACM9005" in unknown.stderr
