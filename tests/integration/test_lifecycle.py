"""Control planes stop cleanly: no process, port or directory left, even when a run is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from acm_lite.devcluster import controlplane, process

REPO = Path(__file__).resolve().parents[2]


def _footprint(env: controlplane.Environment) -> dict[str, object]:
    return {
        "pids": [env.etcd.pid, *(c.pid for c in env.clusters)],
        "ports": [env.etcd.port, env.etcd.peer_port, *(c.port for c in env.clusters)],
        "root": env.root,
    }


def _assert_gone(footprint: dict[str, object], *, dirs: bool = True) -> None:
    pids: list[int] = list(footprint["pids"])  # type: ignore[call-overload]
    ports: list[int] = list(footprint["ports"])  # type: ignore[call-overload]

    def leftovers() -> tuple[list[int], list[int]]:
        return [p for p in pids if process.alive(p)], [p for p in ports if process.port_open(p)]

    deadline = time.monotonic() + 15  # a killed Go process closes its sockets as its threads exit
    while leftovers() != ([], []) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers() == ([], [])
    if dirs:
        assert not Path(str(footprint["root"])).exists()


def test_stop_leaves_no_process_port_or_directory(control_plane_binaries: dict[str, Path]) -> None:
    env = controlplane.start(
        ["a", "b"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    footprint = _footprint(env)
    assert all(process.alive(p) for p in footprint["pids"])  # type: ignore[attr-defined]
    assert all(process.port_open(p) for p in footprint["ports"][::2])  # type: ignore[index]
    controlplane.stop(env)
    _assert_gone(footprint)


def test_failed_start_cleans_up(control_plane_binaries: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'refusing to start' >&2\nexit 3\n")
    broken.chmod(0o755)
    root = tmp_path / "env"
    from acm_lite.errors import AcmError

    with pytest.raises(AcmError) as failed:
        controlplane.start(
            ["x"], etcd_binary=str(control_plane_binaries["etcd"]), apiserver_binary=str(broken), root=root
        )
    assert failed.value.code.id == "ACM9003"
    assert "refusing to start" in failed.value.message
    assert not root.exists()


_CHILD_TEST = """
import json, os, time
from pathlib import Path

def test_hangs_with_a_control_plane(dev_env):
    Path(os.environ["FOOTPRINT"]).write_text(json.dumps({
        "pids": [dev_env.etcd.pid, *(c.pid for c in dev_env.clusters)],
        "ports": [dev_env.etcd.port, dev_env.etcd.peer_port, *(c.port for c in dev_env.clusters)],
        "root": dev_env.root,
    }))
    time.sleep(600)
"""


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"]
)
def test_interrupted_test_run_leaves_nothing_behind(
    control_plane_binaries: dict[str, Path], tmp_path: Path, signum: int
) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.conftest"]\n')
    (tmp_path / "test_child.py").write_text(textwrap.dedent(_CHILD_TEST))
    marker = tmp_path / "footprint.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FOOTPRINT": str(marker)}
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_child.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert child.poll() is None, child.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "child never started its control plane"
            time.sleep(0.2)
        footprint = json.loads(marker.read_text())
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    # SIGKILL runs no cleanup code: the kernel's parent-death signal still stops the servers,
    # and the next start sweeps away the directory left on disk.
    _assert_gone(footprint, dirs=signum != signal.SIGKILL)
    if signum == signal.SIGKILL:
        assert footprint["root"] in controlplane.sweep_stale()
        _assert_gone(footprint)
