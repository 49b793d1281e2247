"""Run an external tool a repository or a chart drives (kustomize, which runs helm; helm template)
under a wall-clock limit and an output limit: its own process group, killed whole when either is
passed; standard output read up to the limit and no further, standard error kept up to a small
bound.

Subprocess I/O only; what the command is and what its result means is the caller's.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
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


_PASSED = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def sealed_environment(
    parent: Mapping[str, str], work: str, *, network: bool, closed_port: int | None
) -> dict[str, str]:
    """The whole environment of a tool a repository or a chart drives: nothing of the parent's
    but the variables above (no credentials, tokens or kubeconfig), a home and temp directory
    inside ``work`` (the caller creates them), git without configuration or prompts, and, with
    ``network`` off, every proxy pointing at a port on loopback that refuses connections
    (``closed_port``) and git allowed no transport."""
    env = {name: parent[name] for name in _PASSED if name in parent}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    home = posixpath.join(work, "home")
    env.update(
        {
            "HOME": home,
            "TMPDIR": posixpath.join(work, "tmp"),
            "XDG_CONFIG_HOME": posixpath.join(home, ".config"),
            "XDG_CACHE_HOME": posixpath.join(home, ".cache"),
            "XDG_DATA_HOME": posixpath.join(home, ".local", "share"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "false",
            "SSH_ASKPASS": "false",
            "GIT_SSH_COMMAND": "ssh -F /dev/null -o BatchMode=yes",
        }
    )
    if network:
        for name in _PROXIES:
            for variant in (name, name.lower()):
                if variant in parent:
                    env[variant] = parent[variant]
        return env
    refused = f"http://127.0.0.1:{closed_port or 9}"
    for name in _PROXIES[:-1]:
        env[name] = env[name.lower()] = refused
    env["NO_PROXY"] = env["no_proxy"] = ""
    env["GIT_ALLOW_PROTOCOL"] = "none"  # no transport at all, file:// included
    env["GIT_SSH_COMMAND"] = "false"
    return env


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port bound and never listened on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
