"""Passwords written in a repository URL (tests/hostile/git/urls.txt) never reach an output: the
coded error, the status a pass records, the spec it writes. Nothing listens at the URLs, so the
fetch fails fast."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from acm_lite.cluster.client import Breaker
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.source.auth import GitAuth, strip_userinfo

CORPUS = Path(__file__).resolve().parents[1] / "hostile" / "git" / "urls.txt"
URLS = [line for line in CORPUS.read_text().splitlines() if line and not line.startswith("#")]
SECRET = "SECRETPW"


@pytest.mark.parametrize("url", URLS)
def test_a_password_in_the_url_is_never_shown(url: str, tmp_path: Path) -> None:
    assert SECRET not in strip_userinfo(f"fatal: unable to access '{url}': refused")
    unreached = SimpleNamespace(breaker=Breaker())  # the pass stops at the source
    result = pipeline.run(
        SyncSpec(repo=url),
        unreached,  # type: ignore[arg-type]
        SyncOptions(plan_only=True, git_cache=tmp_path, auth=GitAuth()),
    )
    assert result.problems and not result.ok
    shown = json.dumps(
        [
            result.status.to_status(),
            [p.to_dict() for p in result.problems],
            [p.render() for p in result.problems],
            SyncSpec(repo=url).to_spec(),
        ]
    )
    assert SECRET not in shown
    assert not list(tmp_path.rglob(f"*{SECRET}*"))
