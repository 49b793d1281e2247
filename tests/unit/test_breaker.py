"""A hung API server: the circuit breaker and the pass deadline of ``Cluster`` end a batch of
requests within about one read timeout, with one coded error, instead of one timeout per object."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kubernetes import client as k8s_client

from acm_lite import errors
from acm_lite.cluster.client import Call, Cluster
from acm_lite.errors import AcmError

TIMEOUTS = (0.5, 0.3)  # connect, read: seconds


class HungServer:
    """Accepts connections and reads requests, and never answers one (a stopped API server whose
    kernel still completes handshakes)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@contextmanager
def hung() -> Iterator[HungServer]:
    server = HungServer()
    try:
        yield server
    finally:
        server.close()


def cluster_for(url: str, *, lean: bool = True) -> Cluster:
    cfg = k8s_client.Configuration()
    cfg.host = url
    cluster = Cluster(cfg, timeouts=TIMEOUTS)
    if not lean:
        cluster._transport = None  # as for a cluster reached through a proxy
    return cluster


@pytest.mark.parametrize("lean", [True, False])
def test_a_batch_against_a_hung_server_stops_after_a_few_timeouts(lean: bool) -> None:
    heard: list[int] = []
    with hung() as server:
        cluster = cluster_for(server.url, lean=lean)
        calls = [Call("PATCH", f"/api/v1/namespaces/n/configmaps/c{i}", None, {"i": i}) for i in range(500)]
        started = time.monotonic()
        with pytest.raises(AcmError) as raised:
            cluster.request_many(calls, width=16, on_answer=lambda p, _e: heard.append(p))
        took = time.monotonic() - started
    assert raised.value.code is errors.API_SERVER_UNREACHABLE
    assert re.search(r"failed \d+ requests in a row", raised.value.message)
    assert took < 3, took  # one read timeout or two, not 500 / 16 of them
    assert len(heard) < 60  # the rest were never sent, so never reported one by one
    assert cluster.requests["PATCH"] < 60


def test_single_requests_fail_fast_once_open_until_reset() -> None:
    with hung() as server:
        cluster = cluster_for(server.url)
        for _ in range(3):
            with pytest.raises(AcmError) as raised:
                cluster.request("GET", "/api")
            assert raised.value.code is errors.API_SERVER_ERROR
        before = server.connections
        with pytest.raises(AcmError) as raised:
            cluster.request("GET", "/api")
        assert raised.value.code is errors.API_SERVER_UNREACHABLE
        assert server.connections == before  # refused without touching the network
        cluster.breaker.reset()
        with pytest.raises(AcmError) as raised:
            cluster.request("GET", "/api")
        assert raised.value.code is errors.API_SERVER_ERROR  # went out again, and timed out


def test_an_answer_resets_the_count_and_the_cooldown_lets_one_request_through() -> None:
    cfg = k8s_client.Configuration()
    cfg.host = "http://127.0.0.1:1"
    breaker = Cluster(cfg).breaker
    breaker.failure("one")
    breaker.failure("two")
    breaker.success()
    breaker.failure("three")
    assert not breaker.open
    breaker.failure("four")
    breaker.failure("five")
    assert breaker.open
    breaker.cooldown = 0.0
    assert not breaker.open  # half open: the next request is tried
    breaker.failure("six")
    assert breaker.opened_at is not None  # and one more failure opens it again


def test_the_deadline_refuses_requests_past_it() -> None:
    with hung() as server:
        cluster = cluster_for(server.url)
        cluster.deadline = time.monotonic() - 1
        with pytest.raises(AcmError) as raised:
            cluster.request("GET", "/api")
        assert raised.value.code is errors.PASS_DEADLINE_EXCEEDED
        with pytest.raises(AcmError) as raised:
            cluster.request_many([Call("GET", "/api")] * 5, width=2)
        assert raised.value.code is errors.PASS_DEADLINE_EXCEEDED
        assert server.connections == 0


def test_the_request_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACM_LITE_REQUEST_TIMEOUT", "0.2")
    with hung() as server:
        cfg = k8s_client.Configuration()
        cfg.host = server.url
        cluster = Cluster(cfg)
        started = time.monotonic()
        with pytest.raises(AcmError):
            cluster.request("GET", "/api")
        assert time.monotonic() - started < 1.5


def test_a_silent_watch_breaks_after_its_timeout_and_a_margin() -> None:
    with hung() as server:
        cluster = cluster_for(server.url)
        started = time.monotonic()
        with pytest.raises(AcmError) as raised:
            list(cluster.watch("/api/v1/configmaps", {"timeoutSeconds": 1}, threading.Event()))
        took = time.monotonic() - started
    assert raised.value.code is errors.API_SERVER_ERROR
    assert 1 <= took < 4, took  # timeoutSeconds plus a margin of one read timeout
