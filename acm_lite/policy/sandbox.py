"""Policy code from a repository runs in a forked child with a memory and a time budget, so a
template that crashes the engine, exhausts memory or loops forever costs a coded error, never
the process (``vet``, ``sync``, the daemon).

One fork per policy pass, not per evaluation: the child inherits the parsed objects, compiles
and evaluates everything, and sends back only its findings. It records which policy object and
which declared object it is at in shared memory, so a child that dies or stalls is reported
against the template and the object that did it.
"""

from __future__ import annotations

import faulthandler
import mmap
import os
import pickle
import resource
import select
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_MEMORY_MB = 2048
DEFAULT_EVAL_SECONDS = 10.0
DEFAULT_TOTAL_SECONDS = 900.0
_POLL_MS = 200
_FORKING = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """Memory on top of what the process already holds; seconds one evaluation (or one compile)
    may take; seconds the whole pass may take."""

    memory_mb: int = DEFAULT_MEMORY_MB
    eval_seconds: float = DEFAULT_EVAL_SECONDS
    total_seconds: float = DEFAULT_TOTAL_SECONDS


def env_number(name: str, default: float) -> float:
    """A positive number from the environment variable ``name``; ``default`` when unset or not one."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def limits() -> Limits:
    """The budget, from ``ACM_LITE_POLICY_MEMORY_MB``, ``ACM_LITE_POLICY_EVAL_SECONDS`` and
    ``ACM_LITE_POLICY_TOTAL_SECONDS`` when set."""
    return Limits(
        int(env_number("ACM_LITE_POLICY_MEMORY_MB", DEFAULT_MEMORY_MB)),
        env_number("ACM_LITE_POLICY_EVAL_SECONDS", DEFAULT_EVAL_SECONDS),
        env_number("ACM_LITE_POLICY_TOTAL_SECONDS", DEFAULT_TOTAL_SECONDS),
    )


class Progress:
    """Two numbers the child sets as it goes (which policy object, which declared object; -1 for
    none), readable by the parent at any time."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, 16)
        self._view = memoryview(self._map).cast("q")
        self._view[0] = self._view[1] = -1

    def mark(self, policy_index: int, object_index: int) -> None:
        view = self._view
        view[0] = policy_index
        view[1] = object_index

    def at(self) -> tuple[int, int]:
        return self._view[0], self._view[1]


@dataclass(frozen=True)
class Stopped:
    """The child did not finish: why, and where it was."""

    reason: str
    policy_index: int
    object_index: int


@dataclass(frozen=True)
class _ChildAnswer(Generic[T]):
    """What the child sends back: the task's value, the error it raised, or why it stopped."""

    value: T | None = None
    error: BaseException | None = None
    stopped: str | None = None


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _apply_limits(budget: Limits) -> None:
    used = _address_space()
    if used is not None:
        _lower(resource.RLIMIT_AS, used + budget.memory_mb * 1024 * 1024, 0)
    _lower(resource.RLIMIT_CPU, int(budget.total_seconds) + 1, 5)


def _lower(kind: int, soft: int, slack: int) -> None:
    """Set a limit, never above the hard limit the process already has (``ulimit``, a container):
    a child may only lower its limits."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
        resource.setrlimit(kind, (soft, hard))
    else:
        resource.setrlimit(kind, (soft, soft + slack))


def _quiet_stderr() -> None:
    """The engine writes its abort messages and Rust backtraces to stderr; the parent reports
    a coded error instead."""
    faulthandler.disable()
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def _child(task: Callable[[Progress], T], progress: Progress, out_fd: int, budget: Limits) -> None:
    """Runs in the forked child; never returns."""
    try:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.SIG_DFL)
        _quiet_stderr()
        try:
            _apply_limits(budget)
            outcome: _ChildAnswer[T] = _ChildAnswer(value=task(progress))
        except MemoryError:
            outcome = _ChildAnswer(stopped=f"out of its {budget.memory_mb} MiB memory budget")
        except Exception as e:
            outcome = _ChildAnswer(error=_portable(e))
        try:
            data = pickle.dumps(outcome)
        except Exception as e:
            data = pickle.dumps(_ChildAnswer(error=RuntimeError(f"{type(e).__name__}: {e}")))
        view = memoryview(data)
        while view:
            view = view[os.write(out_fd, view) :]
    finally:
        os._exit(0)


def _portable(error: Exception) -> Exception:
    """The exception itself when it survives the trip to the parent, else a RuntimeError with its
    type, message and traceback (an error that cannot be rebuilt there must still be raised as
    the bug it is, not read as a policy the engine could not evaluate)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        text = "".join(traceback.format_exception(error)).rstrip()
        return RuntimeError(f"{type(error).__name__}: {error}\n{text}")
    return error


def _signal_reason(status: int, budget: Limits) -> str:
    number = os.WTERMSIG(status)
    if number == signal.SIGXCPU:
        return f"used more than {budget.total_seconds:.0f} s of CPU"
    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
    if number in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
        return (
            f"the policy engine crashed ({name}): out of its {budget.memory_mb} MiB memory "
            "budget, or too deep a recursion"
        )
    return f"the policy engine was stopped ({name})"


def _watch(pid: int, fd: int, progress: Progress, budget: Limits) -> tuple[bytes, str | None]:
    """Read the child's answer; stop it when one step stalls or the whole pass takes too long."""
    chunks: list[bytes] = []
    started = last_change = time.monotonic()
    last = progress.at()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    while True:
        if poller.poll(_POLL_MS):
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks), None
            chunks.append(chunk)
        now, at = time.monotonic(), progress.at()
        if at != last:
            last, last_change = at, now
        elif now - last_change > budget.eval_seconds:
            os.kill(pid, signal.SIGKILL)
            return b"", f"took longer than {budget.eval_seconds:g} s"
        if now - started > budget.total_seconds:
            os.kill(pid, signal.SIGKILL)
            return b"", f"the policy pass took longer than {budget.total_seconds:g} s"


def _finish(pid: int, data: bytes, reason: str | None, budget: Limits) -> _ChildAnswer[T] | str:
    _, status = os.waitpid(pid, 0)
    if reason is not None:
        return reason
    if os.WIFSIGNALED(status):
        return _signal_reason(status, budget)
    try:
        outcome = pickle.loads(data)
    except Exception:
        return f"the policy engine exited without an answer (status {os.waitstatus_to_exitcode(status)})"
    return outcome if isinstance(outcome, _ChildAnswer) else "the policy engine answered nonsense"


def run(task: Callable[[Progress], T], budget: Limits | None = None) -> T | Stopped:
    """``task(progress)`` in a child process with ``budget``; its value, or where and why it
    was stopped. An exception the task raises is raised here. Without ``fork`` (not POSIX) the
    task runs in this process."""
    budget = budget or limits()
    progress = Progress()
    if not hasattr(os, "fork"):
        return task(progress)
    with _FORKING:  # no other run's write end may leak into this child, nor this one's into theirs
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(task, progress, write_fd, budget)
        os.close(write_fd)
    try:
        data, reason = _watch(pid, read_fd, progress, budget)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(read_fd)
    outcome: _ChildAnswer[T] | str = _finish(pid, data, reason, budget)
    if isinstance(outcome, str) or outcome.stopped is not None:
        return Stopped(outcome if isinstance(outcome, str) else str(outcome.stopped), *progress.at())
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]
