"""A Helm chart repository for tests: charts made with ``helm package`` and indexed with
``helm repo index``, served from a directory over HTTP on loopback, basic auth optional."""

from __future__ import annotations

import base64
import functools
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  namespace: {{ .Values.namespace }}
data:
  version: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | quote }}
"""


def make_chart(where: Path, name: str, version: str, templates: dict[str, str] | None = None) -> Path:
    """A chart directory: one ConfigMap in ``.Values.namespace`` naming its version."""
    chart = where / f"{name}-{version}-src" / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version, "type": "application"})
    )
    (chart / "values.yaml").write_text("namespace: default\ngreeting: hello\n")
    for file, text in (templates or {"configmap.yaml": CONFIGMAP}).items():
        (chart / "templates" / file).write_text(text)
    return chart


def package(helm: Path, chart: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(helm), "package", str(chart), "-d", str(out)], check=True, capture_output=True, text=True
    )
    return Path(done.stdout.strip().rsplit(" ", 1)[-1])


def index(helm: Path, directory: Path) -> None:
    subprocess.run([str(helm), "repo", "index", str(directory)], check=True, capture_output=True)


class HelmRepository:
    """``directory`` served at ``url``; with ``credentials`` (user, password), basic auth."""

    def __init__(self, directory: Path, credentials: tuple[str, str] | None = None) -> None:
        self.directory = directory
        self.requests: list[str] = []
        expected = (
            "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            if credentials
            else None
        )
        seen = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                if expected and self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, *_args: Any) -> None:
                pass

        handler = functools.partial(Handler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
