"""Fixtures the render tests share: a render cache emptied around each test, and a record of
every command the render stage runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from acm_lite import bounded, render


@pytest.fixture
def fresh_render_cache() -> Iterator[None]:
    render.clear_cache()
    yield
    render.clear_cache()


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command the render stage runs (kustomize, and helm template for a Helm source)."""
    seen: list[list[str]] = []
    real = bounded.run

    def counted(argv: Any, **kwargs: Any) -> bounded.Finished:
        seen.append(list(argv))
        return real(argv, **kwargs)

    monkeypatch.setattr(bounded, "run", counted)
    return seen
