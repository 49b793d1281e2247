"""The dashboard's pages and its token check, without a cluster: escaping, authentication, routes."""

from __future__ import annotations

import json
from typing import Any

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.objects import ObjectId
from acm_lite.reconcile.dashboard import COOKIE, Auth, Dashboard, SyncView
from acm_lite.reconcile.httpserver import Request
from acm_lite.status.resources import Blame, Drift, Entry

TOKEN = "s3cret-token-0123456789"
HOSTILE = '<img src=x onerror="window.pwned=1">'


def hostile_view() -> SyncView:
    entry = Entry(
        ObjectId("", "ConfigMap", "team-a", "cfg"),
        "Failed",
        reason=HOSTILE,
        message=f"</td><script>window.pwned=1</script>{HOSTILE}",
        commit="abc123",
        drift=Drift("2026-01-01T00:00:00Z", (Blame(HOSTILE, "Update"),), user=HOSTILE, fields=(HOSTILE,)),
    )
    outcome = {
        "state": "ERROR",
        "commit": "c" * 40,
        "syncedCommit": "d" * 40,
        "reachable": True,
        "errors": [
            {"code": "KNV1021", "name": "UnknownKind", "message": HOSTILE, "object": {"name": HOSTILE}}
        ],
    }
    return SyncView("prod-1", "root-sync", "RootSync root-sync", HOSTILE, "https://git/x", outcome, [entry])


def get(dashboard: Dashboard, path: str, headers: dict[str, str] | None = None) -> Any:
    return dashboard.answer(Request("GET", path, headers or {}, b""))


def bearer() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


def board() -> Dashboard:
    return Dashboard(lambda _objects: [hostile_view()], Auth(TOKEN.encode()))


def test_every_page_escapes_what_it_shows() -> None:
    dashboard = board()
    for path in ("/ui/", "/ui/cluster/prod-1", "/ui/object/prod-1/root-sync/_/ConfigMap/team-a/cfg"):
        answer = get(dashboard, path, bearer())
        assert answer.status == 200, path
        text = answer.body.decode()
        assert "<img" not in text and "<script>window" not in text, path
        assert "onerror=&quot;" in text or path == "/ui/", path
    cluster = get(dashboard, "/ui/cluster/prod-1", bearer()).body.decode()
    assert "&lt;img src=x" in cluster and "KNV1021 UnknownKind" in cluster
    assert f"acm-lite preview --base {'d' * 40} --head {'c' * 40}" in cluster


def test_pages_carry_a_strict_policy() -> None:
    answer = get(board(), "/ui/", bearer())
    headers = dict(answer.headers)
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b"Content-Security-Policy" in answer.encode()


def test_no_token_or_a_wrong_one_is_refused_and_names_nothing() -> None:
    dashboard = board()
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}):
        for path in ("/ui/", "/ui/api/fleet", "/ui/cluster/prod-1"):
            answer = get(dashboard, path, headers)
            assert answer.status == 401
            assert b"prod-1" not in answer.body and b"root-sync" not in answer.body
    assert get(dashboard, "/ui/", {"cookie": f"other=1; {COOKIE}={TOKEN}"}).status == 200


def test_login_sets_an_http_only_cookie_for_a_good_token_only() -> None:
    dashboard = board()
    bad = dashboard.answer(Request("POST", "/ui/login", {}, b"token=nope"))
    assert bad.status == 401 and not any(k == "Set-Cookie" for k, _ in bad.headers)
    good = dashboard.answer(Request("POST", "/ui/login", {}, f"token={TOKEN}".encode()))
    assert good.status == 303
    cookie = dict(good.headers)["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_the_live_endpoint_and_assets() -> None:
    dashboard = board()
    data = json.loads(get(dashboard, "/ui/api/fleet", bearer()).body)
    (sync,) = data["syncs"]
    assert sync["key"] == "prod-1/root-sync" and sync["state"] == "ERROR" and sync["health"] == "1 Failed"
    assert sync["errors"][0].startswith("KNV1021 UnknownKind: <img")  # JSON: the script sets textContent
    assert get(dashboard, "/ui/static/dashboard.js").status == 200
    for path in ("/ui/static/../../errors.py", "/ui/static/remediation.yaml", "/ui/nope", "/ui/cluster/none"):
        assert get(dashboard, path, bearer()).status == 404, path
    assert dashboard.answer(Request("DELETE", "/ui/", bearer(), b"")).status == 405
    many = dashboard.answer(Request("POST", "/ui/login", {}, b"a=1&b=2&c=3&d=4&e=5&token=x"))
    assert many.status == 400


def test_the_overview_asks_for_counts_only() -> None:
    asked: list[bool] = []
    view = SyncView("c", "s", "RootSync s", counts={"Current": 2, "Failed": 1})

    def views(objects: bool) -> list[SyncView]:
        asked.append(objects)
        return [view]

    dashboard = Dashboard(views, Auth(TOKEN.encode()))
    assert b"1 Failed" in get(dashboard, "/ui/api/fleet", bearer()).body
    assert b"2 Current, 1 Failed" in get(dashboard, "/ui/", bearer()).body
    get(dashboard, "/ui/cluster/c", bearer())
    assert asked == [False, False, True]


def test_an_unreachable_sync_says_so() -> None:
    view = SyncView("edge", "root-sync", "RootSync root-sync", outcome={"state": "ERROR", "reachable": False})
    assert view.live()["state"] == "UNREACHABLE" and view.live()["reachable"] == "no"
    assert SyncView("x", "y", "z").live()["state"] == "PENDING"


class Reviewer:
    """A stand-in for the management cluster's TokenReview API."""

    def __init__(self, accepted: str, fail: bool = False):
        self.accepted, self.fail, self.calls = accepted, fail, 0

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        self.calls += 1
        assert method == "POST" and path == "/apis/authentication.k8s.io/v1/tokenreviews"
        if self.fail:
            raise AcmError(errors.API_SERVER_ERROR, "connection refused")
        return {"status": {"authenticated": body["spec"]["token"] == self.accepted}}


def test_token_review_is_asked_once_per_token_and_fails_closed() -> None:
    now = [0.0]
    reviewer = Reviewer("kube-token")
    auth = Auth(review=reviewer, ttl=30.0, max_cached=2, clock=lambda: now[0])  # type: ignore[arg-type]
    assert auth.allows("kube-token") and auth.allows("kube-token")
    assert not auth.allows("other")
    assert reviewer.calls == 2
    now[0] = 31.0
    assert auth.allows("kube-token") and reviewer.calls == 3
    for i in range(10):
        auth.allows(f"t{i}")
    assert len(auth._cache) == 2
    assert not auth.allows("x" * 9000) and not auth.allows("") and not auth.allows(None)
    down = Auth(review=Reviewer("kube-token", fail=True))  # type: ignore[arg-type]
    assert not down.allows("kube-token")
