"""The lean HTTP/1.1 transport against a scripted server on loopback: each connection gets the
answers the test lists, byte for byte, so framing and reconnection are checked exactly."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cluster.transport import TLSSettings, Transport, TransportError
from tests.support import tls

CLOSE = object()  # in a script: close the connection instead of answering


class Last(bytes):
    """In a script: send this answer, then close the connection."""


@contextmanager
def scripted(*connections: list[object]) -> Iterator[tuple[str, list[bytes]]]:
    """A server whose n-th accepted connection answers each request with the n-th script's next
    item. Yields its URL and the raw requests it received."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def read_request(conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def serve() -> None:
        for script in connections:
            conn, _ = listener.accept()
            with conn:
                for answer in script:
                    request = read_request(conn)
                    if request is None:
                        break
                    received.append(request)
                    if answer is CLOSE:
                        break
                    assert isinstance(answer, bytes)
                    conn.sendall(answer)
                    if isinstance(answer, Last):
                        break
                else:
                    conn.recv(1)  # keep it open until the client is done with it

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        listener.close()


def transport(url: str) -> Transport:
    return Transport(url, TLSSettings(), max_connections=4, connect_timeout=2, read_timeout=5)


def test_content_length_and_keep_alive_reuse_one_connection() -> None:
    answers: list[object] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        b"HTTP/1.1 201 Created\r\nContent-Length: 6\r\n\r\nsecond",
    ]
    with scripted(answers) as (url, received):
        t = transport(url)
        one = t.request("PATCH", "/api/v1/x?force=true", {"Content-Type": "application/json"}, b'{"a":1}')
        two = t.request("GET", "/api/v1/y", {}, None)
        t.close()
    assert (one.status, one.data) == (200, b"first")
    assert (two.status, two.data) == (201, b"second")
    assert received[0].startswith(b"PATCH /api/v1/x?force=true HTTP/1.1\r\n")
    assert b"Content-Type: application/json\r\n" in received[0]
    assert received[0].endswith(b'Content-Length: 7\r\n\r\n{"a":1}')
    assert b"Content-Length" not in received[1]


def test_chunked_body_with_extension_and_trailer() -> None:
    body = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    with scripted([body, b"HTTP/1.1 204 No Content\r\n\r\n"]) as (url, _):
        t = transport(url)
        assert t.request("GET", "/a", {}, None).data == b"abcdefg"
        after = t.request("DELETE", "/b", {}, None)  # the stream stayed in step
    assert (after.status, after.data) == (204, b"")


def test_connection_close_and_close_delimited_body() -> None:
    with scripted(
        [Last(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")],
        [Last(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast"],
    ) as (url, _):
        t = transport(url)
        assert t.request("GET", "/1", {}, None).data == b"ok"
        assert t.request("GET", "/2", {}, None).data == b"until the end"
        assert t.request("GET", "/3", {}, None).data == b"last"


def test_a_reused_connection_closed_by_the_server_is_retried_once_on_a_new_one() -> None:
    with scripted(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", CLOSE],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"],
    ) as (url, received):
        t = transport(url)
        assert t.request("GET", "/1", {}, None).data == b"a"
        # the server takes the second request and closes without answering: nothing was
        # received, the connection had been used before, so it is sent again on a new one
        assert t.request("PUT", "/2", {}, b"x").data == b"b"
    assert [r.split(b" ")[1] for r in received] == [b"/1", b"/2", b"/2"]


def test_a_new_connection_closed_before_answering_is_an_error_not_a_retry() -> None:
    with scripted([CLOSE]) as (url, received), pytest.raises(TransportError):
        transport(url).request("POST", "/once", {}, b"{}")
    assert len(received) == 1


def test_unreachable_server_and_garbage_answers_are_transport_errors() -> None:
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(TransportError, match="cannot connect"):
        transport(f"http://127.0.0.1:{port}").request("GET", "/", {}, None)
    with scripted([b"SSH-2.0-not-http\r\n\r\n"]) as (url, _), pytest.raises(TransportError):
        transport(url).request("GET", "/", {}, None)


def test_a_path_prefix_in_the_server_address_is_kept() -> None:
    with scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) as (url, received):
        transport(url + "/proxy/cluster-a").request("GET", "/api", {}, None)
    assert received[0].startswith(b"GET /proxy/cluster-a/api HTTP/1.1\r\n")


@contextmanager
def tls_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """One HTTPS server on loopback that requires a client certificate from its CA; yields its
    URL, the certificate files and the client names it saw."""
    files = tls.files(tmp_path, "transport")
    context = tls.server_context(files)
    listener = socket.create_server(("127.0.0.1", 0))
    clients: list[str] = []

    def answer(raw: socket.socket) -> None:
        try:
            with context.wrap_socket(raw, server_side=True) as conn:
                peer: Any = conn.getpeercert()
                clients.extend(value for rdn in peer["subject"] for key, value in rdn if key == "commonName")
                while b"\r\n\r\n" not in conn.recv(65536):
                    pass
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass  # a client the test expects to fail

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(raw,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", files, clients
    finally:
        listener.close()


def test_tls_with_a_client_certificate_and_the_cluster_ca(tmp_path: Path) -> None:
    with tls_server(tmp_path) as (url, files, clients):
        good = TLSSettings(ca_file=files["ca"], cert_file=files["client.crt"], key_file=files["client.key"])
        answer = Transport(url, good, max_connections=2, connect_timeout=2, read_timeout=5).request(
            "GET", "/version", {}, None
        )
        assert (answer.status, answer.data, clients) == (200, b"ok", ["admin"])

        wrong_name = TLSSettings(
            ca_file=files["ca"],
            cert_file=files["client.crt"],
            key_file=files["client.key"],
            server_hostname="other.example",
        )
        with pytest.raises(TransportError, match="certificate"):
            Transport(url, wrong_name, max_connections=2, connect_timeout=2, read_timeout=5).request(
                "GET", "/", {}, None
            )

        unknown_ca = TLSSettings(cert_file=files["client.crt"], key_file=files["client.key"])
        with pytest.raises(TransportError, match="certificate"):
            Transport(url, unknown_ca, max_connections=2, connect_timeout=2, read_timeout=5).request(
                "GET", "/", {}, None
            )

        unverified = TLSSettings(verify=False, cert_file=files["client.crt"], key_file=files["client.key"])
        assert (
            Transport(url, unverified, max_connections=2, connect_timeout=2, read_timeout=5)
            .request("GET", "/", {}, None)
            .data
            == b"ok"
        )


def test_unusable_credential_files_fail_the_request_not_the_setup(tmp_path: Path) -> None:
    (tmp_path / "broken.crt").write_text("not a certificate")
    t = Transport(
        "https://127.0.0.1:1",
        TLSSettings(cert_file=str(tmp_path / "broken.crt")),
        max_connections=1,
        connect_timeout=2,
        read_timeout=5,
    )
    with pytest.raises(TransportError, match="cannot use the TLS credentials"):
        t.request("GET", "/", {}, None)
