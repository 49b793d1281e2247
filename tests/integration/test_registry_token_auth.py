"""The registry's Bearer token flow for real: distribution's registry with ``auth: token`` over
TLS, and a token server on loopback issuing signed JWTs for a user name and password. An OCI
artifact and an ``oci://`` chart are pulled through the flow into a real API server; wrong
credentials are ACM1103; the token appears in no message, log or status, and goes only to the
registry (the token server sees the password, never a token; a host a blob is redirected to sees
neither)."""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.source import oci
from acm_lite.source.helm import HelmSpec
from acm_lite.source.oci import OciSpec
from acm_lite.source.transfer import Credentials
from acm_lite.status import store
from tests.integration.test_artifact_sources import configmap, layer
from tests.support import helmrepo
from tests.support.kube import get
from tests.support.registry import Registry
from tests.support.tokenserver import TokenServer
from tests.unit.repo_builder import cm, ns


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    return Cluster.connect(control_plane.kubeconfig)


@pytest.fixture
def tokens(token_registry: Registry) -> TokenServer:
    assert token_registry.token_server is not None
    return token_registry.token_server


@pytest.fixture(autouse=True)
def registry_credentials(monkeypatch: pytest.MonkeyPatch, token_registry: Registry) -> None:
    """The token server's user for both source kinds, through the environment."""
    for kind in ("HELM", "OCI"):
        for var in ("PASSWORD_FILE", "TOKEN", "TOKEN_FILE"):
            monkeypatch.delenv(f"ACM_LITE_{kind}_{var}", raising=False)
        monkeypatch.setenv(f"ACM_LITE_{kind}_USERNAME", token_registry.username or "")
        monkeypatch.setenv(f"ACM_LITE_{kind}_PASSWORD", token_registry.password or "")
    monkeypatch.delenv("ACM_LITE_SOURCE_ALLOW_HTTP", raising=False)


def unique() -> str:
    return uuid.uuid4().hex[:8]


def creds(registry: Registry) -> Credentials:
    return Credentials(registry.username or "", registry.password or "")


def oci_sync(registry: Registry, image: str, name: str) -> SyncSpec:
    source = OciSpec(image=image, ca_file=registry.ca_file)
    return SyncSpec(repo=image, name=name, source_format="unstructured", source_type="oci", oci=source)


def run(cluster: Cluster, spec: SyncSpec, tmp_path: Path) -> pipeline.SyncResult:
    return pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))


def no_token_leaked(tokens: TokenServer, *texts: str) -> None:
    assert tokens.issued
    for token in tokens.issued:
        for text in texts:
            assert token not in text
            assert token.split(".")[2] not in text  # not even the signature


