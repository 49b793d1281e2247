"""A small HTTPS server for the admission webhook that does not trust its clients.

One thread accepts; each connection is handed to a fixed pool of handler threads, and at most
``Limits.max_connections`` are held at once (a newcomer beyond that is closed unanswered, which
the API server reads as a failed call and answers by the webhook's failure policy). The TLS
handshake must finish within ``Limits.timeout`` of the connection being taken up, and each
request (head and body) within ``timeout`` of its first byte; a kept-open connection waiting
longer than ``Limits.idle`` for its next request is closed. Heads and bodies are capped; a
malformed request gets a 4xx answer and its connection closed. The certificate can be replaced
while serving (``set_context``): each new connection uses the newest.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from acm_lite.reconcile.httpserver import Answer, BadRequestError, Limits, Request, body_length, parse_head

log = logging.getLogger("acm_lite.admission")


@dataclass(frozen=True)
class TLSLimits:
    timeout: float = 5.0  # seconds for the handshake, and for each request to arrive whole
    idle: float = 2.0  # seconds an open connection may wait for its next request
    max_requests: int = 1000  # on one connection, then it is closed
    max_header: int = 16 * 1024
    max_body: int = 8 * 2**20  # an AdmissionReview carries the object and its old version
    max_connections: int = 64  # handled or waiting for a handler thread
    workers: int = 16


class TLSServer:
    """Serves ``handler`` over TLS on ``address`` until ``shutdown``."""

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        handler: Callable[[Request], Answer],
        limits: TLSLimits | None = None,
    ):
        self.limits = limits or TLSLimits()
        self.handler = handler
        self._context = context
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.create_server(address, family=family, backlog=128)
        self._listener.settimeout(0.5)
        self._slots = threading.BoundedSemaphore(self.limits.max_connections)
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="admission")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="admission-accept")
        self._thread.start()

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def set_context(self, context: ssl.SSLContext) -> None:
        """Serve new connections with ``context`` (a rotated certificate)."""
        self._context = context

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as e:  # out of file descriptors, for one: wait and go on
                if self._stop.is_set():
                    return
                log.warning("accept failed", extra={"fields": {"error": str(e)}})
                time.sleep(0.1)
                continue
            if not self._slots.acquire(blocking=False):
                sock.close()  # too many at once: the caller's failure policy decides
                continue
            try:
                self._pool.submit(self._serve, sock)
            except RuntimeError:  # shutting down
                self._slots.release()
                sock.close()

    def _serve(self, sock: socket.socket) -> None:
        """Serve one connection: its requests one after another (the API server keeps its
        connections open), each within the timeout, until the client closes it, sends
        ``Connection: close``, stays idle past ``Limits.idle``, or has sent ``max_requests``."""
        try:
            with self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False) as tls:
                self._handshake(tls, time.monotonic() + self.limits.timeout)
                pending = bytearray()
                for served in range(self.limits.max_requests):
                    if served and not pending and not self._idle(tls, pending):
                        return
                    deadline = time.monotonic() + self.limits.timeout
                    try:
                        request, keep, pending = self._read(tls, deadline, pending)
                    except BadRequestError as e:
                        self._send(tls, Answer(e.status, f"{e.reason}\n".encode()), deadline, keep=False)
                        return
                    keep = keep and served + 1 < self.limits.max_requests and not self._stop.is_set()
                    self._send(tls, self._answer(request), deadline, keep=keep)
                    if not keep:
                        return
        except (OSError, ssl.SSLError, ValueError) as e:  # handshake failed, timed out, reset
            log.debug("admission connection dropped", extra={"fields": {"error": str(e)}})
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self._slots.release()

    @staticmethod
    def _handshake(tls: ssl.SSLSocket, deadline: float) -> None:
        """The TLS handshake, done by ``deadline`` however slowly the client sends it."""
        tls.setblocking(False)
        wanted: tuple[list[ssl.SSLSocket], list[ssl.SSLSocket]]
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                wanted = ([tls], [])
            except ssl.SSLWantWriteError:
                wanted = ([], [tls])
            left = deadline - time.monotonic()
            if left <= 0 or not any(select.select(*wanted, [], left)[:2]):
                raise TimeoutError("TLS handshake too slow")
        tls.setblocking(True)

    def _idle(self, tls: ssl.SSLSocket, pending: bytearray) -> bool:
        """Wait up to ``idle`` seconds for the next request's first bytes; False when none came."""
        tls.settimeout(self.limits.idle)
        try:
            data = tls.recv(65536)
        except TimeoutError:
            return False
        pending += data
        return bool(data)

    @staticmethod
    def _send(tls: ssl.SSLSocket, answer: Answer, deadline: float, *, keep: bool) -> None:
        data = answer.encode()
        if keep:  # the head is ours: its one Connection header says the connection stays open
            data = data.replace(b"Connection: close\r\n", b"Connection: keep-alive\r\n", 1)
        tls.settimeout(max(0.1, deadline - time.monotonic()))
        tls.sendall(data)

    def _read(
        self, tls: ssl.SSLSocket, deadline: float, buffer: bytearray
    ) -> tuple[Request, bool, bytearray]:
        """The next request, whether the client keeps the connection open after it, and the
        bytes already received beyond it."""
        limits = self.limits
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > limits.max_header:
                raise BadRequestError(431, "request header too large")
            buffer += self._recv(tls, deadline)
        if end > limits.max_header:
            raise BadRequestError(431, "request header too large")
        head = bytes(buffer[:end])
        method, path, headers = parse_head(head)
        length = body_length(headers, Limits(max_body=limits.max_body))
        body = buffer[end + 4 :]
        while len(body) < length:
            body += self._recv(tls, deadline)
        http11 = head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.1")
        keep = http11 and "close" not in headers.get("connection", "").lower()
        return Request(method, path, headers, bytes(body[:length])), keep, body[length:]

    @staticmethod
    def _recv(tls: ssl.SSLSocket, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request too slow")
        tls.settimeout(left)
        data = tls.recv(65536)
        if not data:
            raise ConnectionResetError("closed before the request was whole")
        return data

    def _answer(self, request: Request) -> Answer:
        try:
            return self.handler(request)
        except Exception:  # a bug in the handler: the client learns nothing of it
            log.exception("admission handler failed", extra={"fields": {"path": request.path}})
            return Answer(500, b"internal error\n")
