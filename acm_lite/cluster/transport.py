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
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

_READ = 65536
_MAX_HEADER = 1 << 20

Request = tuple[str, str, dict[str, str], "bytes | None"]  # method, path, headers, body


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

    def fill(self) -> bool:
        """Add what arrived to the buffer; True once the server has closed the connection."""
        try:
            data = self.sock.recv(_READ)
        except (ConnectionError, ssl.SSLEOFError):
            return True
        self.buffer += data
        return not data

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
    def __init__(
        self, url: str, tls: TLSSettings, *, max_connections: int, connect_timeout: float, read_timeout: float
    ):
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

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Response:
        message = self._message(method, path, headers, body)
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
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {type(e).__name__}: {e}") from e
        return _Connection(sock)

    def _message(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
        head = [f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode(), self._host_header]
        head.extend(f"{k}: {v}\r\n".encode() for k, v in headers.items())
        head.append(b"Content-Length: %d\r\n\r\n" % len(body) if body is not None else b"\r\n")
        return b"".join(head) + (body or b"")

    @staticmethod
    def _read_response(conn: _Connection, method: str) -> tuple[Response, bool]:
        answer = _Answer(method)
        eof = False
        while (done := answer.step(conn, eof)) is None:
            eof = conn.fill()
        return done

    def exchange(self, requests: Iterable[Request], width: int) -> Generator[Answered, None, None]:
        """Send many requests from this one thread over up to ``width`` connections at once, one
        request in flight per connection; yield (position, answer or error) as answers arrive.

        One thread watching its sockets spends about half the CPU per request that a thread per
        connection does (no thread switches, no contention for the interpreter), and on a
        machine the API server shares, that CPU is the API server's. Requests are taken from
        ``requests`` only as connections free up, so a generator can build them lazily. The
        same rules as ``request`` hold: a reused connection closed before the first byte of its
        answer sends the request once more, on another connection.
        """
        run = _Exchange(self, width)
        try:
            yield from run.drive(enumerate(requests))
        finally:
            run.close()


class _Lane:
    """A connection an exchange holds, and the request it carries (None: free)."""

    __slots__ = ("conn", "flight")

    def __init__(self, conn: _Connection):
        self.conn = conn
        self.flight: _Flight | None = None


class _Flight:
    """One request of an exchange, and where it stands."""

    __slots__ = ("answer", "attempts", "deadline", "message", "method", "position", "reused", "sent")

    def __init__(self, position: int, method: str, message: bytes):
        self.position = position
        self.method = method
        self.message = message
        self.answer = _Answer(method)
        self.attempts = 0
        self.reused = False
        self.sent = 0
        self.deadline = 0.0


# a request of an exchange once it ended: its position, and its answer or the error that ended it
Answered = tuple[int, "Response | TransportError"]


class _Exchange:
    """The state of one ``Transport.exchange``: its lanes, registered with one selector for
    their whole life, so a request costs no system calls beyond its send and its reads."""

    def __init__(self, transport: Transport, width: int):
        self.transport = transport
        self.width = max(1, width)
        self.selector = selectors.DefaultSelector()
        self.lanes: list[_Lane] = []
        self.free: list[_Lane] = []
        self.slots = 0

    def drive(self, pending: Iterator[tuple[int, Request]]) -> Iterator[Answered]:
        busy = 0
        checked = time.monotonic()
        while True:
            while self.slots < self.width and self.transport._slots.acquire(blocking=self.slots == 0):
                self.slots += 1  # the first waits; more only if other users left them free
            while busy < self.slots and (item := next(pending, None)) is not None:
                position, (method, path, headers, body) = item
                message = self.transport._message(method, path, headers, body)
                outcome = self._launch(_Flight(position, method, message))
                busy += 1
                if outcome is not None:
                    busy -= 1
                    yield outcome
            if not busy:
                return
            # timeouts are looked for a few times per read timeout, not after every answer
            check_every = min(0.5, self.transport._read_timeout / 4)
            for key, _ in self.selector.select(max(0.0, checked + check_every - time.monotonic())):
                lane: _Lane = key.data
                if lane.flight is None:
                    self._stray(lane)
                    continue
                outcome = self._advance(lane, True)
                if outcome is not None:
                    busy -= 1
                    yield outcome
            now = time.monotonic()
            if now < checked + check_every:
                continue
            checked = now
            for lane in [lane for lane in self.lanes if lane.flight and lane.flight.deadline <= now]:
                assert lane.flight is not None
                position = lane.flight.position
                self._drop(lane)
                busy -= 1
                yield position, TransportError(f"no answer within {self.transport._read_timeout:g}s")

    def _lane(self) -> _Lane:
        if self.free:
            return self.free.pop()
        lane = _Lane(self.transport._checkout())
        lane.conn.sock.setblocking(False)
        self.selector.register(lane.conn.sock, selectors.EVENT_READ, lane)
        self.lanes.append(lane)
        return lane

    def _launch(self, flight: _Flight) -> Answered | None:
        """Put ``flight`` on a lane and send what the socket takes; the outcome if it ended."""
        try:
            lane = self._lane()
        except TransportError as e:
            return flight.position, e
        lane.flight = flight
        flight.attempts += 1
        flight.reused = lane.conn.used
        flight.sent = 0
        flight.answer = _Answer(flight.method)
        flight.deadline = time.monotonic() + self.transport._read_timeout
        return self._advance(lane, False)

    def _advance(self, lane: _Lane, ready: bool) -> Answered | None:
        """Send or read what the socket allows (``ready``: the selector named it); the outcome
        once the flight is over."""
        flight, conn = lane.flight, lane.conn
        assert flight is not None
        try:
            if (flight.sent < len(flight.message) and not self._send(lane, flight)) or not ready:
                return None
            eof = False
            try:
                eof = conn.fill()
                while not eof and isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                    eof = conn.fill()  # decrypted bytes the selector cannot see
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                pass
            done = flight.answer.step(conn, eof)
        except _ClosedBeforeAnswerError as e:
            self._drop(lane)
            if flight.reused and flight.attempts < 2:  # closed while idle: never seen; anew
                return self._launch(flight)
            return flight.position, TransportError(
                str(e.__cause__ or "the server closed the connection before answering")
            )
        except (OSError, ValueError) as e:
            self._drop(lane)
            return flight.position, TransportError(f"{type(e).__name__}: {e}")
        if done is None:
            return None
        response, keep = done
        lane.flight = None
        if keep:
            self.free.append(lane)
        else:
            self._drop(lane)
        return flight.position, response

    def _send(self, lane: _Lane, flight: _Flight) -> bool:
        """Send what the socket takes; True once the whole request is out."""
        try:
            flight.sent += lane.conn.sock.send(flight.message[flight.sent :])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            pass
        except (ConnectionError, ssl.SSLEOFError) as e:
            raise _ClosedBeforeAnswerError() from e
        done = flight.sent >= len(flight.message)
        if done:
            lane.conn.used = True
        events = selectors.EVENT_READ if done else selectors.EVENT_READ | selectors.EVENT_WRITE
        if self.selector.get_key(lane.conn.sock).events != events:
            self.selector.modify(lane.conn.sock, events, lane)
        return done

    def _stray(self, lane: _Lane) -> None:
        """A free lane became readable: the server closed it (or sent what nobody asked for)."""
        self.free.remove(lane)
        self._drop(lane)

    def _drop(self, lane: _Lane) -> None:
        lane.flight = None
        self.selector.unregister(lane.conn.sock)
        self.lanes.remove(lane)
        lane.conn.close()

    def close(self) -> None:
        """Free lanes go back to the transport's stack; any still carrying a request close."""
        for lane in list(self.lanes):
            if lane.flight is None and not lane.conn.buffer:
                self.selector.unregister(lane.conn.sock)
                lane.conn.sock.settimeout(self.transport._read_timeout)
                with self.transport._lock:
                    self.transport._idle.append(lane.conn)
            else:
                self._drop(lane)
        self.selector.close()
        for _ in range(self.slots):
            self.transport._slots.release()


class _Answer:
    """One HTTP/1.x answer, parsed from a connection's buffer as its bytes arrive: ``step`` takes
    what it can and returns the answer and whether the connection stays open once it is whole."""

    __slots__ = ("chunks", "keep", "length", "method", "mode", "status")

    def __init__(self, method: str):
        self.method = method
        self.mode = "head"  # then: "length", "chunk-size", "chunk-data", "trailer", "until-close"
        self.status = 0
        self.length = 0
        self.keep = True
        self.chunks: list[bytes] = []

    def step(self, conn: _Connection, eof: bool) -> tuple[Response, bool] | None:
        """Consume what ``conn.buffer`` holds; None until the answer is whole. ``eof``: the
        server closed the connection and nothing more will come."""
        while self.mode != "done":
            if not getattr(self, "_" + self.mode.replace("-", "_"))(conn, eof):
                if not eof:
                    return None
                if self.mode == "head" and not conn.buffer:
                    raise _ClosedBeforeAnswerError()
                raise ConnectionError("the server closed the connection mid-answer")
        return Response(self.status, b"".join(self.chunks)), self.keep

    # each part below takes what it can from the buffer: False when it needs more bytes

    def _head(self, conn: _Connection, eof: bool) -> bool:
        end = conn.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.buffer) > _MAX_HEADER:
                raise ValueError("response header too large")
            return False
        self._parse_head(conn.buffer[:end])
        conn.buffer = conn.buffer[end + 4 :]
        return True

    def _length(self, conn: _Connection, eof: bool) -> bool:
        return self._take(conn, 0, "done")

    def _chunk_size(self, conn: _Connection, eof: bool) -> bool:
        end = conn.buffer.find(b"\r\n")
        if end < 0:
            return False
        line, conn.buffer = conn.buffer[:end], conn.buffer[end + 2 :]
        self.length = int(line.split(b";", 1)[0], 16)
        self.mode = "chunk-data" if self.length else "trailer"
        return True

    def _chunk_data(self, conn: _Connection, eof: bool) -> bool:
        return self._take(conn, 2, "chunk-size")  # the data, then the line break ending it

    def _take(self, conn: _Connection, after: int, then: str) -> bool:
        """``self.length`` bytes of body, and ``after`` more to skip; then mode ``then``."""
        if len(conn.buffer) < self.length + after:
            return False
        self.chunks.append(conn.buffer[: self.length])
        conn.buffer = conn.buffer[self.length + after :]
        self.mode = then
        return True

    def _trailer(self, conn: _Connection, eof: bool) -> bool:
        """Trailer lines (the API server sends none) up to the empty line that ends them."""
        end = conn.buffer.find(b"\r\n")
        if end < 0:
            return False
        if end == 0:
            self.mode = "done"
        conn.buffer = conn.buffer[end + 2 :]
        return True

    def _until_close(self, conn: _Connection, eof: bool) -> bool:
        if not eof:
            return False
        self.chunks.append(conn.buffer)
        conn.buffer = b""
        self.mode = "done"
        return True

    def _parse_head(self, head: bytes) -> None:
        first, _, _ = head.partition(b"\r\n")
        status_line = first.split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {first[:80]!r}")
        self.status = int(status_line[1])
        fields = head.lower() + b"\r\n"  # searched in C: three lookups, no loop over lines
        length = _field(fields, b"\r\ncontent-length:")
        chunked = b"chunked" in (_field(fields, b"\r\ntransfer-encoding:") or b"")
        connection = _field(fields, b"\r\nconnection:")
        self.keep = b"close" not in connection if connection is not None else (status_line[0] == b"HTTP/1.1")
        if self.method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self.mode = "done"
        elif chunked:
            self.mode = "chunk-size"
        elif length is not None:
            self.mode, self.length = "length", int(length)
        else:  # delimited by the end of the connection
            self.mode, self.keep = "until-close", False


def _field(fields: bytes, name: bytes) -> bytes | None:
    """The value of the header line ``name`` (lower case, after a line break) in ``fields``."""
    start = fields.find(name)
    if start < 0:
        return None
    start += len(name)
    return fields[start : fields.index(b"\r\n", start)]


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