def test_an_oci_artifact_is_pulled_with_a_token_the_token_server_issued(
    token_registry: Registry,
    tokens: TokenServer,
    cluster: Cluster,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    space, name = f"tok-{unique()}", f"tok-{unique()}"
    image = token_registry.image(f"configs/{name}", "v1")
    digest = oci.push(
        image,
        layer({"ns.yaml": ns(space), "cm.yaml": {**cm("settings", space), "data": {"via": "token"}}}),
        credentials=creds(token_registry),
        ca_file=token_registry.ca_file,
    )
    before = len(tokens.seen)
    result = run(cluster, oci_sync(token_registry, image, name), tmp_path)
    assert result.ok, [p.render() for p in result.problems]
    assert result.status.commit == digest
    assert configmap(cluster, space, "settings") == {"via": "token"}

    asked = tokens.seen[before:]
    assert asked, "the pull went through the token server"
    assert {s.scheme for s in asked} == {"basic"}  # the password goes there, a token never does
    assert all(f"repository%3Aconfigs%2F{name}%3Apull" in s.path for s in asked)
    no_token_leaked(tokens, caplog.text, str(store.read(cluster, name)), str(result.status))


def test_an_oci_chart_is_pulled_through_the_token_flow(
    helm_binary: Path,
    token_registry: Registry,
    tokens: TokenServer,
    cluster: Cluster,
    *,
    namespace: str,
    tmp_path: Path,
) -> None:
    chart = f"chart{unique()}"
    for version in ("1.0.0", "1.1.0"):
        packaged = helmrepo.package(
            helm_binary, helmrepo.make_chart(tmp_path / "charts", chart, version), tmp_path / "packaged"
        )
        subprocess.run(
            [
                str(helm_binary), "push", str(packaged), f"oci://{token_registry.host}/charts",
                "--ca-file", str(token_registry.ca_file),
                "--username", token_registry.username or "", "--password", token_registry.password or "",
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
    source = HelmSpec(
        repo=f"oci://{token_registry.host}/charts",
        chart=chart,
        version="^1.0",  # the tag list goes through the token flow too
        values=f"namespace: {namespace}\n",
        ca_file=token_registry.ca_file,
    )
    name = f"helm-{unique()}"
    spec = SyncSpec(
        repo=source.display, name=name, source_format="unstructured", source_type="helm", helm=source
    )
    before = len(tokens.issued)
    result = run(cluster, spec, tmp_path)
    assert result.ok, [p.render() for p in result.problems]
    assert str(result.status.commit).startswith("1.1.0@sha256:")
    assert configmap(cluster, namespace, "release-name-settings") == {"version": "1.1.0", "greeting": "hello"}
    assert len(tokens.issued) > before
    no_token_leaked(tokens, str(store.read(cluster, name)), str(result.status))


def test_wrong_credentials_at_the_token_server_are_refused_and_not_shown(
    token_registry: Registry,
    tokens: TokenServer,
    cluster: Cluster,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    space, name = f"tok-{unique()}", f"tok-{unique()}"
    image = token_registry.image(f"configs/{name}", "v1")
    oci.push(
        image,
        layer({"ns.yaml": ns(space)}),
        credentials=creds(token_registry),
        ca_file=token_registry.ca_file,
    )
    monkeypatch.setenv("ACM_LITE_OCI_PASSWORD", "not-the-password-42")
    result = run(cluster, oci_sync(token_registry, image, name), tmp_path)
    assert [p.code for p in result.problems] == [errors.SOURCE_AUTH_FAILED]
    assert result.status.stage == "source" and not result.results
    message = result.problems[0].render()
    assert "token service" in message and image in message
    assert "not-the-password-42" not in message + caplog.text + str(store.read(cluster, name))
    assert get(cluster, f"/api/v1/namespaces/{space}") is None
    assert tokens.seen[-1].scheme == "basic" and tokens.seen[-1].authorization != ""


def test_a_missing_tag_behind_the_token_flow_is_not_found_without_the_token(
    token_registry: Registry, tokens: TokenServer, cluster: Cluster, tmp_path: Path
) -> None:
    name = f"tok-{unique()}"
    image = token_registry.image(f"configs/{name}", "v1")
    oci.push(
        image,
        layer({"ns.yaml": ns(f"tok-{unique()}")}),
        credentials=creds(token_registry),
        ca_file=token_registry.ca_file,
    )
    missing = token_registry.image(f"configs/{name}", "nope")
    result = run(cluster, oci_sync(token_registry, missing, name), tmp_path)
    assert [p.code for p in result.problems] == [errors.ARTIFACT_NOT_FOUND]
    assert missing in result.problems[0].message
    no_token_leaked(tokens, result.problems[0].render(), str(store.read(cluster, name)))


class _Recorder(BaseHTTPRequestHandler):
    """Base of the two servers below: every request's path and Authorization header recorded."""

    seen: list[tuple[str, str]]

    def log_message(self, *_args: Any) -> None:
        pass

    def reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _serve(handler: type[_Recorder], registry: Registry) -> tuple[ThreadingHTTPServer, str]:
    """``handler`` on a loopback port over TLS, with the registry's serving certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certs = registry.root / "certs"
    context.load_cert_chain(str(certs / "server.crt"), str(certs / "server.key"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def test_the_token_goes_to_the_registry_host_only_not_where_a_blob_is_redirected(
    token_registry: Registry, tokens: TokenServer, cluster: Cluster, tmp_path: Path
) -> None:
    """A front on another port passes the registry's answers on, but answers a blob with a
    redirect to a third host (as registries do to their storage), which serves it from the
    registry's own files: the token reaches the front, never the blob host."""
    blobs_seen: list[tuple[str, str]] = []
    front_seen: list[tuple[str, str]] = []
    storage = token_registry.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    context = ssl.create_default_context(cafile=str(token_registry.ca_file))

    class Blobs(_Recorder):
        seen = blobs_seen

        def do_GET(self) -> None:
            self.seen.append((self.path, self.headers.get("Authorization", "")))
            digest = self.path.rsplit("/", 1)[-1].removeprefix("sha256:")
            data = (storage / digest[:2] / digest / "data").read_bytes()
            self.reply(200, {"Content-Type": "application/octet-stream"}, data)

    blob_server, blob_host = _serve(Blobs, token_registry)

    class Front(_Recorder):
        seen = front_seen

        def do_GET(self) -> None:
            self.seen.append((self.path, self.headers.get("Authorization", "")))
            if "/blobs/" in self.path:
                self.reply(
                    307, {"Location": f"https://{blob_host}/storage/{self.path.rsplit('/', 1)[-1]}"}, b""
                )
                return
            forwarded = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
            request = urllib.request.Request(f"https://{token_registry.host}{self.path}", headers=forwarded)
            try:
                with urllib.request.urlopen(request, context=context, timeout=30) as answer:
                    status, headers, body = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as e:
                status, headers, body = e.code, e.headers, e.read()
            kept = ("content-type", "docker-content-digest", "www-authenticate", "link")
            self.reply(status, {k: v for k, v in headers.items() if k.lower() in kept}, body)

    front_server, front_host = _serve(Front, token_registry)
    try:
        space, name = f"tok-{unique()}", f"tok-{unique()}"
        oci.push(
            token_registry.image(f"configs/{name}", "v1"),
            layer({"ns.yaml": ns(space), "cm.yaml": {**cm("settings", space), "data": {"via": "front"}}}),
            credentials=creds(token_registry),
            ca_file=token_registry.ca_file,
        )
        image = f"{front_host}/configs/{name}:v1"
        result = run(cluster, oci_sync(token_registry, image, name), tmp_path)
        assert result.ok, [p.render() for p in result.problems]
        assert configmap(cluster, space, "settings") == {"via": "front"}

        assert blobs_seen, "the layers came from the blob host"
        assert all(authorization == "" for _, authorization in blobs_seen), blobs_seen
        bearer = [a for _, a in front_seen if a.startswith("Bearer ")]
        assert bearer and all(a.removeprefix("Bearer ") in tokens.issued for a in bearer)
        assert all(s.scheme == "basic" for s in tokens.seen)
    finally:
        for server in (front_server, blob_server):
            server.shutdown()
            server.server_close()
