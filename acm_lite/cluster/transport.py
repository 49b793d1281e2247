"""A lean HTTP/1.1 keep-alive transport for the requests a sync makes by the thousand.

A sync is thousands of small requests on a machine the API server often shares; per request,
urllib3 spends about three times the CPU of this transport (header dictionaries, response objects,
retry bookkeeping), CPU the API server then lacks. This transport keeps a stack of TLS connections,
sends each request as one buffer and reads the answer by Content-Length or chunks. It speaks only what
the Kubernetes API server answers; proxies and streaming watches stay with urllib3.

A request that fails on a reused connection before a single byte of the answer arrived is sent once
more on a new connection: the server closed the idle connection, so it never saw the request.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

_READ = 65536
_MAX_HEADER = 1 << 20


class TransportError(Exception):
    """The connection failed: refused, reset, timed out or answered with something not HTTP."""


@dataclass(frozen=True)
class Response:
    status: int
    data: bytes


@dataclass(frozen=True)
class TLSSettings:
    verify: bool = True
    check_hostname: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_hostname: str | None = None  # the name to check the serving certificate against


class _Connection:
    __slots__ = ("buffer", "sock", "used")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""
        self.used = False

    def fill(self) -> None:
        data = self.sock.recv(_READ)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def idle_and_open(self) -> bool:
        """An idle connection with something to read was closed (or broken) by the server."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable and not self.buffer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Transport:
    def __init__(self, url: str, tls: TLSSettings, *, max_connections: int,
                 connect_timeout: float, read_timeout: float):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported API server address {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._host_header = f"Host: {parts.netloc}\r\n".encode()
        self._tls = tls if parts.scheme == "https" else None
        self._context: ssl.SSLContext | None = None  # built on first use, as urllib3 does
        self._server_hostname = tls.server_hostname or self.host
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None
                ) -> Response:
        head = [f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode(), self._host_header]
        head.extend(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        head.append(b"Content-Length: %d\r\n\r\n" % len(body) if body is not None else b"\r\n")
        message = b"".join(head) + (body or b"")
        with self._slots:
            for _attempt in range(2):
                conn = self._checkout()
                reused = conn.used
                try:
                    try:
                        conn.sock.sendall(message)
                    except (ConnectionError, ssl.SSLEOFError) as e:
                        raise _ClosedBeforeAnswerError() from e
                    conn.used = True
                    response, keep = self._read_response(conn, method)
                except _ClosedBeforeAnswerError as e:
                    conn.close()
                    if reused:
                        continue  # the server closed it while idle; it never saw the request
                    raise TransportError(str(e.__cause__ or e)) from e
                except (OSError, ValueError) as e:
                    conn.close()
                    raise TransportError(f"{type(e).__name__}: {e}") from e
                if keep:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    conn.close()
                return response
        raise TransportError("the server closed the connection twice before answering")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> _Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if conn.idle_and_open():
                return conn
            conn.close()

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                assert self._tls is not None
                try:
                    self._context = _ssl_context(self._tls)
                except (OSError, ValueError) as e:  # unreadable or mismatched certificate files
                    raise TransportError(f"cannot use the TLS credentials: {e}") from e
            return self._context

    def _connect(self) -> _Connection:
        context = self._tls_context() if self._tls is not None else None
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=self._server_hostname)
            sock.settimeout(self._read_timeout)
        except (OSError, ValueError) as e:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: "
                                 f"{type(e).__name__}: {e}") from e
        return _Connection(sock)

    def _read_response(self, conn: _Connection, method: str) -> tuple[Response, bool]:
        status, length, chunked, keep = self._read_head(conn)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif chunked:
            data = self._read_chunked(conn)
        elif length is not None:
            while len(conn.buffer) < length:
                conn.fill()
            data, conn.buffer = conn.buffer[:length], conn.buffer[length:]
        else:  # delimited by the end of the connection
            keep = False
            with contextlib.suppress(ConnectionError):
                while True:
                    conn.fill()
            data, conn.buffer = conn.buffer, b""
        return Response(status, data), keep

    @staticmethod
    def _read_head(conn: _Connection) -> tuple[int, int | None, bool, bool]:
        """Status, Content-Length, chunked, keep-alive."""
        try:
            while b"\r\n\r\n" not in conn.buffer:
                if len(conn.buffer) > _MAX_HEADER:
                    raise ValueError("response header too large")
                conn.fill()
        except (ConnectionError, ssl.SSLEOFError) as e:
            if not conn.buffer:
                raise _ClosedBeforeAnswerError() from e
            raise
        end = conn.buffer.index(b"\r\n\r\n")
        lines = conn.buffer[:end].split(b"\r\n")
        conn.buffer = conn.buffer[end + 4:]
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        length: int | None = None
        chunked = False
        keep = status_line[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep = b"close" not in value.lower()
        return int(status_line[1]), length, chunked, keep

    @staticmethod
    def _read_chunked(conn: _Connection) -> bytes:
        parts: list[bytes] = []
        while True:
            while b"\r\n" not in conn.buffer:
                conn.fill()
            end = conn.buffer.index(b"\r\n")
            size = int(conn.buffer[:end].split(b";", 1)[0], 16)
            conn.buffer = conn.buffer[end + 2:]
            if size == 0:  # trailers (the API server sends none) end with an empty line
                while not conn.buffer.startswith(b"\r\n"):
                    while b"\r\n" not in conn.buffer:
                        conn.fill()
                    if conn.buffer.startswith(b"\r\n"):
                        break
                    conn.buffer = conn.buffer[conn.buffer.index(b"\r\n") + 2:]
                conn.buffer = conn.buffer[2:]
                return b"".join(parts)
            while len(conn.buffer) < size + 2:
                conn.fill()
            parts.append(conn.buffer[:size])
            conn.buffer = conn.buffer[size + 2:]


class _ClosedBeforeAnswerError(Exception):
    """The connection ended before the first byte of an answer."""


def _ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca_file)
    if not tls.verify or not tls.check_hostname:
        context.check_hostname = False
    if not tls.verify:
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context
