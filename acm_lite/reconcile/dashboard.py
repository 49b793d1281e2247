"""The fleet dashboard (``serve --ui``): read-only pages under /ui/ on the daemon's endpoint server.

What it shows is what the daemon already holds: each sync's last outcome (state, commits, errors
with their codes, whether its API server answered) and each managed object's health, drift and
applying commit (``status.resources.Entry``). Nothing is read from a cluster to draw a page.

Every request for data needs a bearer token: the ``Authorization: Bearer`` header, or the HttpOnly
cookie ``/ui/login`` sets after checking the token. A token is accepted when it equals the token
file's (compared in constant time), or when the management cluster's TokenReview says it
authenticates someone (answers kept for ``Auth.ttl`` seconds, at most ``Auth.max_cached`` of
them). Anything else gets 401 and a page naming no cluster. Every value drawn into a page goes
through ``html.escape``; the script only sets ``textContent``; assets ship in the package and the
Content-Security-Policy allows nothing from elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from typing import Any

from acm_lite import errors
from acm_lite.cluster.client import ApiError, Client
from acm_lite.errors import AcmError
from acm_lite.reconcile.httpserver import Answer, Request
from acm_lite.status import resources
from acm_lite.status.resources import Entry

log = logging.getLogger("acm_lite.dashboard")

PREFIX = "/ui"
COOKIE = "acm_lite_ui"
MAX_TOKEN = 8192  # bytes; a Kubernetes bearer token is far smaller
MAX_OBJECTS_SHOWN = 2000  # rows of one cluster page
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
_ASSETS = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class SyncView:
    """One sync as the dashboard shows it."""

    cluster: str  # the fleet cluster's name; "local" for the daemon's own cluster
    sync: str
    describe: str
    provider: str = ""
    source: str = ""
    outcome: Mapping[str, Any] = field(default_factory=dict)
    entries: Sequence[Entry] = ()  # left empty where only ``counts`` are needed
    counts: Mapping[str, int] | None = None  # objects per health status; None: from ``entries``

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.sync}"

    @property
    def state(self) -> str:
        if self.outcome.get("reachable") is False:
            return "UNREACHABLE"
        return str(self.outcome.get("state") or "PENDING")

    def health_text(self) -> str:
        counts = self.counts if self.counts is not None else resources.counts(self.entries)
        return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n) or "no objects"

    def errors(self) -> list[Mapping[str, Any]]:
        found = self.outcome.get("errors")
        return [e for e in found if isinstance(e, Mapping)] if isinstance(found, list) else []

    def live(self) -> dict[str, Any]:
        """What the page script updates, as text."""
        return {
            "key": self.key,
            "state": self.state,
            "reachable": _reachable_text(self.outcome.get("reachable")),
            "commit": _short(self.outcome.get("commit")),
            "synced": _short(self.outcome.get("syncedCommit")),
            "health": self.health_text(),
            "errorCount": str(len(self.errors())),
            "errors": [_error_text(e) for e in self.errors()],
        }


# -- authentication --------------------------------------------------------------------------------


class Auth:
    """Decides whether a bearer token may read the dashboard; fails closed."""

    def __init__(
        self,
        token: bytes | None = None,
        review: Client | None = None,
        *,
        ttl: float = 30.0,
        max_cached: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.token, self.review = token, review
        self.ttl, self.max_cached, self.clock = ttl, max_cached, clock
        self._cache: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def allows(self, token: str | None) -> bool:
        if not token:
            return False
        raw = token.encode("latin-1", "replace")
        if len(raw) > MAX_TOKEN:
            return False
        if self.token is not None and hmac.compare_digest(raw, self.token):
            return True
        if self.review is None:
            return False
        digest = hashlib.sha256(raw).digest()
        now = self.clock()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None and cached[0] > now:
                return cached[1]
        allowed = self._review(token)
        with self._lock:
            self._cache[digest] = (now + self.ttl, allowed)
            self._cache.move_to_end(digest)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return allowed

    def _review(self, token: str) -> bool:
        assert self.review is not None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            answer = self.review.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=body)
        except (ApiError, AcmError) as e:
            problem = AcmError(
                errors.DASHBOARD_AUTH_FAILED,
                f"the management cluster's TokenReview could not be made: {_cut(str(e), 300)}",
            )
            log.warning("dashboard token not reviewed", extra={"fields": {"error": problem.render()}})
            return False
        status = answer.get("status") if isinstance(answer, dict) else None
        return isinstance(status, dict) and status.get("authenticated") is True


def request_token(request: Request) -> str | None:
    """The bearer token of a request: its Authorization header, else the dashboard's cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for part in request.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return urllib.parse.unquote(value)
    return None


