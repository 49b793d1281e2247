"""Drift forensics against a real API server with `acm-lite serve` running: managed objects changed
with real kubectl under named field managers are repaired, and the object's status entry, the
Event and `status --resources` name the manager and its operation, and the user the API server's
audit log names (an impersonated one as such)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from acm_lite import api
from acm_lite.cli.main import main
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import resourcestore
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns


def kubectl(control_plane: APIServer, *args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        [str(binaries.ensure("kubectl")), "--kubeconfig", control_plane.kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def drift_of(cluster: Cluster, sync: str, name: str) -> dict[str, Any] | None:
    for entry in resourcestore.entries(resourcestore.read(cluster, sync)):
        if entry.id.kind == "ConfigMap" and entry.id.name == name and entry.drift is not None:
            return entry.drift.to_dict()
    return None


def test_a_repaired_edit_names_the_field_manager_in_status_event_log_and_cli(
    control_plane: APIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"f-{uuid.uuid4().hex[:6]}"
    namespace = name
    repo = GitRepo(tmp_path / "git")
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace), "b.yaml": cm("b", namespace)})
    cluster = Cluster.connect(control_plane.kubeconfig)
    log = tmp_path / "serve.log"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acm_lite",
            "serve",
            "--kubeconfig",
            control_plane.kubeconfig,
            "--repo",
            repo.url,
            "--revision",
            "main",
            "--source-format",
            "unstructured",
            "--name",
            name,
            "--period",
            "30",
            "--metrics-address",
            "off",
            "--audit-log",
            str(Path(control_plane.dir) / "audit.log"),
        ],
        env={**os.environ, "ACM_LITE_CACHE": str(tmp_path / "cache")},
        stderr=log.open("w"),
        text=True,
    )
    a, b = (f"/api/v1/namespaces/{namespace}/configmaps/{n}" for n in "ab")
    try:
        eventually(lambda: '"message": "pass"' in log.read_text(), 90)
        eventually(lambda: drift_of(cluster, name, "a") is None and get(cluster, a) is not None, 30)
        kubectl(
            control_plane,
            "create",
            "role",
            "cm-editor",
            "--verb=get,patch",
            "--resource=configmaps",
            "-n",
            namespace,
        )
        kubectl(
            control_plane,
            "create",
            "rolebinding",
            "alice-edits",
            "--role=cm-editor",
            "--user=alice",
            "-n",
            namespace,
        )
        # a merge patch by a named field manager as an impersonated user (kubectl edit and patch
        # are Updates like this one)
        kubectl(
            control_plane,
            "--as=alice",
            "patch",
            "configmap",
            "a",
            "-n",
            namespace,
            "--type=merge",
            "--field-manager=oncall-alice",
            "-p",
            '{"data":{"k":"by-hand"}}',
        )
        # a server-side apply taking the field over from acm-lite
        body = json.dumps({**cm("b", namespace), "data": {"k": "applied"}})
        kubectl(
            control_plane,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=ops-bot",
            "-f",
            "-",
            stdin=body,
        )
        eventually(lambda: (get(cluster, a) or {}).get("data") == {"k": "v"}, 30)
        eventually(lambda: (get(cluster, b) or {}).get("data") == {"k": "v"}, 30)
        eventually(lambda: drift_of(cluster, name, "a") is not None and drift_of(cluster, name, "b"), 30)
        drift_a, drift_b = drift_of(cluster, name, "a"), drift_of(cluster, name, "b")
        assert drift_a is not None and drift_b is not None
        assert (drift_a["manager"], drift_a["operation"], drift_a["fields"]) == (
            "oncall-alice",
            "Update",
            ["data.k"],
        )
        assert (drift_b["manager"], drift_b["operation"], drift_b["fields"]) == (
            "ops-bot",
            "Apply",
            ["data.k"],
        )
        events = cluster.request("GET", f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}/events")["items"]
        messages = [
            e["message"]
            for e in events
            if e["involvedObject"]["name"] == name and e["reason"] == "DriftRepaired"
        ]
        assert any(
            f"ConfigMap {namespace}/a was edited by oncall-alice (Update) as alice (impersonated by admin)"
            in m
            for m in messages
        ), messages
        assert any("by ops-bot (Apply) as admin" in m for m in messages), messages
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        repaired = [x for x in lines if x.get("message") == "drift repaired"]
        assert {(x.get("manager"), x.get("user")) for x in repaired} >= {
            ("oncall-alice", "alice (impersonated by admin)"),
            ("ops-bot", "admin"),
        }, repaired
        assert main(["status", "--kubeconfig", control_plane.kubeconfig, "--resources", "--name", name]) == 0
        text = capsys.readouterr().out
        assert (
            "LAST DRIFT" in text
            and "oncall-alice (Update) as alice (impersonated by admin)" in text
            and "ops-bot (Apply) as admin" in text
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
