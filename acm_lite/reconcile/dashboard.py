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
from acm_lite.cluster.client import ApiError, Client, Cluster
from acm_lite.errors import AcmError
from acm_lite.reconcile import previews
from acm_lite.reconcile.httpserver import Answer, Request
from acm_lite.reconcile.model import SyncSpec
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
    # what a preview of its newest commit needs: the sync and a client for its cluster
    spec: SyncSpec | None = field(default=None, compare=False, repr=False)
    connect: Callable[[], Cluster] | None = field(default=None, compare=False, repr=False)

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

    def __init__(
        self,
        views: Callable[[bool], list[SyncView]],
        auth: Auth,
        *,
        poll_seconds: float = 3.0,
        previews: previews.Previews | None = None,
    ):
        """``views(objects)``: every sync, with each object's entry when ``objects`` (else only
        the counts, which the overview and the live updates need). ``previews``: the preview of a
        sync's newest commit while it is not applied (without it, cluster pages give the command)."""
        self.views, self.auth, self.poll_seconds = views, auth, poll_seconds
        self.previews = previews

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
        return self._route(path)

    def _route(self, path: str) -> Answer:
        """A page, or the JSON (under /api/) a page's script polls, for an accepted token."""
        views = self.views(path.startswith(("/cluster/", "/object/", "/api/cluster/", "/api/object/")))
        if path == "/":
            return _page_answer(200, "Fleet", overview(views), poll=self.poll_seconds)
        if path == "/api/fleet":
            return _json({"updated": time.time(), "syncs": [v.live() for v in views]})
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        api = parts[0] == "api" and len(parts) > 1
        if api:
            parts = parts[1:]
        if parts[0] == "cluster" and len(parts) == 2:
            shown = [v for v in views if v.cluster == parts[1]]
            if shown and api:
                return _json({"updated": time.time(), "syncs": cluster_live(shown, self.previews)})
            if shown:
                body = cluster_page(parts[1], shown, previews.models(shown, self.previews))
                return _page_answer(200, parts[1], body, poll=self.poll_seconds, api=path_of_api(path))
        if parts[0] == "object" and len(parts) == 7:
            found = find_entry(views, parts[1:])
            if found is not None and api:
                return _json({"updated": time.time(), "fields": dict(object_fields(*found))})
            if found is not None:
                return _page_answer(
                    200, found[1].id.name, object_page(*found), poll=self.poll_seconds, api=path_of_api(path)
                )
        if api:
            return Answer(404, b'{"error": "not found"}', "application/json", SECURITY_HEADERS)
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


def path_of_api(path: str) -> str:
    """The JSON answer a page polls: /ui/api/cluster/... for /ui/cluster/... (``path`` is the
    request's, below /ui and still quoted)."""
    return f"{PREFIX}/api{path}"


def _json(value: object) -> Answer:
    return Answer(200, json.dumps(value).encode(), "application/json", SECURITY_HEADERS)


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


OBJECT_COLUMNS = ("kind", "namespace", "name", "status", "commit", "drift")


def object_row(view: SyncView, entry: Entry) -> dict[str, str]:
    """One row of a cluster page's object table, as text (``id`` keys the row, ``href`` links
    the name to the object's page)."""
    oid, drift = entry.id, entry.drift
    return {
        "id": "/".join((oid.group, oid.kind, oid.namespace, oid.name)),
        "href": object_href(view, entry),
        "kind": oid.kind,
        "namespace": oid.namespace,
        "name": oid.name,
        "status": entry.status,
        "commit": _short(entry.commit),
        "drift": _drift_text(drift) if drift else "-",
    }


def cluster_live(views: Sequence[SyncView], shown: previews.Previews | None) -> list[dict[str, Any]]:
    """What a cluster page's script updates: each sync's fields, object rows and preview."""
    models = previews.models(views, shown)
    return [
        {
            **view.live(),
            "objects": [object_row(view, entry) for entry in list(view.entries)[:MAX_OBJECTS_SHOWN]],
            "objectsMore": max(0, len(view.entries) - MAX_OBJECTS_SHOWN),
            "preview": models.get(view.key),
        }
        for view in views
    ]


