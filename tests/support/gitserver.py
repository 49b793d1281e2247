"""A real Git smart-HTTP server on loopback for tests: git's own ``http-backend`` behind a small
CGI bridge, with optional HTTP basic authentication."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


def _backend() -> str:
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(Path(exec_path) / "git-http-backend")


class _Handler(BaseHTTPRequestHandler):
    server: _GitHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _authorized(self) -> bool:
        expected = self.server.credentials
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        wanted = "Basic " + base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        return header == wanted

    def _handle(self) -> None:
        self.server.requests.append((self.command, self.path, self.headers.get("Authorization")))
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_USER": "tester",
            "REMOTE_ADDR": "127.0.0.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        for key, value in self.headers.items():
            env["HTTP_" + key.upper().replace("-", "_")] = value
        out = subprocess.run([_backend()], input=body, env=env, capture_output=True, check=False).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle  # noqa: N815 - the name http.server dispatches to
    do_POST = _handle  # noqa: N815


class _GitHTTPServer(ThreadingHTTPServer):
    root: Path
    credentials: tuple[str, str] | None
    requests: list[tuple[str, str, str | None]]


@contextmanager
def serve(
    root: Path, credentials: tuple[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[_GitHTTPServer]:
    """Serve the bare repositories under ``root`` at ``http://HOST:PORT/<name>.git``."""
    server = _GitHTTPServer((host, 0), _Handler)
    server.root = root
    server.credentials = credentials
    server.requests = []
    with _running(server):
        yield server


@contextmanager
def _running(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve on a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def url(server: _GitHTTPServer | _RedirectServer, name: str) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/{name}"


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _RedirectServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        authorization = self.headers.get("Authorization")
        self.server.requests.append((self.command, self.path, authorization))
        if self.server.challenge and not authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
        else:
            self.send_response(302)
            self.send_header("Location", self.server.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _handle  # noqa: N815
    do_POST = _handle  # noqa: N815


class _RedirectServer(ThreadingHTTPServer):
    target: str
    challenge: bool
    requests: list[tuple[str, str, str | None]]


@contextmanager
def redirect(target: str, *, challenge: bool = False) -> Iterator[_RedirectServer]:
    """A server that redirects every request to ``target`` (a base URL) on 127.0.0.1; with
    ``challenge``, it first asks for credentials (any will do) and redirects once it has some."""
    server = _RedirectServer(("127.0.0.1", 0), _RedirectHandler)
    server.target = target.rstrip("/")
    server.challenge = challenge
    server.requests = []
    with _running(server):
        yield server
