from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from acm_lite.devcluster import process
from acm_lite.errors import AcmError


def test_free_port_is_free_and_port_open_sees_listeners() -> None:
    port = process.free_port()
    assert not process.port_open(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert process.port_open(port)


def test_stop_escalates_to_sigkill_for_a_process_ignoring_sigterm(tmp_path: Path) -> None:
    proc = process.start(["bash", "-c", "trap '' TERM; sleep 30"], tmp_path / "log", detached=False)
    time.sleep(0.2)
    started = time.monotonic()
    process.stop(proc.pid, grace=0.5)
    assert not process.alive(proc.pid)
    assert time.monotonic() - started < 5


def test_wait_ready_reports_an_early_exit_with_the_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = process.start(["bash", "-c", "echo boom; exit 4"], log, detached=False)
    with pytest.raises(AcmError) as failed:
        process.wait_ready("thing", proc, log, lambda: False, timeout=10)
    assert failed.value.code.id == "ACM9003"
    assert "exited with code 4" in failed.value.message
    assert "boom" in failed.value.message


def test_wait_ready_times_out(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc = process.start(["sleep", "30"], log, detached=False)
    try:
        with pytest.raises(AcmError, match="not ready after 0s"):
            process.wait_ready("thing", proc, log, lambda: False, timeout=0.3)
    finally:
        process.stop(proc.pid)


def test_alive_treats_zombies_as_gone() -> None:
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while process.alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.alive(proc.pid)  # exited but not yet reaped: a zombie
    proc.wait()