def cluster_page(
    cluster: str, views: Sequence[SyncView], models: Mapping[str, Mapping[str, Any] | None] | None = None
) -> str:
    sections = []
    for view in views:
        live = view.live()
        preview = previews.html_of((models or {}).get(view.key), view.key)
        rows = []
        for entry in list(view.entries)[:MAX_OBJECTS_SHOWN]:
            row = object_row(view, entry)
            rows.append(
                f'<tr data-object="{e(row["id"])}" data-status="{e(row["status"])}">'
                f'<td data-col="kind">{e(row["kind"])}</td>'
                f'<td data-col="namespace">{e(row["namespace"])}</td>'
                f'<td data-col="name"><a href="{e(row["href"])}">{e(row["name"])}</a></td>'
                f'<td data-col="status">{e(row["status"])}</td><td data-col="commit">{e(row["commit"])}</td>'
                f'<td data-col="drift">{e(row["drift"])}</td></tr>'
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
            f"{preview}{_errors_list(view)}"
            '<table class="objects"><thead><tr><th>Kind</th><th>Namespace</th><th>Name</th><th>Health</th>'
            f"<th>Applied commit</th><th>Last drift</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f'<p class="more-objects" data-more="{e(view.key)}">'
            + (f"{more} more objects not shown." if more > 0 else "")
            + "</p>"
            + "</section>"
        )
    return f'<p><a href="{PREFIX}/">Fleet</a></p><h1>Cluster {e(cluster)}</h1>{"".join(sections)}'


_OBJECT_LABELS = {
    "cluster": "Cluster",
    "sync": "Sync",
    "group": "Group",
    "kind": "Kind",
    "namespace": "Namespace",
    "name": "Name",
    "status": "Health",
    "reason": "Reason",
    "message": "Message",
    "commit": "Last applied commit",
    "driftTime": "Last drift repaired",
    "driftManager": "Changed by (field manager)",
    "driftOperation": "Operation",
    "driftUser": "User",
    "driftFields": "Changed fields",
}


def object_fields(view: SyncView, entry: Entry) -> list[tuple[str, str]]:
    """An object page's fields as (key, text), in the page's order; the page script updates them."""
    oid, drift = entry.id, entry.drift
    return [
        ("cluster", view.cluster),
        ("sync", view.describe),
        ("group", oid.group or "(core)"),
        ("kind", oid.kind),
        ("namespace", oid.namespace or "-"),
        ("name", oid.name),
        ("status", entry.status),
        ("reason", entry.reason or "-"),
        ("message", _cut(entry.message, 4000) if entry.message else "-"),
        ("commit", entry.commit or "-"),
        ("driftTime", drift.time if drift else "none recorded"),
        ("driftManager", (drift.manager or "unknown") if drift else "-"),
        ("driftOperation", (drift.operation or "-") if drift else "-"),
        ("driftUser", (drift.user or "-") if drift else "-"),
        ("driftFields", (", ".join(drift.fields) or "-") if drift else "-"),
    ]


def object_page(view: SyncView, entry: Entry) -> str:
    oid = entry.id
    items = "".join(
        f'<dt>{e(_OBJECT_LABELS[k])}</dt><dd data-field="{e(k)}">{e(v)}</dd>'
        for k, v in object_fields(view, entry)
    )
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


def page(title: str, body: str, *, poll: float | None = None, api: str = f"{PREFIX}/api/fleet") -> bytes:
    live = f' data-poll="{e(poll)}" data-api="{e(api)}"' if poll else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)} · acm-lite</title>"
        f'<link rel="stylesheet" href="{PREFIX}/static/dashboard.css">'
        f'<script src="{PREFIX}/static/dashboard.js" defer></script></head>'
        f'<body{live}><main>{body}</main><footer>Updated <span id="updated">at load</span></footer>'
        "</body></html>"
    ).encode()


def _page_answer(
    status: int, title: str, body: str, *, poll: float | None = None, api: str = f"{PREFIX}/api/fleet"
) -> Answer:
    return Answer(status, page(title, body, poll=poll, api=api), "text/html; charset=utf-8", SECURITY_HEADERS)


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
