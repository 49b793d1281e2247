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


def test_stop_all_stops_processes_side_by_side(tmp_path: Path) -> None:
    """Three that take 1.5 s to shut down after SIGTERM stop in about 1.5 s, not 4.5 s; one that
    ignores SIGTERM among them is killed when the grace is over."""
    slow = "trap 'sleep 1.5; exit 0' TERM; while :; do sleep 0.05; done"

    def timed(pids: list[int], grace: float) -> float:
        started = time.monotonic()
        process.stop_all(pids, grace=grace)
        assert [p for p in pids if process.alive(p)] == []
        return time.monotonic() - started

    procs = [process.start(["bash", "-c", slow], tmp_path / f"log{i}", detached=False) for i in range(3)]
    time.sleep(0.3)
    took = timed([p.pid for p in procs], grace=10.0)
    assert 1.4 < took < 3.5, took  # side by side; one after another is 4.5 s
    procs = [process.start(["bash", "-c", slow], tmp_path / f"again{i}", detached=False) for i in range(2)]
    stubborn = process.start(["bash", "-c", "trap '' TERM; sleep 30"], tmp_path / "stubborn", detached=False)
    time.sleep(0.3)
    took = timed([stubborn.pid, *(p.pid for p in procs)], grace=2.0)
    assert 1.9 < took < 4.0, took  # SIGKILL at the end of the grace, not 30 s


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
