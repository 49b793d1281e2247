"""--timeout's durations and what sync passes on from --wait (no cluster involved)."""

from __future__ import annotations

import argparse

import pytest

from acm_lite.cli.clusterargs import MAX_TIMEOUT, duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1m30s", 90), ("0.5s", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "0s", "-5", "soon", "5x", "m", "1e9", "inf", "nan", "1d", f"{MAX_TIMEOUT + 1:g}"]
)
def test_not_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        duration(text)
