"""The policy sandbox: a forked child's value comes back; a crash, a stall, exhausted memory and
a raised exception each come back as what they are, with where the child was."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.policy import sandbox
from acm_lite.policy.sandbox import Limits, Progress


def test_the_value_comes_back() -> None:
    assert sandbox.run(lambda _p: {"pid": os.getpid()}) != {"pid": os.getpid()}


def test_an_exception_is_raised_here() -> None:
    def fail(_p: Progress) -> None:
        raise ValueError("from the child")

    with pytest.raises(ValueError, match="from the child"):
        sandbox.run(fail)


def test_a_crash_is_reported_where_it_happened() -> None:
    def crash(progress: Progress) -> None:
        progress.mark(2, 7)
        ctypes.string_at(0)  # a segmentation fault

    stopped = sandbox.run(crash)
    assert isinstance(stopped, sandbox.Stopped)
    assert (stopped.policy_index, stopped.object_index) == (2, 7)
    assert "SIGSEGV" in stopped.reason


def test_a_stall_is_stopped() -> None:
    def stall(progress: Progress) -> None:
        progress.mark(1, 3)
        time.sleep(60)

    started = time.monotonic()
    stopped = sandbox.run(stall, Limits(eval_seconds=1))
    assert isinstance(stopped, sandbox.Stopped) and "longer than 1 s" in stopped.reason
    assert (stopped.policy_index, stopped.object_index) == (1, 3)
    assert time.monotonic() - started < 30


def test_progress_keeps_a_long_pass_alive() -> None:
    def busy(progress: Progress) -> int:
        for i in range(6):
            progress.mark(0, i)
            time.sleep(0.4)
        return 6

    assert sandbox.run(busy, Limits(eval_seconds=1)) == 6


def test_memory_beyond_the_budget_stops_the_child() -> None:
    def hog(_p: Progress) -> int:
        return len(bytearray(400 * 1024 * 1024))

    stopped = sandbox.run(hog, Limits(memory_mb=100))
    assert isinstance(stopped, sandbox.Stopped) and "100 MiB memory budget" in stopped.reason


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACM_LITE_POLICY_EVAL_SECONDS", "2.5")
    monkeypatch.setenv("ACM_LITE_POLICY_MEMORY_MB", "nonsense")
    assert sandbox.limits() == Limits(eval_seconds=2.5)


def test_a_hard_memory_limit_below_the_budget_still_lets_policies_run() -> None:
    """Under ``ulimit -v`` (a container, a CI runner) the child lowers its limit to what it may."""
    script = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
        "from acm_lite.policy import sandbox; print(sandbox.run(lambda p: 'ran'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "ran", done.stdout + done.stderr


def test_an_acm_error_comes_back_as_itself_and_any_other_as_a_bug() -> None:
    def coded(_progress: sandbox.Progress) -> None:
        raise AcmError(errors.POLICY_SUITE_INVALID, "coded", path="p")

    with pytest.raises(AcmError) as caught:
        sandbox.run(coded)
    assert caught.value.code is errors.POLICY_SUITE_INVALID and caught.value.path == "p"

    class UnpicklableError(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}{b}")

    def odd(_progress: sandbox.Progress) -> None:
        raise UnpicklableError(1, 2)

    with pytest.raises(RuntimeError, match="UnpicklableError: 12"):
        sandbox.run(odd)


def test_runs_from_many_threads_never_wait_on_each_other() -> None:
    """A fork from one thread must not inherit another run's pipe (its answer would then wait for
    that child to exit, and a fast run would be stopped as stalled)."""
    budget = sandbox.Limits(eval_seconds=2)
    with ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(sandbox.run, lambda p: time.sleep(1.5) or "slow", budget) for _ in range(2)]
        fast = [pool.submit(sandbox.run, lambda p: "fast", budget) for _ in range(40)]
        assert [f.result() for f in fast] == ["fast"] * 40
        assert [f.result() for f in slow] == ["slow"] * 2
