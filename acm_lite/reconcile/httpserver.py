"""A small HTTP/1.1 server for the daemon's endpoints that does not trust its clients.

One thread reads every connection through a selector until its request is whole, so a client that
connects and sends nothing, or sends its headers and never its body, holds a file descriptor but
no thread, and is cut off once ``Limits.timeout`` has passed since it connected. Complete requests
go to a small, fixed pool of handler threads. Open connections are capped (the oldest unfinished
one makes room for a newcomer), headers and bodies are capped, and malformed requests get a 4xx
answer instead of a traceback. Every answer closes its connection.
"""

from __future__ import annotations

import contextlib
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger("acm_lite.http")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LENGTH = re.compile(r"[0-9]{1,18}")
_REASONS = {
    200: "OK",
    202: "Accepted",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0  # seconds from connecting to the whole request; also to send the answer
    max_header: int = 16 * 1024
    max_body: int = 4 * 2**20  # a push event's payload is far smaller
    max_connections: int = 512  # open and unfinished; file descriptors, not threads
    max_buffered: int = 32 * 2**20  # bytes of unfinished requests held, over every connection
    workers: int = 4  # handler threads
    max_refusing: int = 64  # refused requests answered at once, off the handler threads


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    headers: Mapping[str, str]  # names in lower case; values decoded as ISO-8859-1
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()  # more header lines; values set by the code, never CR/LF

    def encode(self) -> bytes:
        extra = "".join(
            f"{name}: {value}\r\n" for name, value in self.headers if "\r" not in value and "\n" not in value
        )
        head = (
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}\r\n"
            f"Content-Type: {self.content_type}\r\nContent-Length: {len(self.body)}\r\n"
            f"{extra}Connection: close\r\n\r\n"
        )
        return head.encode("latin-1") + self.body


Handler = Callable[[Request], Answer]


