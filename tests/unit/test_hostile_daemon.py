"""The daemon's HTTP endpoints against hostile clients, with raw sockets: the regression corpus in
tests/hostile/daemon/, slowloris, hundreds of idle connections, and the limits of the server."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from acm_lite.reconcile import metrics as metrics_mod
from acm_lite.reconcile.httpserver import Answer, Limits, Request, Server
from acm_lite.reconcile.metrics import Metrics

CORPUS = Path(__file__).resolve().parents[1] / "hostile" / "daemon" / "http"
SECRET = b"hostile-secret"
TIMEOUT = 0.6
CUT_OFF = None  # the connection is closed without an answer once the timeout has passed
# verified pushes: the body is never parsed, so any signed push body triggers a poll
TRIGGERS = {"signed-push", "signed-non-json-body", "signed-deeply-nested-json"}
EXPECTED: dict[str, int | None] = {
    "negative-content-length": 400,
    "non-numeric-content-length": 400,
    "float-content-length": 400,
    "conflicting-content-lengths": 400,
    "huge-content-length": 413,
    "chunked-body": 411,
    "non-ascii-signature": 400,
    "malformed-signature": 400,
    "non-ascii-gitlab-token": 400,
    "wrong-signature": 401,
    "signed-non-json-body": 202,
    "signed-deeply-nested-json": 202,
    "header-without-colon": 400,
    "folded-header": 400,
    "garbage-request-line": 400,
    "absolute-form-target": 400,
    "unknown-method": 405,
    "oversized-headers": 431,
    "body-never-sent": CUT_OFF,
    "headers-never-finished": CUT_OFF,
    "signed-push": 202,
}


class Endpoints:
    def __init__(self, server: Server, pushes: list[float]):
        self.server, self.pushes = server, pushes
        self.port = server.server_address[1]

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def get(self, path: str) -> int | None:
        with self.connect() as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return status_of(sock)


@contextmanager
def endpoints(limits: Limits | None = None) -> Iterator[Endpoints]:
    pushes: list[float] = []
    server = metrics_mod.serve(
        ("127.0.0.1", 0),
        Metrics(),
        lambda: True,
        lambda: pushes.append(time.monotonic()),
        SECRET,
        limits=limits or Limits(timeout=TIMEOUT),
    )
    try:
        yield Endpoints(server, pushes)
    finally:
        server.shutdown()


def status_of(sock: socket.socket) -> int | None:
    """The status of the answer on ``sock``; None when it closed without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split(b" ", 2)[1])


def test_the_corpus_is_complete() -> None:
    assert sorted(p.stem for p in CORPUS.glob("*.http")) == sorted(EXPECTED)
    readme = (CORPUS.parent / "README.md").read_text()
    assert all(f"`{name}.http`" in readme for name in EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hostile_request(
    case: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="acm_lite")
    with endpoints() as server:
        started = time.monotonic()
        with server.connect() as sock:
            sock.sendall((CORPUS / f"{case}.http").read_bytes())
            status = status_of(sock)
        took = time.monotonic() - started
        assert server.get("/healthz") == 200  # and the server still serves
    assert status == EXPECTED[case]  # an answer, so not cut off after the timeout
    if EXPECTED[case] is CUT_OFF:
        assert TIMEOUT * 0.8 < took < TIMEOUT + 2
    assert bool(server.pushes) == (case in TRIGGERS)
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in capsys.readouterr().err


def test_slowloris_is_cut_off_while_others_are_served() -> None:
    timeout = 3.0
    with endpoints(Limits(timeout=timeout)) as server:
        slow = server.connect()
        slow.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        started = time.monotonic()
        for _ in range(5):  # served while the slow client holds its connection
            assert server.get("/healthz") == 200
        assert time.monotonic() - started < timeout
        assert status_of(slow) is None  # closed, no answer
        assert timeout * 0.8 <= time.monotonic() - started < timeout + 3
        slow.close()


def test_hundreds_of_idle_connections_hold_no_threads() -> None:
    threads = threading.active_count()
    with endpoints(Limits(timeout=30)) as server:
        idle = [server.connect() for _ in range(200)]
        half = [server.connect() for _ in range(50)]
        for sock in half:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: ")  # and never the rest
        try:
            started = time.monotonic()
            assert server.get("/healthz") == 200
            assert server.get("/readyz") == 200
            assert time.monotonic() - started < 2
            assert threading.active_count() <= threads + Limits().workers + 1
        finally:
            for sock in idle + half:
                sock.close()


def test_past_the_connection_cap_the_oldest_unfinished_makes_room() -> None:
    with endpoints(Limits(timeout=30, max_connections=10)) as server:
        idle = [server.connect() for _ in range(30)]
        try:
            assert server.get("/healthz") == 200
        finally:
            for sock in idle:
                sock.close()


def test_a_handler_that_raises_answers_500() -> None:
    def broken(_request: Request) -> Answer:
        raise ValueError("a bug")

    server = Server(("127.0.0.1", 0), broken, Limits(timeout=TIMEOUT))
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(sock) == 500
    finally:
        server.shutdown()


def test_only_a_post_carries_a_body() -> None:
    with endpoints() as ep, ep.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
        assert status_of(sock) == 413


def test_bodies_held_at_once_are_bounded_server_wide() -> None:
    """Many connections each sending most of a large body: past the server-wide budget the oldest
    is shed, and /healthz is still answered."""
    with endpoints(Limits(timeout=TIMEOUT, max_buffered=256 * 1024)) as ep:
        held = []
        for _ in range(8):
            sock = ep.connect()
            sock.sendall(
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 99_000
            )
            held.append(sock)
        time.sleep(0.3)
        assert ep.get("/healthz") == 200
        shed = sum(_closed_by_server(sock) for sock in held)
        assert shed >= 5  # 8 x 99 KB against a 256 KiB budget


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.5)
    with sock:
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def test_refused_requests_never_delay_healthz() -> None:
    """Refusals wait for their client to read the answer on threads of their own."""
    with endpoints() as ep:
        refused = []
        for _ in range(40):
            sock = ep.connect()
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
            refused.append(sock)
        time.sleep(0.2)
        began = time.monotonic()
        assert ep.get("/healthz") == 200
        assert time.monotonic() - began < 2.0
        for sock in refused:
            sock.close()
