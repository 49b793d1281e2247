"""The worker loop survives whatever a poll raises, and readiness tells when a sync makes no
progress (pure unit tests: no cluster; the real daemon is tested in tests/integration)."""

from __future__ import annotations

import itertools
import time

import pytest

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.errors import AcmError
from acm_lite.reconcile.daemon import Daemon, DaemonOptions, Worker
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.kube import eventually


def no_cluster() -> Cluster:
    raise AcmError(errors.KUBECONFIG_ERROR, "no cluster in this test")


def daemon(tmp_path: object, **options: float) -> Daemon:
    spec = SyncSpec(repo="/nonexistent/repo", name="unit")
    return Daemon([(spec, no_cluster)], SyncOptions(), DaemonOptions(period=0.05, backoff_max=0.1, **options))


def test_an_unexpected_exception_is_survived_logged_and_backed_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    calls: list[float] = []

    def explode(self: Worker) -> None:
        calls.append(time.monotonic())
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Worker, "tick", explode)
    d = daemon(tmp_path, unready_after=0.3)
    d.start()
    worker = d.workers[0]
    try:
        eventually(lambda: len(calls) >= 4, 5)
        assert worker.thread.is_alive()
        assert worker.failures >= 3
        assert d.metrics.errors.labels("unit", "ACM2012")._value.get() >= 3
        eventually(lambda: not d.ready(), 5)  # failing for longer than the threshold
        assert worker.thread.is_alive()
    finally:
        d.stop(5)
    raised = [r for r in caplog.records if r.getMessage() == "poll raised"]
    assert raised and raised[0].exc_info is not None  # the traceback goes to the log
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(g < 0.5 for g in gaps)  # backed off, capped at backoff_max, still polling


def test_a_short_failure_streak_keeps_the_daemon_ready(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setattr(Worker, "tick", lambda self: (_ for _ in ()).throw(ValueError("x")))
    d = daemon(tmp_path, unready_after=60)
    d.start()
    try:
        eventually(lambda: d.workers[0].failures >= 2, 5)
        assert d.ready()
    finally:
        d.stop(5)
    assert not d.ready()  # stopping: no longer ready


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_worker_thread_fails_readiness(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    def die(self: Worker) -> None:
        raise SystemExit  # not an Exception: nothing catches it, the thread ends

    monkeypatch.setattr(Worker, "tick", die)
    d = daemon(tmp_path, unready_after=60)
    d.start()
    try:
        d.workers[0].thread.join(5)
        assert not d.workers[0].thread.is_alive()
        assert not d.ready()
    finally:
        d.stop(5)


def test_the_backoff_doubles_up_to_its_cap_even_after_days_of_failures(tmp_path: object) -> None:
    worker = Daemon(
        [(SyncSpec(repo="/nonexistent", name="unit"), no_cluster)],
        SyncOptions(),
        DaemonOptions(period=15.0, backoff_max=300.0),
    ).workers[0]
    delays = []
    for failures in (0, 1, 2, 3, 5, 6, 2000):
        worker.failures = failures
        delays.append(worker.delay())
    assert delays == [15, 15, 30, 60, 240, 300, 300]


def test_a_wrong_commit_backs_off_but_keeps_the_daemon_ready(tmp_path: object) -> None:
    """Blocking errors in the commit are the repository's to fix: the pod stays ready, so the push
    that fixes them still reaches its webhook; a failure of the world makes it unready."""
    worker = daemon(tmp_path, unready_after=0.01).workers[0]
    for _ in range(3):
        worker._note(ok=False, input_fault=True)
    time.sleep(0.05)
    assert worker.failures == 3 and worker.delay() > worker.options.period
    assert worker.progressing()
    worker._note(ok=False)
    time.sleep(0.05)
    assert not worker.progressing()