class BadRequestError(Exception):
    """A request the server answers with ``status`` and does not hand to the handler."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, path and headers of a request head (without its final blank line)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if (
        len(parts) != 3
        or not _TOKEN.fullmatch(parts[0])
        or not parts[1].startswith(b"/")
        or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1")
    ):
        raise BadRequestError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequestError(400, "malformed header line")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        if key not in headers:
            headers[key] = text
        elif key == "content-length":
            if headers[key] != text:
                raise BadRequestError(400, "conflicting Content-Length headers")
        else:
            headers[key] = f"{headers[key]}, {text}"
    path = parts[1].decode("latin-1").split("?", 1)[0]
    return parts[0].decode("ascii"), path, headers


def body_length(headers: Mapping[str, str], limits: Limits) -> int:
    """The declared body length; a missing one is an empty body, a chunked body is refused."""
    if "transfer-encoding" in headers:
        raise BadRequestError(411, "send the body with a Content-Length, not chunked")
    value = headers.get("content-length")
    if value is None:
        return 0
    if not _LENGTH.fullmatch(value):
        raise BadRequestError(400, "Content-Length is not a non-negative number")
    length = int(value)
    if length > limits.max_body:
        raise BadRequestError(413, f"body larger than {limits.max_body} bytes")
    return length


class _Connection:
    """A client connection while its request arrives."""

    __slots__ = ("buffer", "deadline", "head", "length", "sock")

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.head: tuple[str, str, dict[str, str]] | None = None
        self.length = 0

    def request(self, limits: Limits) -> Request | None:
        """The whole request once it has arrived; None while more is needed."""
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > limits.max_header:
                    raise BadRequestError(431, "request header too large")
                return None
            if end > limits.max_header:
                raise BadRequestError(431, "request header too large")
            self.head = parse_head(self.buffer[:end])
            self.length = body_length(self.head[2], limits)
            if self.length and self.head[0] != "POST":  # only a push carries a body
                raise BadRequestError(413, f"a {self.head[0]} request carries no body")
            self.buffer = self.buffer[end + 4 :]
        if len(self.buffer) < self.length:
            return None
        method, path, headers = self.head
        return Request(method, path, headers, self.buffer[: self.length])


class Server:
    """Serves ``handler`` on ``address`` from a thread of its own until ``shutdown``."""

    def __init__(self, address: tuple[str, int], handler: Handler, limits: Limits | None = None):
        self.handler = handler
        self.limits = limits or Limits()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.create_server(address, family=family, backlog=128)
        self._listener.setblocking(False)
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        self._pool = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="http-handler")
        # refusals wait for the client to read them: threads of their own, so /healthz never
        # queues behind them
        self._refusals = ThreadPoolExecutor(2, thread_name_prefix="http-refusal")
        self._refusing = 0  # refusals handed over and not yet closed
        self._refusing_lock = threading.Lock()
        self._open: dict[socket.socket, _Connection] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="http")
        self._thread.start()

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def shutdown(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._refusals.shutdown(wait=True, cancel_futures=True)
        for sock in [*self._open, self._listener, self._wake_read, self._wake_write]:
            with contextlib.suppress(OSError):
                sock.close()
        self._selector.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except Exception:  # a bug must not silence /healthz: log it, serve on
                log.exception("endpoint server round failed")
                time.sleep(0.1)

    def _round(self) -> None:
        for key, _ in self._selector.select(self._wait()):
            if key.data == "accept":
                self._accept()
            elif key.data == "wake":
                with contextlib.suppress(OSError):
                    self._wake_read.recv(64)
            else:
                self._read(key.data)
        self._expire()

    def _wait(self) -> float:
        """Seconds until the earliest deadline (at most one)."""
        if not self._open:
            return 1.0
        soonest = min(c.deadline for c in self._open.values())
        return max(0.0, min(1.0, soonest - time.monotonic()))

    def _accept(self) -> None:
        for _ in range(64):  # a burst at a time, so reads are not starved
            try:
                sock, _peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of file descriptors, for one: wait for the next round
                log.warning("accept failed", extra={"fields": {"error": str(e)}})
                return
            if len(self._open) >= self.limits.max_connections:
                oldest = min(self._open.values(), key=lambda c: c.deadline)
                self._drop(oldest)
            sock.setblocking(False)
            conn = _Connection(sock, time.monotonic() + self.limits.timeout)
            self._open[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        conn.buffer += data
        if sum(len(c.buffer) for c in self._open.values()) > self.limits.max_buffered:
            self._drop(next(iter(self._open.values())))  # many big bodies at once: shed the oldest
            if conn.sock not in self._open:
                return
        try:
            request = conn.request(self.limits)
        except BadRequestError as e:
            log.debug("bad request", extra={"fields": {"status": e.status, "reason": e.reason}})
            refused = Answer(e.status, f"{e.reason}\n".encode())
            self._dispatch(conn, lambda: refused, drain=True)
            return
        if request is not None:
            self._dispatch(conn, lambda: self._answer(request), drain=False)

    def _answer(self, request: Request) -> Answer:
        try:
            return self.handler(request)
        except Exception:  # a bug in a handler: the client learns nothing of it
            log.exception("handler failed", extra={"fields": {"path": request.path}})
            return Answer(500, b"internal error\n")

    def _dispatch(self, conn: _Connection, answer: Callable[[], Answer], *, drain: bool) -> None:
        """Hand the connection over to a handler thread, which answers and closes it; a refusal
        goes to the refusal threads, or is closed unanswered when too many are waiting."""
        self._selector.unregister(conn.sock)
        del self._open[conn.sock]
        try:
            if not drain:
                self._pool.submit(self._respond, conn.sock, answer, False)
                return
            with self._refusing_lock:
                if self._refusing >= self.limits.max_refusing:
                    conn.sock.close()
                    return
                self._refusing += 1
            self._refusals.submit(self._refuse, conn.sock, answer)
        except RuntimeError:  # shutting down
            conn.sock.close()

    def _refuse(self, sock: socket.socket, answer: Callable[[], Answer]) -> None:
        try:
            self._respond(sock, answer, True)
        finally:
            with self._refusing_lock:
                self._refusing -= 1

    def _respond(self, sock: socket.socket, answer: Callable[[], Answer], drain: bool) -> None:
        try:
            data = answer().encode()
            sock.settimeout(self.limits.timeout)
            sock.sendall(data)
            if drain:  # a refused request's body may still be arriving: let the client read
                sock.shutdown(socket.SHUT_WR)  # the answer rather than a reset
                _drain(sock)
        except OSError:
            pass
        finally:
            sock.close()

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._open.values() if c.deadline <= now]:
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        self._open.pop(conn.sock, None)
        with contextlib.suppress(OSError):
            conn.sock.close()


def _drain(sock: socket.socket, limit: int = 1 << 20, seconds: float = 1.0) -> None:
    """Read and discard what the client still sends, up to ``limit`` bytes or ``seconds``."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    read = 0
    while read < limit and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            return
        read += len(data)
