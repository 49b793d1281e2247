"""The Git push webhook: GitHub (X-Hub-Signature-256, an HMAC of the body) and GitLab
(X-Gitlab-Token) push events, checked in constant time, trigger a poll of every sync."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

from acm_lite.reconcile.httpserver import Answer, Request

_GITHUB_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
_GITLAB_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII, no spaces


def verified_push(headers: Mapping[str, str], body: bytes, secret: bytes) -> bool | None:
    """True for a push event with a valid signature (GitHub's X-Hub-Signature-256 HMAC or
    GitLab's X-Gitlab-Token), False for a bad one, None for an event that is not a push.
    Signatures are compared as bytes in constant time, whatever characters they hold."""
    lower = {k.lower(): v for k, v in headers.items()}
    github = lower.get("x-github-event")
    gitlab = lower.get("x-gitlab-event")
    if github is not None:
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        given = lower.get("x-hub-signature-256", "").encode("utf-8", "surrogateescape")
        valid = hmac.compare_digest(expected, given)
        return valid if (github == "push" or not valid) else None
    if gitlab is not None:
        token = lower.get("x-gitlab-token", "").encode("utf-8", "surrogateescape")
        valid = hmac.compare_digest(secret, token)
        return valid if (gitlab in ("Push Hook", "Tag Push Hook") or not valid) else None
    return False


def malformed(headers: Mapping[str, str]) -> str | None:
    """Why the signature headers cannot be right (non-ASCII, wrong shape), or None."""
    signature = headers.get("x-hub-signature-256")
    if signature is not None and not _GITHUB_SIGNATURE.fullmatch(signature):
        return "X-Hub-Signature-256 is not sha256= and 64 hexadecimal digits"
    token = headers.get("x-gitlab-token")
    if token is not None and not _GITLAB_TOKEN.fullmatch(token):
        return "X-Gitlab-Token is not printable ASCII"
    return None


def handle(request: Request, secret: bytes, on_push: Callable[[], None]) -> Answer:
    """Answer one POST /webhook: 400 malformed, 401 bad signature, 202 accepted or ignored. The
    body is never parsed: a verified push (JSON, or GitHub's form encoding) only triggers a poll."""
    reason = malformed(request.headers)
    if reason is not None:
        return Answer(400, f"{reason}\n".encode())
    verdict = verified_push(request.headers, request.body, secret)
    if verdict is False:
        return Answer(401, b"bad signature\n")
    if verdict is None:
        return Answer(202, b"ignored: not a push\n")
    on_push()
    return Answer(202, b"sync triggered\n")
