"""Start, probe and stop one local server process (etcd or kube-apiserver)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from acm_lite.errors import CONTROL_PLANE_START_FAILED, AcmError

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """Ask the kernel to kill this child when the process that started it dies, even by SIGKILL.

    SIGKILL, not SIGTERM: a kube-apiserver whose etcd died alongside it hangs in graceful shutdown.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start(args: Sequence[str], log: Path, *, detached: bool) -> subprocess.Popen[bytes]:
    """Start a server writing to ``log``.

    A detached server outlives this process (``acm-lite dev up``); an attached one dies with it.
    Either way it gets its own session so a Ctrl-C meant for the caller reaches it only through us.
    """
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if detached else _die_with_parent,  # noqa: PLW1509 - only prctl runs
        )


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; returns when the process is gone."""
    stop_all([pid], grace)


def stop_all(pids: list[int], grace: float = 10.0) -> None:
    """``stop`` for several processes at once: each gets SIGTERM now, and whichever is still
    running ``grace`` seconds later SIGKILL; returns when every one is gone. They shut down side
    by side, so stopping many takes as long as the slowest, not the sum."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        for pid in pids:
            _reap(pid)
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    while any(alive(p) for p in pids):
        for pid in pids:
            _reap(pid)
        time.sleep(0.05)
    for pid in pids:
        _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_ready(
    what: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    probe: Callable[[], bool],
    timeout: float,
) -> None:
    """Poll ``probe`` until it is true; a coded error if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AcmError(
                CONTROL_PLANE_START_FAILED,
                f"{what} exited with code {proc.returncode} while starting:\n{log_tail(log)}",
                path=str(log),
            )
        if probe():
            return
        time.sleep(0.1)
    raise AcmError(
        CONTROL_PLANE_START_FAILED,
        f"{what} was not ready after {timeout:.0f}s:\n{log_tail(log)}",
        path=str(log),
        hint="a slow machine may need a longer ACM_LITE_START_TIMEOUT (seconds)",
    )


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0
