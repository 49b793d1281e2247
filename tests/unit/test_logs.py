"""Log lines go to the stderr of the moment they are written: a stderr replaced and closed after
the logs were configured (a capture, a redirect) is no logging error."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from acm_lite import logs


def test_a_closed_earlier_stderr_is_not_written_to(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure("json")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    raised: list[BaseException] = []
    monkeypatch.setattr(logging, "raiseExceptions", True)
    handler = logging.getLogger("acm_lite").handlers[0]
    monkeypatch.setattr(handler, "handleError", lambda record: raised.append(sys.exc_info()[1]))  # type: ignore[arg-type]
    logging.getLogger("acm_lite.test").info("after", extra={"fields": {"k": "v"}})
    assert raised == []
    line = json.loads(second.getvalue())
    assert (line["message"], line["k"], line["level"]) == ("after", "v", "info")
