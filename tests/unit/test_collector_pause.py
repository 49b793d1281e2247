"""Passes pause the cyclic collector while any of them runs, and leave it as they found it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from acm_lite.reconcile.collector import CollectorPause


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    was_on = gc.isenabled()
    yield
    if was_on:
        gc.enable()
    else:
        gc.disable()


def test_overlapping_passes_resume_collection_only_when_the_last_ends() -> None:
    gc.enable()
    pause = CollectorPause()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with pause():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with pause():
        second_in.set()
        first_out.wait(5)
        seen["after the first ended"] = gc.isenabled()
    thread.join(5)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    pause = CollectorPause()
    with pause():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_exception_still_resumes_collection() -> None:
    gc.enable()
    pause = CollectorPause()
    with pytest.raises(RuntimeError), pause():
        raise RuntimeError("boom")
    assert gc.isenabled()
