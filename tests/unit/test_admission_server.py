"""The admission webhook's TLS server on loopback against hostile clients, and its certificate:
generated into a Secret, rotated before expiry with both CAs trusted meanwhile, or taken from a
user's Secret. The API server is an in-memory fake here (the integration test uses a real one)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from acm_lite import api, errors
from acm_lite.cluster.client import ApiError
from acm_lite.devcluster import certs
from acm_lite.errors import AcmError
from acm_lite.reconcile import admission
from acm_lite.reconcile.admission import AdmissionOptions, AdmissionWebhook, Material
from acm_lite.reconcile.tlsserver import TLSLimits

USER = "system:serviceaccount:acm-lite-system:acm-lite"


class FakeApiServer:
    """Secrets and the ValidatingWebhookConfiguration in memory; PUT honours resourceVersion."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.applies = 0
        self.version = 0

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        if path.endswith("/selfsubjectreviews"):
            return {"status": {"userInfo": {"username": USER}}}
        if method == "GET":
            if path not in self.objects:
                raise ApiError(404, "NotFound", "not found")
            return json.loads(json.dumps(self.objects[path]))
        self.version += 1
        if method == "POST":
            path = f"{path}/{body['metadata']['name']}"
            if path in self.objects:
                raise ApiError(409, "AlreadyExists", "exists")
        if (
            method == "PUT"
            and self.objects[path]["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]
        ):
            raise ApiError(409, "Conflict", "changed")
        if method == "PATCH":
            self.applies += 1
        stored = json.loads(json.dumps(body))
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = stored
        return stored

    def request_many(self, *_: Any, **__: Any) -> list[Any]:
        raise NotImplementedError

    def secret(self, name: str = admission.GENERATED_SECRET) -> dict[str, Any]:
        return self.objects[f"/api/v1/namespaces/{api.system_namespace()}/secrets/{name}"]

    def ca_bundle(self) -> bytes:
        vwc = self.objects[
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{api.ADMISSION_WEBHOOK}"
        ]
        return base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"])


@pytest.fixture
def fake() -> FakeApiServer:
    return FakeApiServer()


@pytest.fixture
def hook(fake: FakeApiServer) -> Iterator[AdmissionWebhook]:
    webhook = AdmissionWebhook(fake, AdmissionOptions(address=("127.0.0.1", 0), lifetime=6.0, check=3600))  # type: ignore[arg-type]
    webhook.start()
    yield webhook
    webhook.stop()


def _client_context(bundle: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=bundle.decode())
    return context


def post(hook: AdmissionWebhook, body: bytes, bundle: bytes, path: str = admission.PATH) -> tuple[int, bytes]:
    assert hook.server is not None
    conn = http.client.HTTPSConnection(
        "127.0.0.1", hook.server.server_address[1], context=_client_context(bundle), timeout=10
    )
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def review() -> bytes:
    managed = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "a",
            "labels": {"app.kubernetes.io/managed-by": "acm-lite", "acm-lite.io/sync": "s"},
        },
    }
    req = {"uid": "1", "operation": "DELETE", "userInfo": {"username": "alice"}, "oldObject": managed}
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
    ).encode()


def test_generated_certificate_is_served_verified_and_stored(
    hook: AdmissionWebhook, fake: FakeApiServer
) -> None:
    bundle = fake.ca_bundle()
    status, body = post(hook, review(), bundle)
    assert status == 200
    assert json.loads(body)["response"]["allowed"] is False
    secret = fake.secret()
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert base64.b64decode(secret["data"]["ca.crt"]) == bundle
    # a client trusting another CA is refused by TLS: the bundle is what makes calls succeed
    other, _ = certs.serving_pair("other", ["127.0.0.1"], dt.timedelta(days=1))
    with pytest.raises(ssl.SSLError):
        post(hook, review(), other.cert)


def test_rotated_before_expiry_both_cas_trusted_meanwhile(
    hook: AdmissionWebhook, fake: FakeApiServer
) -> None:
    first = fake.ca_bundle()
    hook.refresh()  # not due yet: nothing changes
    assert fake.ca_bundle() == first and fake.applies == 1
    time.sleep(4.1)  # two thirds of the 6-second lifetime (and the tenth it is backdated by)
    hook.refresh()
    second = fake.ca_bundle()
    assert second != first and second.endswith(first)  # the new CA, then the old one
    assert fake.applies == 2
    status, _ = post(hook, review(), second)
    assert status == 200
    assert hook.material is not None and hook.material.cert == base64.b64decode(
        fake.secret()["data"]["tls.crt"]
    )
    # a second replica starting now shares the stored certificate instead of making its own
    replica = AdmissionWebhook(fake, AdmissionOptions(address=("127.0.0.1", 0), lifetime=6.0, check=3600))  # type: ignore[arg-type]
    replica.start()
    try:
        assert replica.material == hook.material
    finally:
        replica.stop()


