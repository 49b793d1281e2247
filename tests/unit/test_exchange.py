"""Many requests from one thread over several connections (``Transport.exchange`` and
``Cluster.request_many``) against a threaded server on loopback, plain and TLS."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Call, Cluster
from acm_lite.cluster.transport import Response, TLSSettings, Transport, TransportError
from acm_lite.errors import AcmError
from tests.support import tls

CLOSE = b""  # an answer that closes the connection without answering


def ok(body: bytes, status: str = "200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status.encode(), len(body), body)


def chunked(body: bytes, parts: int) -> bytes:
    size = -(-len(body) // parts)
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    )
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


class Server:
    """Answers every request, on as many connections at once as clients open, with
    ``respond(path, body)``. Records the requests and the most it held unanswered at once."""

    def __init__(self, respond: Callable[[str, bytes], bytes], context: ssl.SSLContext | None = None):
        self.respond = respond
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.paths: list[str] = []
        self.bodies: dict[str, int] = {}
        self.connections = 0
        self.busy = 0
        self.most_busy = 0
        self.lock = threading.Lock()
        scheme = "https" if context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with self.lock:
            self.connections += 1
        try:
            conn = self.context.wrap_socket(raw, server_side=True) if self.context else raw
            with conn:
                buffer = b""
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = next(
                        (
                            int(line.split(b":")[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ),
                        0,
                    )
                    while len(buffer) < length:
                        buffer += conn.recv(1 << 20)
                    body, buffer = buffer[:length], buffer[length:]
                    path = head.split(b" ")[1].decode()
                    with self.lock:
                        self.paths.append(path)
                        self.bodies[path] = len(body)
                        self.busy += 1
                        self.most_busy = max(self.most_busy, self.busy)
                    try:
                        answer = self.respond(path, body)
                    finally:
                        with self.lock:
                            self.busy -= 1
                    if not answer:
                        return
                    conn.sendall(answer)
                    if b"Connection: close" in answer.split(b"\r\n\r\n")[0]:
                        return
        except OSError:
            pass  # a client that went away, as some tests intend

    def close(self) -> None:
        self.listener.close()


@contextmanager
def serving(
    respond: Callable[[str, bytes], bytes], context: ssl.SSLContext | None = None
) -> Iterator[Server]:
    server = Server(respond, context)
    try:
        yield server
    finally:
        server.close()


def transport(url: str, tls: TLSSettings | None = None, read_timeout: float = 5) -> Transport:
    return Transport(
        url, tls or TLSSettings(), max_connections=8, connect_timeout=2, read_timeout=read_timeout
    )


def outcomes(
    t: Transport, paths: list[str], width: int, body: bytes | None = None
) -> dict[int, Response | TransportError]:
    requests = [("PUT" if body else "GET", path, {"X-Test": "1"}, body) for path in paths]
    return dict(t.exchange(requests, width))


def test_every_answer_comes_back_in_its_position_over_at_most_width_connections() -> None:
    def respond(path: str, body: bytes) -> bytes:
        kind, n = path.strip("/").split("/")
        time.sleep(int(n) % 3 / 1000)  # answers come back out of order
        if kind == "length":
            return ok(f"length-{n}".encode())
        if kind == "chunked":
            return chunked(f"chunked-{n}".encode() * 3, 3)
        return b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: %d\r\n\r\nclosed-%s" % (
            len(n) + 7,
            n.encode(),
        )

    paths = [f"/{('length', 'chunked', 'close')[i % 3]}/{i}" for i in range(60)]
    with serving(respond) as server:
        t = transport(server.url)
        answers = outcomes(t, paths, width=4, body=b'{"n":1}')
        assert sorted(answers) == list(range(60))
        for i, path in enumerate(paths):
            kind, n = path.strip("/").split("/")
            answer = answers[i]
            assert isinstance(answer, Response)
            expected = {"length": f"length-{n}", "chunked": f"chunked-{n}" * 3, "close": f"closed-{n}"}[kind]
            assert answer.data == expected.encode()
            assert answer.status == (201 if kind == "close" else 200)
        assert sorted(server.paths) == sorted(paths)
        assert set(server.bodies.values()) == {7}
        assert 1 < server.most_busy <= 4
        # the kept-alive connections went back to the transport for the next request
        before = server.connections
        assert t.request("GET", "/length/1", {}, None).data == b"length-1"
        assert server.connections == before


def test_a_reused_connection_closed_before_answering_sends_the_request_once_more() -> None:
    seen: Counter[str] = Counter()

    def respond(path: str, body: bytes) -> bytes:
        seen[path] += 1
        if path == "/drop-once" and seen[path] == 1:
            return CLOSE  # the connection had carried /first: the request is sent again
        if path == "/garbage":
            return b"SSH-2.0-not-http\r\n\r\n"
        return ok(path.encode())

    with serving(respond) as server:
        answers = outcomes(
            transport(server.url), ["/first", "/drop-once", "/after", "/garbage", "/last"], width=1
        )
    assert [getattr(answers[i], "data", None) for i in (0, 1, 2, 4)] == [
        b"/first",
        b"/drop-once",
        b"/after",
        b"/last",
    ]
    assert isinstance(answers[3], TransportError)
    assert "not an HTTP/1.x answer" in str(answers[3])
    assert seen["/drop-once"] == 2


def test_a_new_connection_closed_before_answering_is_an_error_not_a_retry() -> None:
    seen: Counter[str] = Counter()

    def respond(path: str, body: bytes) -> bytes:
        seen[path] += 1
        return CLOSE if path == "/never" else ok(b"fine")

    with serving(respond) as server:
        answers = outcomes(transport(server.url), ["/never", "/fine"], width=1)
    assert isinstance(answers[0], TransportError)
    assert getattr(answers[1], "data", None) == b"fine"
    assert seen["/never"] == 1


def test_a_request_without_an_answer_times_out_alone() -> None:
    release = threading.Event()

    def respond(path: str, body: bytes) -> bytes:
        if path == "/hang":
            release.wait(10)
        return ok(b"fine")

    with serving(respond) as server:
        try:
            answers = outcomes(transport(server.url, read_timeout=0.5), ["/hang", "/a", "/b", "/c"], width=2)
        finally:
            release.set()
    assert isinstance(answers[0], TransportError)
    assert "no answer within 0.5s" in str(answers[0])
    assert [getattr(answers[i], "data", None) for i in (1, 2, 3)] == [b"fine"] * 3


def test_an_unreachable_server_is_an_error_for_every_request() -> None:
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    answers = outcomes(transport(f"http://127.0.0.1:{port}"), ["/a", "/b", "/c"], width=2)
    assert sorted(answers) == [0, 1, 2]
    assert all(isinstance(a, TransportError) and "cannot connect" in str(a) for a in answers.values())


def test_tls_large_requests_and_answers_spanning_many_records(tmp_path: Path) -> None:
    files = tls.files(tmp_path, "exchange")
    context = tls.server_context(files)
    big = bytes(range(256)) * 1200  # about 300 KB: many TLS records

    def respond(path: str, body: bytes) -> bytes:
        return chunked(big, 5) if path.startswith("/big") else ok(b"%d" % len(body))

    settings = TLSSettings(ca_file=files["ca"], cert_file=files["client.crt"], key_file=files["client.key"])
    upload = b"x" * (4 << 20)  # more than a socket takes at once: sent in parts
    with serving(respond, context) as server:
        t = transport(server.url, settings)
        answers = dict(
            t.exchange(
                [("GET", f"/big/{i}", {}, None) for i in range(6)] + [("PUT", "/upload", {}, upload)], 3
            )
        )
    assert all(getattr(answers[i], "data", None) == big for i in range(6))
    assert getattr(answers[6], "data", None) == str(len(upload)).encode()


def test_request_many_maps_answers_to_api_errors_and_counts_the_requests() -> None:
    def respond(path: str, body: bytes) -> bytes:
        if path.startswith("/bad"):
            status = json.dumps(
                {"kind": "Status", "reason": "Invalid", "message": "spec.replicas: must be a number"}
            ).encode()
            return ok(status, "422 Unprocessable Entity")
        assert json.loads(body) == {"name": path.strip("/").split("?")[0]}
        return ok(b"{}")

    with serving(respond) as server:
        cfg = k8s_client.Configuration()
        cfg.host = server.url
        cluster = Cluster(cfg)
        calls = [
            Call(
                "PATCH",
                f"/{name}",
                {"fieldManager": "acm-lite", "dryRun": None},
                {"name": name},
                "application/apply-patch+yaml",
            )
            for name in ("a", "bad", "b")
        ]
        answers = cluster.request_many(calls, width=2)
        assert cluster.requests["PATCH"] == 3
        assert sorted(server.paths) == [
            "/a?fieldManager=acm-lite",
            "/b?fieldManager=acm-lite",
            "/bad?fieldManager=acm-lite",
        ]
    assert answers[0] is None and answers[2] is None
    assert answers[1] == ApiError(422, "Invalid", "spec.replicas: must be a number")

    cfg = k8s_client.Configuration()
    cfg.host = "http://127.0.0.1:1"  # nothing listens on port 1
    unreachable = Cluster(cfg).request_many([Call("GET", "/api")], width=4)
    assert isinstance(unreachable[0], AcmError)
    assert unreachable[0].code is errors.API_SERVER_ERROR


def test_request_many_without_the_lean_transport_uses_threads() -> None:
    with serving(
        lambda path, body: (
            ok(b"{}") if path == "/ok" else ok(b'{"reason":"NotFound","message":"gone"}', "404 Not Found")
        )
    ) as server:
        cfg = k8s_client.Configuration()
        cfg.host = server.url
        cluster = Cluster(cfg)
        cluster._transport = None  # as for a cluster reached through a proxy
        answers = cluster.request_many([Call("GET", "/ok"), Call("GET", "/missing")], width=2)
    assert answers[0] is None
    assert isinstance(answers[1], ApiError) and answers[1].status == 404


@pytest.mark.parametrize("width", [1, 16])
def test_an_empty_exchange_sends_nothing(width: int) -> None:
    with serving(lambda path, body: ok(b"")) as server:
        assert outcomes(transport(server.url), [], width) == {}
        assert server.connections == 0


@pytest.mark.parametrize("lean", [True, False])
def test_request_many_reports_each_answer_as_it_arrives(lean: bool) -> None:
    fast_heard = threading.Event()
    slow_saw: list[bool] = []

    def respond(path: str, body: bytes) -> bytes:
        if path == "/slow":  # answers only once the caller has heard of the fast one
            slow_saw.append(fast_heard.wait(5))
            return ok(b"{}")
        return ok(b'{"reason":"Conflict","message":"taken"}', "409 Conflict")

    heard: list[tuple[int, object]] = []

    def on_answer(position: int, outcome: ApiError | AcmError | None) -> None:
        heard.append((position, outcome))
        if position == 1:
            fast_heard.set()

    with serving(respond) as server:
        cfg = k8s_client.Configuration()
        cfg.host = server.url
        cluster = Cluster(cfg)
        if not lean:
            cluster._transport = None
        answers = cluster.request_many(
            [Call("GET", "/slow"), Call("GET", "/fast")], width=2, on_answer=on_answer
        )
    assert slow_saw == [True]
    assert heard == [(1, answers[1]), (0, None)]
    assert answers[0] is None and isinstance(answers[1], ApiError) and answers[1].status == 409


def test_an_api_error_passes_through_a_context_manager_as_itself() -> None:
    """Raised inside a ``with`` of a generator-based context manager, the error reaches the caller
    unchanged (Python sets its ``__traceback__`` on the way), and it stays hashable."""
    import contextlib

    @contextlib.contextmanager
    def around() -> Iterator[None]:
        yield

    with pytest.raises(ApiError) as raised, around():
        raise ApiError(404, "NotFound", "gone")
    assert raised.value.status == 404 and raised.value.__traceback__ is not None
    assert len({raised.value, raised.value}) == 1