# -- routing ---------------------------------------------------------------------------------------


class Dashboard:
    """Answers requests under /ui/."""

    def __init__(self, views: Callable[[bool], list[SyncView]], auth: Auth, *, poll_seconds: float = 3.0):
        """``views(objects)``: every sync, with each object's entry when ``objects`` (else only
        the counts, which the overview and the live updates need)."""
        self.views, self.auth, self.poll_seconds = views, auth, poll_seconds

    def handles(self, path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def answer(self, request: Request) -> Answer:
        path = request.path[len(PREFIX) :] or "/"
        if request.method == "GET" and path.startswith("/static/"):
            return _asset(path[len("/static/") :])
        if path == "/login":
            return self._login(request)
        if request.method != "GET":
            return _page_answer(405, "Not allowed", "<p>The dashboard is read-only.</p>")
        if not self.auth.allows(request_token(request)):
            return _unauthorized()
        views = self.views(path.startswith(("/cluster/", "/object/")))
        if path == "/":
            return _page_answer(200, "Fleet", overview(views), poll=self.poll_seconds)
        if path == "/api/fleet":
            body = json.dumps({"updated": time.time(), "syncs": [v.live() for v in views]}).encode()
            return Answer(200, body, "application/json", SECURITY_HEADERS)
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "cluster" and len(parts) == 2:
            shown = [v for v in views if v.cluster == parts[1]]
            if shown:
                return _page_answer(200, parts[1], cluster_page(parts[1], shown), poll=self.poll_seconds)
        if parts[0] == "object" and len(parts) == 7:
            found = find_entry(views, parts[1:])
            if found is not None:
                return _page_answer(200, found[1].id.name, object_page(*found))
        return _page_answer(404, "Not found", "<p>No such page.</p>")

    def _login(self, request: Request) -> Answer:
        if request.method == "GET":
            return _page_answer(200, "Sign in", login_form())
        if request.method != "POST":
            return _page_answer(405, "Not allowed", "<p>GET or POST only.</p>")
        try:
            fields = urllib.parse.parse_qs(request.body[:MAX_TOKEN].decode("latin-1"), max_num_fields=4)
        except ValueError:  # too many fields
            return _page_answer(400, "Sign in", login_form(refused=True))
        token = (fields.get("token") or [""])[0].strip()
        if not self.auth.allows(token):
            return _page_answer(401, "Sign in", login_form(refused=True))
        cookie = f"{COOKIE}={urllib.parse.quote(token, safe='')}; Path={PREFIX}; HttpOnly; SameSite=Strict"
        return Answer(
            303, b"", headers=(*SECURITY_HEADERS, ("Location", f"{PREFIX}/"), ("Set-Cookie", cookie))
        )


def find_entry(views: Sequence[SyncView], where: Sequence[str]) -> tuple[SyncView, Entry] | None:
    """The entry an object page's path names: cluster, sync, group, kind, namespace, name ("_" for
    no group or namespace)."""
    cluster, sync, *rest = where
    for view in views:
        if view.cluster != cluster or view.sync != sync:
            continue
        for entry in view.entries:
            oid = entry.id
            if [oid.group or "_", oid.kind, oid.namespace or "_", oid.name] == rest:
                return view, entry
    return None


# -- pages -----------------------------------------------------------------------------------------


def e(value: object) -> str:
    """Any value, as text safe inside an element or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def cluster_href(cluster: str) -> str:
    return f"{PREFIX}/cluster/{_segment(cluster)}"


def object_href(view: SyncView, entry: Entry) -> str:
    oid = entry.id
    parts = (view.cluster, view.sync, oid.group or "_", oid.kind, oid.namespace or "_", oid.name)
    return f"{PREFIX}/object/" + "/".join(_segment(p) for p in parts)


def _cell(view: SyncView, name: str, value: str) -> str:
    return f'<td data-field="{e(name)}">{e(value)}</td>'


def overview(views: Sequence[SyncView]) -> str:
    rows = []
    for view in views:
        live = view.live()
        rows.append(
            f'<tr data-sync="{e(view.key)}" data-state="{e(view.state)}">'
            f'<td><a href="{e(cluster_href(view.cluster))}">{e(view.cluster)}</a></td>'
            f"<td>{e(view.provider or '-')}</td><td>{e(view.sync)}</td>"
            + "".join(
                _cell(view, k, live[k])
                for k in ("state", "reachable", "commit", "synced", "health", "errorCount")
            )
            + "</tr>"
        )
    return (
        "<h1>Fleet</h1>"
        '<table class="fleet"><thead><tr><th>Cluster</th><th>Provider</th><th>Sync</th><th>State</th>'
        "<th>Reachable</th><th>Source commit</th><th>Last applied</th><th>Health</th><th>Errors</th>"
        f"</tr></thead><tbody>{''.join(rows) or '<tr><td colspan=9>No syncs.</td></tr>'}</tbody></table>"
    )


def _errors_list(view: SyncView) -> str:
    items = "".join(f"<li>{e(_error_text(err))}</li>" for err in view.errors())
    return f'<ul class="errors" data-errors="{e(view.key)}">{items}</ul>'


def cluster_page(cluster: str, views: Sequence[SyncView]) -> str:
    sections = []
    for view in views:
        live = view.live()
        pending = ""
        commit, synced = view.outcome.get("commit"), view.outcome.get("syncedCommit")
        if commit and synced and commit != synced:
            pending = (
                f'<p class="pending">Commit {e(_short(commit))} is not applied; preview it with '
                f"<code>acm-lite preview --base {e(synced)} --head {e(commit)}</code>.</p>"
            )
        rows = []
        for entry in list(view.entries)[:MAX_OBJECTS_SHOWN]:
            drift = entry.drift
            rows.append(
                f'<tr data-status="{e(entry.status)}"><td>{e(entry.id.kind)}</td>'
                f"<td>{e(entry.id.namespace)}</td>"
                f'<td><a href="{e(object_href(view, entry))}">{e(entry.id.name)}</a></td>'
                f"<td>{e(entry.status)}</td><td>{e(_short(entry.commit))}</td>"
                f"<td>{e(_drift_text(drift) if drift else '-')}</td></tr>"
            )
        more = len(view.entries) - MAX_OBJECTS_SHOWN
        sections.append(
            f'<section data-sync="{e(view.key)}" data-state="{e(view.state)}">'
            f"<h2>{e(view.describe)}</h2><dl>"
            f"<dt>Source</dt><dd>{e(view.source)}</dd>"
            f'<dt>State</dt><dd data-field="state">{e(live["state"])}</dd>'
            f'<dt>Reachable</dt><dd data-field="reachable">{e(live["reachable"])}</dd>'
            f'<dt>Source commit</dt><dd data-field="commit">{e(live["commit"])}</dd>'
            f'<dt>Last applied</dt><dd data-field="synced">{e(live["synced"])}</dd>'
            f'<dt>Health</dt><dd data-field="health">{e(live["health"])}</dd>'
            f'<dt>Errors</dt><dd data-field="errorCount">{e(live["errorCount"])}</dd></dl>'
            f"{pending}{_errors_list(view)}"
            '<table class="objects"><thead><tr><th>Kind</th><th>Namespace</th><th>Name</th><th>Health</th>'
            f"<th>Applied commit</th><th>Last drift</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + (f"<p>{more} more objects not shown.</p>" if more > 0 else "")
            + "</section>"
        )
    return f'<p><a href="{PREFIX}/">Fleet</a></p><h1>Cluster {e(cluster)}</h1>{"".join(sections)}'


def object_page(view: SyncView, entry: Entry) -> str:
    oid, drift = entry.id, entry.drift
    rows = [
        ("Cluster", view.cluster),
        ("Sync", view.describe),
        ("Group", oid.group or "(core)"),
        ("Kind", oid.kind),
        ("Namespace", oid.namespace or "-"),
        ("Name", oid.name),
        ("Health", entry.status),
        ("Reason", entry.reason or "-"),
        ("Message", entry.message or "-"),
        ("Last applied commit", entry.commit or "-"),
    ]
    if drift is not None:
        rows += [
            ("Last drift repaired", drift.time),
            ("Changed by (field manager)", drift.manager or "unknown"),
            ("Operation", drift.operation or "-"),
            ("User", drift.user or "-"),
            ("Changed fields", ", ".join(drift.fields) or "-"),
        ]
    else:
        rows.append(("Last drift repaired", "none recorded"))
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return (
        f'<p><a href="{PREFIX}/">Fleet</a> / '
        f'<a href="{e(cluster_href(view.cluster))}">{e(view.cluster)}</a></p>'
        f'<h1>{e(oid.kind)} {e(oid.name)}</h1><dl class="object">{items}</dl>'
    )


def login_form(refused: bool = False) -> str:
    note = '<p class="refused">That token was not accepted.</p>' if refused else ""
    return (
        f"<h1>acm-lite dashboard</h1>{note}"
        f'<form method="post" action="{PREFIX}/login"><label>Bearer token '
        '<input type="password" name="token" id="token" autocomplete="off"></label> '
        '<button type="submit" id="sign-in">Sign in</button></form>'
    )


def page(title: str, body: str, *, poll: float | None = None) -> bytes:
    live = f' data-poll="{e(poll)}"' if poll else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)} · acm-lite</title>"
        f'<link rel="stylesheet" href="{PREFIX}/static/dashboard.css">'
        f'<script src="{PREFIX}/static/dashboard.js" defer></script></head>'
        f'<body{live}><main>{body}</main><footer>Updated <span id="updated">at load</span></footer>'
        "</body></html>"
    ).encode()


def _page_answer(status: int, title: str, body: str, *, poll: float | None = None) -> Answer:
    return Answer(status, page(title, body, poll=poll), "text/html; charset=utf-8", SECURITY_HEADERS)


def _unauthorized() -> Answer:
    body = page("Sign in", f'<h1>Unauthorized</h1><p><a href="{PREFIX}/login">Sign in with a token</a>.</p>')
    return Answer(
        401,
        body,
        "text/html; charset=utf-8",
        (*SECURITY_HEADERS, ("WWW-Authenticate", 'Bearer realm="acm-lite"')),
    )


def _asset(name: str) -> Answer:
    if name not in _ASSETS:
        return Answer(404, b"not found\n", headers=SECURITY_HEADERS)
    data = importlib_resources.files("acm_lite").joinpath("data", "ui", name).read_bytes()
    return Answer(200, data, _ASSETS[name], SECURITY_HEADERS)


# -- text ------------------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(commit: object) -> str:
    return str(commit)[:12] if isinstance(commit, str) and commit else "-"


def _reachable_text(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "unknown"


def _error_text(error: Mapping[str, Any]) -> str:
    code, name, message = (str(error.get(k, "")) for k in ("code", "name", "message"))
    where = error.get("object")
    if isinstance(where, Mapping):
        ident = "/".join(str(where.get(k, "")) for k in ("kind", "namespace", "name") if where.get(k))
        message = f"{message} ({ident})" if ident else message
    return _cut(f"{code} {name}: {message}".strip(), 1000)


def _drift_text(drift: resources.Drift) -> str:
    who = drift.user or drift.manager or "unknown"
    what = "deleted" if drift.deleted else ", ".join(drift.fields) or "changed"
    return f"{drift.time} by {who}: {what}"