def test_due_when_two_thirds_gone_or_a_host_is_missing() -> None:
    _, serving = certs.serving_pair("x", ["127.0.0.1", "localhost"], dt.timedelta(hours=3))
    now = dt.datetime.now(dt.UTC)
    assert not admission.due(serving.cert, ["127.0.0.1"], now)
    assert admission.due(serving.cert, ["127.0.0.1"], now + dt.timedelta(hours=2, minutes=1))
    assert admission.due(serving.cert, ["acm-lite.acm-lite-system.svc"], now)


def _user_secret(fake: FakeApiServer, data: dict[str, bytes]) -> None:
    path = f"/api/v1/namespaces/{api.system_namespace()}/secrets/mine"
    fake.objects[path] = {
        "metadata": {"name": "mine", "resourceVersion": "1"},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def test_a_users_secret_is_served_and_reloaded_when_it_changes(fake: FakeApiServer) -> None:
    ca, serving = certs.serving_pair("mine", ["127.0.0.1"], dt.timedelta(days=1))
    _user_secret(fake, {"tls.crt": serving.cert, "tls.key": serving.key, "ca.crt": ca.cert})
    webhook = AdmissionWebhook(fake, AdmissionOptions(address=("127.0.0.1", 0), secret="mine", check=3600))  # type: ignore[arg-type]
    webhook.start()
    try:
        assert fake.ca_bundle() == ca.cert
        assert post(webhook, review(), ca.cert)[0] == 200
        ca2, serving2 = certs.serving_pair("mine2", ["127.0.0.1"], dt.timedelta(days=1))
        _user_secret(fake, {"tls.crt": serving2.cert, "tls.key": serving2.key, "ca.crt": ca2.cert})
        webhook.refresh()
        assert fake.ca_bundle() == ca2.cert
        assert post(webhook, review(), ca2.cert)[0] == 200
        assert admission.GENERATED_SECRET not in json.dumps(list(fake.objects))
    finally:
        webhook.stop()


@pytest.mark.parametrize(
    "data, reason",
    [
        ({}, "tls.crt or tls.key is missing"),
        ({"tls.crt": b"nope", "tls.key": b"nope"}, "not a PEM certificate"),
        ("mismatched", "not a certificate and its key"),
    ],
)
def test_an_unusable_users_secret_is_a_coded_error_without_its_content(
    fake: FakeApiServer, data: Any, reason: str
) -> None:
    if data == "mismatched":
        _, one = certs.serving_pair("a", ["127.0.0.1"], dt.timedelta(days=1))
        _, two = certs.serving_pair("b", ["127.0.0.1"], dt.timedelta(days=1))
        data = {"tls.crt": one.cert, "tls.key": two.key}
    _user_secret(fake, data)
    webhook = AdmissionWebhook(fake, AdmissionOptions(address=("127.0.0.1", 0), secret="mine"))  # type: ignore[arg-type]
    with pytest.raises(AcmError) as failed:
        webhook.start()
    assert failed.value.code is errors.ADMISSION_WEBHOOK_FAILED
    assert reason in str(failed.value) and "mine" in str(failed.value)
    assert "PRIVATE KEY" not in str(failed.value)
    assert webhook.server is None or webhook.server._stop.is_set()


def test_a_missing_users_secret_is_a_coded_error(fake: FakeApiServer) -> None:
    webhook = AdmissionWebhook(fake, AdmissionOptions(address=("127.0.0.1", 0), secret="absent"))  # type: ignore[arg-type]
    with pytest.raises(AcmError) as failed:
        webhook.start()
    assert failed.value.code is errors.ADMISSION_WEBHOOK_FAILED and "absent" in str(failed.value)


# Hostile clients


def _tls(hook: AdmissionWebhook, bundle: bytes) -> ssl.SSLSocket:
    assert hook.server is not None
    raw = socket.create_connection(("127.0.0.1", hook.server.server_address[1]), timeout=10)
    return _client_context(bundle).wrap_socket(raw, server_hostname="127.0.0.1")


def _exchange(hook: AdmissionWebhook, bundle: bytes, data: bytes) -> bytes:
    with _tls(hook, bundle) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"POST /admission HTTP/1.1\r\nContent-Length: 5\r\n\r\n{not}", b"400"),
        (b"POST /admission HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", b"413"),
        (b"POST /admission HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"411"),
        (b"POST /elsewhere HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"404"),
        (b"GET /admission HTTP/1.1\r\n\r\n", b"405"),
        (b"POST /admission HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
    ],
)
def test_hostile_requests_get_4xx(
    hook: AdmissionWebhook, fake: FakeApiServer, data: bytes, status: bytes
) -> None:
    answer = _exchange(hook, fake.ca_bundle(), data)
    assert answer.split(b" ")[1] == status, answer[:200]


def test_slow_plain_and_crowding_clients_do_not_stop_it(fake: FakeApiServer) -> None:
    limits = TLSLimits(timeout=1.0, max_connections=4, workers=2)
    webhook = AdmissionWebhook(fake, AdmissionOptions(address=("127.0.0.1", 0), limits=limits))  # type: ignore[arg-type]
    webhook.start()
    assert webhook.server is not None
    try:
        port = webhook.server.server_address[1]
        bundle = fake.ca_bundle()
        # plain HTTP on the TLS port, and bytes that are no handshake at all
        for junk in (b"POST /admission HTTP/1.1\r\n\r\n", b"\x00" * 1000):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
                plain.sendall(junk)
                with contextlib.suppress(OSError):  # closed or reset: either way, not served
                    plain.recv(100)
        # a handshake dripped byte by byte is cut off after the timeout
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as drip:
            with contextlib.suppress(OSError):
                for byte in b"\x16\x03\x01\x02\x00\x01" + b"\x00" * 20:  # a 512-byte record, slowly
                    drip.sendall(bytes([byte]))
                    time.sleep(0.3)
            with contextlib.suppress(OSError):
                assert drip.recv(100) == b""
        assert time.monotonic() - started < 5
        # a client that sends half a body and stalls is cut off after the timeout
        started = time.monotonic()
        with _tls(webhook, bundle) as slow:
            slow.sendall(b"POST /admission HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            assert slow.recv(100) == b""
        assert time.monotonic() - started < 5
        # many idle connections at once: beyond the limit they are closed, and it serves on
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(10)]
        time.sleep(1.5)
        for s in idle:
            s.close()
        assert post(webhook, review(), bundle)[0] == 200
        # a body just under the limit is read and answered (refused as malformed, not dropped)
        big = b'{"kind": "AdmissionReview", "pad": "' + b"x" * (7 * 2**20) + b'"}'
        assert post(webhook, big, bundle)[0] == 400
    finally:
        webhook.stop()


def test_the_key_goes_through_a_private_directory_removed_at_once() -> None:
    ca, serving = certs.serving_pair("x", ["127.0.0.1"], dt.timedelta(days=1))
    before = set(os.listdir(tempfile.gettempdir()))
    context = admission.context_for(Material(serving.cert, serving.key, ca.cert))
    assert isinstance(context, ssl.SSLContext)
    left = set(os.listdir(tempfile.gettempdir())) - before
    assert not [n for n in left if n.startswith("acm-lite-admission-")]


def test_requests_share_a_kept_open_connection_until_it_idles(
    hook: AdmissionWebhook, fake: FakeApiServer
) -> None:
    assert hook.server is not None
    conn = http.client.HTTPSConnection(
        "127.0.0.1", hook.server.server_address[1], context=_client_context(fake.ca_bundle()), timeout=10
    )
    conn.request("POST", admission.PATH, body=review())
    first = conn.getresponse()
    assert first.status == 200 and first.getheader("Connection") == "keep-alive"
    first.read()
    sock = conn.sock
    conn.request("POST", admission.PATH, body=review())
    second = conn.getresponse()
    assert second.status == 200 and json.loads(second.read())["response"]["uid"] == "1"
    assert conn.sock is sock  # the same connection
    conn.request("POST", admission.PATH, body=review(), headers={"Connection": "close"})
    third = conn.getresponse()
    assert third.getheader("Connection") == "close"
    third.read()
    # an idle connection is closed by the server after Limits.idle
    again = _tls(hook, fake.ca_bundle())
    again.sendall(b"POST /admission HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    started = time.monotonic()
    answered = b""
    while chunk := again.recv(65536):
        answered += chunk
    assert answered.startswith(b"HTTP/1.1 400") and 1.5 < time.monotonic() - started < 5
    again.close()
