"""Exit codes and messages as the README's table promises them, with the CLI run as a user runs it
(a subprocess, a real pipe, a real API server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acm_lite.devcluster.controlplane import APIServer
from tests.unit.repo_builder import cm

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "gone",
    "clusters": [
        {"name": "gone", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}
    ],
    "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
}


def cli(
    *args: str, stdout: int = subprocess.PIPE, kubeconfig: str | None = None, cache: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    if cache:
        env["ACM_LITE_CACHE"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def _unreachable(tmp_path: Path) -> str:
    path = tmp_path / "unreachable.yaml"
    path.write_text(yaml.safe_dump(UNREACHABLE))
    return str(path)


@pytest.mark.parametrize("args", [("errors",), ("errors", "KNV1017"), ("errors", "-o", "json")])
def test_a_closed_stdout_ends_quietly(args: tuple[str, ...]) -> None:
    """`acm-lite errors | head -1`: the reader is gone before acm-lite writes (the output fits in
    the buffer for one case, overflows it for the others)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = cli(*args, stdout=write_end)
    finally:
        os.close(write_end)
    assert run.returncode == 141, run.stderr
    assert run.stderr == ""


def test_sync_against_an_unreachable_api_server_is_transient(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo/a.yaml").write_text(yaml.safe_dump(cm("a", "default")))
    run = cli(
        "sync",
        "--once",
        "--repo",
        str(tmp_path / "repo"),
        "--source-format",
        "unstructured",
        kubeconfig=_unreachable(tmp_path),
        cache=tmp_path / "cache",
    )
    assert run.returncode == 3, run.stderr
    assert "KNV2002 APIServerError" in run.stderr


def test_sync_of_a_missing_path_reports_the_source_error(control_plane: APIServer, tmp_path: Path) -> None:
    run = cli(
        "sync",
        "--once",
        "--repo",
        str(tmp_path / "nothing-here"),
        "--name",
        "missing-path",
        kubeconfig=control_plane.kubeconfig,
        cache=tmp_path / "cache",
    )
    assert run.returncode == 1, run.stderr
    assert "nothing-here" in run.stderr and "ACM1101 SourceDirNotFound" in run.stderr
    assert "nothing to do" not in run.stdout


def test_sync_of_an_unreachable_url_is_a_transient_source_error(
    control_plane: APIServer, tmp_path: Path
) -> None:
    run = cli(
        "sync",
        "--once",
        "--repo",
        "https://127.0.0.1:1/config.git",
        "--name",
        "gone-url",
        "-o",
        "json",
        kubeconfig=control_plane.kubeconfig,
        cache=tmp_path / "cache",
    )
    assert run.returncode == 3, run.stderr
    errors = json.loads(run.stdout)["errors"]
    assert [e["code"] for e in errors] == ["KNV2004"]


def test_fleet_status_with_every_cluster_unreachable(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "down"},
                "spec": {"clusters": [{"name": n, "kubeconfig": _unreachable(tmp_path)} for n in ("a", "b")]},
            }
        )
    )
    run = cli("fleet", "status", "--fleet", str(fleet))
    assert run.returncode == 3, (run.stdout, run.stderr)
    assert "KNV2002" in run.stdout + run.stderr or "cannot reach" in run.stdout


def test_vet_of_an_undeclared_cluster(tmp_path: Path) -> None:
    warned = cli("vet", "sample-repo", "--cluster", "nope")
    assert warned.returncode == 0, warned.stderr
    assert "ACM1047 UnknownCluster" in warned.stdout and "nope" in warned.stdout
    known = cli("vet", "sample-repo", "--cluster", "eks-prod")
    assert known.returncode == 0 and "ACM1047" not in known.stdout
    refused = cli("vet", "sample-repo", "--fleet", "sample-repo/fleet.yaml", "--cluster", "nope")
    assert refused.returncode == 2, refused.stdout
    assert "ACM1047 UnknownCluster" in refused.stderr and "nope" in refused.stderr


def test_policy_verify_of_a_missing_path(tmp_path: Path) -> None:
    run = cli("policy", "verify", str(tmp_path / "absent"))
    assert run.returncode == 1
    assert "ACM1048 PathNotFound" in run.stderr and "absent" in run.stderr
    assert "0 passed" not in run.stdout


def test_a_fatal_error_under_json_output_is_json(tmp_path: Path) -> None:
    run = cli("vet", str(tmp_path / "absent"), "-o", "json")
    assert run.returncode == 1
    assert json.loads(run.stdout)["errors"][0]["code"] == "ACM1101"
    policy = cli("policy", "verify", str(tmp_path / "absent"), "-o", "json")
    assert json.loads(policy.stdout)["errors"][0]["code"] == "ACM1048"
