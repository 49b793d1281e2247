"""Run an external tool a repository or a chart drives (kustomize, which runs helm; helm template)
under a wall-clock limit and an output limit: its own process group, killed whole when either is
passed; standard output read up to the limit and no further, standard error kept up to a small
bound.

Subprocess I/O only; what the command is and what its result means is the caller's.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_STDERR = 64 * 1024
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Finished:
    """How a run ended. ``returncode`` is None when it was stopped (time or output limit)."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    too_large: bool = False
    seconds: float = 0.0


class _Reading:
    """Both pipes, read as data arrives, until end of file, the deadline or the output limit."""

    def __init__(self, proc: subprocess.Popen[bytes], deadline: float, max_stdout: int):
        self.deadline = deadline
        self.max_stdout = max_stdout
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.out_bytes = self.err_bytes = 0
        self.timed_out = self.too_large = False
        self.selector = selectors.DefaultSelector()
        assert proc.stdout is not None and proc.stderr is not None
        self.selector.register(proc.stdout, selectors.EVENT_READ, True)
        self.selector.register(proc.stderr, selectors.EVENT_READ, False)

    def loop(self) -> None:
        with self.selector:
            while self.selector.get_map() and not self.too_large:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.timed_out = True
                    return
                for key, _ in self.selector.select(left):
                    self.read(key)

    def read(self, key: selectors.SelectorKey) -> None:
        chunk = os.read(key.fd, _CHUNK)
        if not chunk:
            self.selector.unregister(key.fileobj)
        elif key.data:
            self.out_bytes += len(chunk)
            if self.out_bytes > self.max_stdout:
                self.too_large = True
            else:
                self.out.append(chunk)
        elif self.err_bytes < MAX_STDERR:
            self.err.append(chunk[: MAX_STDERR - self.err_bytes])
            self.err_bytes += len(self.err[-1])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float, max_stdout: int
) -> Finished:
    """Run ``argv`` to its end or to a limit. Raises OSError when it cannot be started."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )
    reading = _Reading(proc, started + timeout, max_stdout)
    try:
        reading.loop()
        if not (reading.timed_out or reading.too_large):
            try:
                proc.wait(max(0.0, reading.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                reading.timed_out = True
    finally:
        _kill_group(proc)  # anything the tool started (kustomize runs helm), finished or not
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    stopped = reading.timed_out or reading.too_large
    return Finished(
        None if stopped else proc.returncode,
        b"".join(reading.out),
        b"".join(reading.err),
        reading.timed_out,
        reading.too_large,
        time.monotonic() - started,
    )
