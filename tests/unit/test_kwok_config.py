"""kwok's configuration, command line and fake Nodes, and the controllers' command lines."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path

import pytest
import yaml

from acm_lite.devcluster import controllers, controlplane, kwok
from acm_lite.errors import CONTROL_PLANE_START_FAILED, AcmError


def _stage(name: str) -> dict[str, object]:
    return next(s for s in kwok.stages() if s["metadata"]["name"] == name)  # type: ignore[index]


def _expressions(name: str) -> dict[str, tuple[str, list[str]]]:
    spec = _stage(name)["spec"]
    exprs = spec["selector"]["matchExpressions"]  # type: ignore[index]
    return {e["key"]: (e["operator"], e.get("values", [])) for e in exprs}


def test_the_config_file_holds_every_stage_for_nodes_and_pods(tmp_path: Path) -> None:
    path = kwok.write_config(tmp_path / "kwok.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    assert all(d["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and d["kind"] == "Stage" for d in docs)
    by_kind: dict[str, list[str]] = {}
    for doc in docs:
        by_kind.setdefault(doc["spec"]["resourceRef"]["kind"], []).append(doc["metadata"]["name"])
    assert by_kind == {
        "Node": ["acm-lite-node-initialize", "acm-lite-node-heartbeat"],
        "Pod": [
            "acm-lite-pod-ready",
            "acm-lite-pod-complete",
            "acm-lite-pod-fail",
            "acm-lite-pod-crashloop",
            "acm-lite-pod-delete",
        ],
    }
    assert docs == kwok.configuration()


def test_pods_marked_to_simulate_a_failure_never_take_the_ready_stage() -> None:
    ready = _expressions("acm-lite-pod-ready")
    assert ready['.metadata.annotations["acm-lite.dev/simulate"]'] == ("DoesNotExist", [])
    assert ready[".metadata.deletionTimestamp"] == ("DoesNotExist", [])
    fail = _expressions("acm-lite-pod-fail")
    assert fail['.metadata.annotations["acm-lite.dev/simulate"]'] == ("In", ["fail"])
    crash = _expressions("acm-lite-pod-crashloop")
    assert crash['.metadata.annotations["acm-lite.dev/simulate"]'] == ("In", ["crashloop"])
    assert set(kwok.SIMULATIONS) == {"fail", "crashloop"}
    assert "phase: Failed" in _stage("acm-lite-pod-fail")["spec"]["next"]["statusTemplate"]  # type: ignore[index]
    crash_status = _stage("acm-lite-pod-crashloop")["spec"]["next"]["statusTemplate"]  # type: ignore[index]
    assert "CrashLoopBackOff" in crash_status and "phase: Running" in crash_status


def test_only_job_pods_complete_and_deleted_pods_go_away() -> None:
    complete = _expressions("acm-lite-pod-complete")
    assert complete[".metadata.ownerReferences.[].kind"] == ("In", ["Job"])
    assert complete[".status.phase"] == ("In", ["Running"])
    assert _expressions("acm-lite-pod-delete") == {".metadata.deletionTimestamp": ("Exists", [])}
    assert _stage("acm-lite-pod-delete")["spec"]["next"] == {"delete": True}  # type: ignore[index]


def test_kwok_manages_only_annotated_nodes_reads_only_our_config_and_listens_on_loopback(
    tmp_path: Path,
) -> None:
    args = kwok.command("/bin/kwok", kubeconfig=tmp_path / "k", config=tmp_path / "c.yaml", port=4242)
    assert args[0] == "/bin/kwok"
    assert f"--kubeconfig={tmp_path / 'k'}" in args
    assert f"--config={tmp_path / 'c.yaml'}" in args
    assert "--manage-all-nodes=false" in args
    assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in args
    assert "--server-address=127.0.0.1:4242" in args


def test_fake_nodes_carry_the_annotation_kwok_selects() -> None:
    names = kwok.node_names(3)
    assert names == ["kwok-node-1", "kwok-node-2", "kwok-node-3"]
    node = kwok.node(names[0])
    assert node["kind"] == "Node"
    assert node["metadata"]["annotations"][kwok.NODE_ANNOTATION] == kwok.NODE_ANNOTATION_VALUE
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "kwok-node-1"
    assert "status" not in node and "taints" not in node["spec"]


def test_controller_manager_runs_every_default_controller_on_loopback(tmp_path: Path) -> None:
    args = controllers.controller_manager_args("/bin/kcm", tmp_path, 5555)
    flags = dict(a.split("=", 1) for a in args[1:])
    assert flags["--bind-address"] == "127.0.0.1" and flags["--secure-port"] == "5555"
    assert flags["--leader-elect"] == "false"
    assert flags["--use-service-account-credentials"] == "true"
    assert flags["--controllers"] == "*"
    assert flags["--kubeconfig"] == str(tmp_path / "controller-manager.kubeconfig")
    assert flags["--service-account-private-key-file"] == str(tmp_path / "sa.key")
    assert flags["--root-ca-file"] == str(tmp_path / "ca.crt")
    assert flags["--cluster-signing-key-file"] == str(tmp_path / "ca.key")


def test_scheduler_runs_on_loopback_with_leader_election_off(tmp_path: Path) -> None:
    args = controllers.scheduler_args("/bin/sched", tmp_path, 6666)
    flags = dict(a.split("=", 1) for a in args[1:])
    assert flags["--bind-address"] == "127.0.0.1" and flags["--secure-port"] == "6666"
    assert flags["--leader-elect"] == "false"
    assert flags["--kubeconfig"] == str(tmp_path / "scheduler.kubeconfig")


def test_only_the_full_mode_admits_pods_with_their_service_account(tmp_path: Path) -> None:
    light = controlplane.apiserver_args("/bin/api", tmp_path, "http://127.0.0.1:1", "c", 7, full=False)
    full = controlplane.apiserver_args("/bin/api", tmp_path, "http://127.0.0.1:1", "c", 7, full=True)
    assert "--disable-admission-plugins=ServiceAccount" in light
    assert not any(a.startswith("--disable-admission-plugins") for a in full)
    assert [a for a in light if not a.startswith("--disable-admission")] == full


def test_a_saved_full_environment_loads_with_its_controllers(tmp_path: Path) -> None:
    env = controlplane.Environment(
        root=str(tmp_path),
        etcd=controlplane.EtcdServer(1, 2, 3, "d", "/bin/etcd"),
        clusters=[
            controlplane.APIServer(
                "c",
                10,
                443,
                str(tmp_path),
                "/bin/api",
                children=[controllers.Child("kwok", 11, 99, "/bin/kwok", "kwok.log")],
                nodes=["kwok-node-1"],
            ),
            controlplane.APIServer("light", 20, 444, str(tmp_path), "/bin/api"),
        ],
    )
    env.save()
    loaded = controlplane.Environment.load(tmp_path)
    assert loaded == env
    assert loaded is not None and loaded.pids == [1, 10, 11, 20]
    assert [c.full for c in loaded.clusters] == [True, False]


def test_a_node_the_api_server_refuses_is_a_coded_start_failure() -> None:
    seen: list[dict[str, object]] = []

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(yaml.safe_load(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(409 if len(seen) == 1 else 403)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(AcmError) as raised:
            controllers.create_nodes(url, ssl.create_default_context(), ["a", "b"])
    finally:
        server.shutdown()
    assert raised.value.code is CONTROL_PLANE_START_FAILED
    assert "fake Node b failed (HTTP 403)" in raised.value.message
    assert [n["metadata"]["name"] for n in seen] == ["a", "b"]  # type: ignore[index]


def test_a_state_file_this_version_cannot_read_is_left_alone(tmp_path: Path) -> None:
    newer = tmp_path / (controlplane._TEMP_PREFIX + "newer")
    newer.mkdir()
    (newer / "state.json").write_text(
        '{"root": "x", "etcd": {"pid": 1, "port": 2, "peer_port": 3, "data_dir": "d", "binary": "e"},'
        ' "clusters": [{"name": "c", "a_field_from_a_newer_version": 1}]}'
    )
    damaged = tmp_path / (controlplane._TEMP_PREFIX + "damaged")
    damaged.mkdir()
    (damaged / "state.json").write_text("{not json")
    assert controlplane.Environment.load(newer) is None
    assert controlplane.Environment.load(damaged) is None
    assert controlplane.sweep_stale(tmp_path) == []
    assert newer.is_dir() and damaged.is_dir()
