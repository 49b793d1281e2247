from __future__ import annotations

import hashlib
import hmac

import pytest

from acm_lite.reconcile.webhook import verified_push

SECRET = b"s3cret"
BODY = b'{"ref": "refs/heads/main"}'
SIGNED = "sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-GitHub-Event": "push", "X-Hub-Signature-256": SIGNED}, True),
        ({"x-github-event": "push", "x-hub-signature-256": SIGNED}, True),
        ({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}, False),
        ({"X-GitHub-Event": "push"}, False),
        ({"X-GitHub-Event": "issues", "X-Hub-Signature-256": SIGNED}, None),
        ({"X-GitHub-Event": "issues", "X-Hub-Signature-256": "sha256=bad"}, False),
        ({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "s3cret"}, True),
        ({"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": "s3cret"}, True),
        ({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}, False),
        ({"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": "s3cret"}, None),
        ({}, False),
    ],
)
def test_push_events_and_signatures(headers: dict[str, str], expected: bool | None) -> None:
    assert verified_push(headers, BODY, SECRET) is expected
