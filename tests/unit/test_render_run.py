"""The render stage's process runner and cache, with shell commands standing in for kustomize."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from acm_lite import bounded as run
from acm_lite.render import cache

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def sh(script: str, tmp_path: Path, *, timeout: float = 30, max_stdout: int = 1 << 20) -> run.Finished:
    return run.run(["sh", "-c", script], cwd=tmp_path, env=ENV, timeout=timeout, max_stdout=max_stdout)


def test_output_and_exit_status_are_returned(tmp_path: Path) -> None:
    done = sh("echo out; echo err >&2; exit 3", tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    assert not done.timed_out and not done.too_large


def test_the_environment_is_exactly_the_one_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARENT_SECRET", "s")
    done = run.run(["env"], cwd=tmp_path, env={**ENV, "MARK": "1"}, timeout=30, max_stdout=4096)
    assert sorted(done.stdout.decode().splitlines()) == ["MARK=1", f"PATH={ENV['PATH']}"]


def test_the_time_limit_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    started = time.monotonic()
    done = sh(f"sleep 60 & echo $! > {pid_file}; wait", tmp_path, timeout=1)
    assert done.timed_out and done.returncode is None
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    assert _gone(child, within=5.0)


def _gone(pid: int, within: float) -> bool:
    """Whether ``pid`` is gone or a zombie within ``within`` seconds: SIGKILL is delivered
    asynchronously, so a killed process may still be seen running for a moment."""
    state = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + within
    while True:
        try:
            if state.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_output_past_the_limit_stops_the_run(tmp_path: Path) -> None:
    started = time.monotonic()
    done = sh("yes", tmp_path, max_stdout=100_000)
    assert done.too_large and done.returncode is None
    assert len(done.stdout) <= 100_000
    assert time.monotonic() - started < 10


def test_standard_error_is_kept_up_to_its_bound(tmp_path: Path) -> None:
    done = sh("head -c 200000 /dev/zero >&2", tmp_path)
    assert done.returncode == 0 and len(done.stderr) == run.MAX_STDERR


def test_the_memory_cache_keeps_the_most_recently_used() -> None:
    kept: cache.Memory[int] = cache.Memory(2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.get("a") == 1
    kept.put("c", 3)
    assert kept.get("b") is None and kept.get("a") == 1 and kept.get("c") == 3
    assert len(kept) == 2
    kept.clear()
    assert kept.get("a") is None


def test_the_disk_cache_writes_whole_files_only(tmp_path: Path) -> None:
    disk = cache.Disk(tmp_path / "cache")
    assert not disk.has("k")
    disk.put("k", b"kind: X\n")
    assert disk.has("k") and disk.path("k").read_bytes() == b"kind: X\n"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k.yaml"]
    (tmp_path / "blocked").write_text("a file where the directory should be")
    cache.Disk(tmp_path / "blocked").put("k", b"x")  # not stored, and no error
