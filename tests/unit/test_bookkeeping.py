"""Stage bookkeeping: a stage that completes is timed under its name, one that raises is not, and
the pass stays at the stage a failure is reported against."""

from __future__ import annotations

from typing import cast

import pytest

from acm_lite.cluster.client import Cluster
from acm_lite.reconcile.bookkeeping import Pass
from acm_lite.reconcile.model import SyncOptions, SyncSpec


def new_pass() -> Pass:
    return Pass(SyncSpec(repo="unused"), cast(Cluster, None), SyncOptions(), lambda _m: None)


def test_a_completed_stage_is_timed_and_hands_its_output_on() -> None:
    sync = new_pass()

    def add(a: int, *, b: int) -> int:
        return a + b

    out = sync.step("parse", add, 1, b=2)

    assert out == 3
    assert sync.stage == "parse"
    assert list(sync.durations) == ["parse"]
    assert sync.durations["parse"] >= 0


def test_a_stage_that_raises_is_not_timed_and_the_pass_stays_at_it() -> None:
    sync = new_pass()
    sync.step("source", lambda: None)

    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        sync.step("plan", fail)

    assert sync.stage == "plan"
    assert list(sync.durations) == ["source"]
