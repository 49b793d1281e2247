"""The dashboard's preview of a commit not yet applied, and the JSON its pages poll, without a
cluster: the summary's caps, its escaping, computing it once in the background, failures and time
limits, and the cluster and object answers."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from acm_lite.objects import ObjectId
from acm_lite.reconcile import dashboard, previews
from acm_lite.reconcile.dashboard import Auth, Dashboard, SyncView
from acm_lite.reconcile.httpserver import Request
from acm_lite.reconcile.previews import Previews, PreviewState, PreviewSummary
from acm_lite.status.resources import Entry

TOKEN = "s3cret-token-0123456789"
HOSTILE = '<img src=x onerror="window.pwned=1">'
BASE, HEAD = "b" * 40, "h" * 40


def report(**overrides: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": "prod-1",
        "reachable": True,
        "mode": "live",
        "base": BASE,
        "head": HEAD,
        "create": [f"ConfigMap apps/{HOSTILE}"],
        "change": [{"object": "ConfigMap apps/a", "diff": f"@@ -1 +1 @@\n-  k: old\n+  k: {HOSTILE}"}],
        "changesKnown": True,
        "prune": [],
        "leave": 3,
        "introduced": [
            {
                "code": "ACM3100",
                "name": "PolicyViolation",
                "message": f"container {HOSTILE} is privileged",
                "object": {"kind": "Pod", "namespace": "apps", "name": "root-shell"},
            }
        ],
        "fixed": [],
        "blocking": True,
        "notes": [f"</details>{HOSTILE}"],
        "error": None,
    }
    found.update(overrides)
    return found


def view(commit: str = HEAD, synced: str = BASE, entries: list[Entry] | None = None) -> SyncView:
    outcome = {"state": "ERROR", "commit": commit, "syncedCommit": synced, "reachable": True, "errors": []}
    entry = Entry(ObjectId("", "ConfigMap", "apps", "a"), "Current", commit=synced)
    return SyncView("prod-1", "root-sync", "RootSync root-sync", outcome=outcome, entries=entries or [entry])


def get(board: Dashboard, path: str) -> Any:
    return board.answer(Request("GET", path, {"authorization": f"Bearer {TOKEN}"}, b""))


def settle(board: Dashboard, path: str, state: str) -> dict[str, Any]:
    """The cluster's JSON once its preview is in ``state`` (the preview runs on its own thread)."""
    deadline = time.monotonic() + 10
    while True:
        (sync,) = json.loads(get(board, path).body)["syncs"]
        if (sync["preview"] or {}).get("state") == state or time.monotonic() > deadline:
            return dict(sync)
        time.sleep(0.02)


def test_the_summary_keeps_the_report_and_caps_it() -> None:
    summary = PreviewSummary.from_report(report())
    assert summary.counts_text() == "create 1 · change 1 · prune 0 · leave 3 · new problems 1 · fixed 0"
    introduced = next(s for s in summary.sections if s.name == "introduced")
    assert introduced.items[0].text.startswith("ACM3100 PolicyViolation: container <img")
    assert introduced.items[0].text.endswith("(Pod/apps/root-shell)")

    many = PreviewSummary.from_report(
        report(
            create=[f"ConfigMap apps/c{i}" for i in range(500)],
            change=[
                {"object": f"ConfigMap apps/d{i}", "diff": "\n".join(["+" + "x" * 900] * 300)}
                for i in range(80)
            ],
            notes=["n" * 5000] * 40,
        )
    )
    create = next(s for s in many.sections if s.name == "create")
    assert create.count == 500 and len(create.items) == previews.MAX_LISTED and create.more == 450
    change = next(s for s in many.sections if s.name == "change")
    assert change.count == 80 and len(change.items) == previews.MAX_LISTED
    first = change.items[0].diff or ""
    lines = first.splitlines()
    assert len(lines) == previews.MAX_DIFF_LINES + 1 and lines[-1] == "... 260 more line(s)"
    assert max(len(line) for line in lines) <= previews.MAX_LINE
    total = sum(len(i.diff or "") for i in change.items)
    assert total <= previews.MAX_DIFF_BYTES + 100  # the last diff kept says it was cut
    assert not change.items[-1].diff  # the budget ran out before the last one
    assert len(many.notes) == previews.MAX_NOTES and all(len(n) <= previews.MAX_TEXT for n in many.notes)


def test_a_report_of_the_wrong_shape_is_empty_rather_than_a_crash() -> None:
    odd = PreviewSummary.from_report(
        {"create": "x", "change": [1, None, {"object": 2}], "leave": True, "introduced": [None], "error": 7}
    )
    assert odd.leave == 0 and odd.error == "7"
    assert [i.text for i in next(s for s in odd.sections if s.name == "change").items] == ["1", "", "2"]
    assert next(s for s in odd.sections if s.name == "create").count == 0


def test_the_preview_block_escapes_everything() -> None:
    model = PreviewState(previews.READY, PreviewSummary.from_report(report())).model("prod-1/rs", BASE, HEAD)
    block = previews.html_of(model, "prod-1/rs")
    assert "<img" not in block and block.count("<details>") == block.count("</details>") == 1
    assert "&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;" in block
    assert "<details><summary>ConfigMap apps/a</summary><pre>" in block  # the diff, collapsed
    assert f"acm-lite preview --base {BASE} --head {HEAD}" in block
    assert 'data-preview-state="ready"' in block and "new problems 1" in block
    assert previews.html_of(None, "a/b") == '<div class="preview" data-preview="a/b"></div>'
    failed = PreviewState(previews.READY, PreviewSummary.from_report(report(error={"code": "ACM4002"})))
    assert failed.model("k", BASE, HEAD)["state"] == previews.FAILED
    assert (
        failed.model("k", BASE, HEAD)["status"] == "Preview failed: ACM4002"
        and not failed.model("k", BASE, HEAD)["sections"]
    )


def test_a_preview_is_computed_once_off_the_request_and_then_shown() -> None:
    gate = threading.Event()
    calls: list[tuple[str, str, str]] = []

    def compute(shown: SyncView, base: str, head: str) -> PreviewSummary:
        calls.append((shown.key, base, head))
        assert threading.current_thread() is not threading.main_thread()
        gate.wait(10)
        return PreviewSummary.from_report(report())

    board = Dashboard(lambda _o: [view()], Auth(TOKEN.encode()), previews=Previews(compute))
    page = get(board, "/ui/cluster/prod-1").body.decode()
    assert "Preview being computed" in page and 'data-preview-state="computing"' in page
    assert 'data-api="/ui/api/cluster/prod-1"' in page
    gate.set()
    sync = settle(board, "/ui/api/cluster/prod-1", previews.READY)
    assert sync["preview"]["counts"].startswith("create 1 · change 1")
    names = [s["name"] for s in sync["preview"]["sections"]]
    assert names == ["introduced", "create", "change"]  # empty sections left out
    assert sync["preview"]["sections"][0]["items"][0]["text"].startswith("ACM3100")
    page = get(board, "/ui/cluster/prod-1").body.decode()
    assert "Problems it introduces (1)" in page and "<img" not in page
    assert calls == [("prod-1/root-sync", BASE, HEAD)]


def test_no_preview_once_the_commit_is_applied_and_a_new_head_is_previewed_again() -> None:
    current = [view(commit=BASE, synced=BASE)]
    calls: list[str] = []

    def compute(_v: SyncView, _base: str, head: str) -> PreviewSummary:
        calls.append(head)
        return PreviewSummary.from_report(report(head=head))

    board = Dashboard(lambda _o: current, Auth(TOKEN.encode()), previews=Previews(compute))
    (sync,) = json.loads(get(board, "/ui/api/cluster/prod-1").body)["syncs"]
    assert sync["preview"] is None and calls == []
    assert (
        '<div class="preview" data-preview="prod-1/root-sync"></div>'
        in get(board, "/ui/cluster/prod-1").body.decode()
    )
    current[0] = view()
    settle(board, "/ui/api/cluster/prod-1", previews.READY)
    current[0] = view(commit="n" * 40)
    settle(board, "/ui/api/cluster/prod-1", previews.READY)
    assert calls == [HEAD, "n" * 40]


def test_a_failing_preview_says_so_with_its_code_and_no_message_of_its_own() -> None:
    def compute(_v: SyncView, _b: str, _h: str) -> PreviewSummary:
        raise RuntimeError("token=hunter2 leaked in a message")

    board = Dashboard(lambda _o: [view()], Auth(TOKEN.encode()), previews=Previews(compute))
    sync = settle(board, "/ui/api/cluster/prod-1", previews.FAILED)
    assert sync["preview"]["status"].startswith(
        "Preview failed: ACM4003 PreviewFailed: unexpected RuntimeError"
    )
    assert "hunter2" not in json.dumps(sync)


def test_a_preview_past_its_time_is_failed_and_the_cache_is_bounded() -> None:
    now = [0.0]
    release = threading.Event()

    def compute(_v: SyncView, _b: str, _h: str) -> PreviewSummary:
        release.wait(10)
        return PreviewSummary.from_report(report())

    shown = Previews(compute, timeout=5.0, max_entries=2, clock=lambda: now[0])
    state = shown.state(view())
    assert state is not None and state[2].status == previews.COMPUTING
    now[0] = 6.0
    state = shown.state(view())
    assert state is not None and state[2].status == previews.FAILED
    assert state[2].message == "ACM4003 PreviewFailed: not done after 5 seconds"
    for i in range(5):
        shown.state(view(commit=f"{i}" * 40))
    assert len(shown._entries) <= 2
    release.set()


def test_the_object_answer_and_the_cluster_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [Entry(ObjectId("", "ConfigMap", "apps", n), "Current", commit=BASE) for n in ("a", "b", "c")]
    board = Dashboard(lambda _o: [view(BASE, BASE, entries)], Auth(TOKEN.encode()))
    path = "/ui/object/prod-1/root-sync/_/ConfigMap/apps/b"
    page = get(board, path).body.decode()
    assert f'data-api="/ui/api{path[3:]}"' in page and '<dd data-field="commit">' + BASE in page
    fields = json.loads(get(board, "/ui/api" + path[3:]).body)["fields"]
    assert fields["name"] == "b" and fields["commit"] == BASE and fields["driftTime"] == "none recorded"
    assert get(board, "/ui/api/object/prod-1/root-sync/_/ConfigMap/apps/zz").status == 404
    assert get(board, "/ui/api/cluster/nowhere").status == 404
    monkeypatch.setattr(dashboard, "MAX_OBJECTS_SHOWN", 2)
    (sync,) = json.loads(get(board, "/ui/api/cluster/prod-1").body)["syncs"]
    assert [o["id"] for o in sync["objects"]] == ["/ConfigMap/apps/a", "/ConfigMap/apps/b"]
    assert sync["objectsMore"] == 1 and sync["objects"][0]["href"].startswith("/ui/object/prod-1/")
    assert sync["preview"] is None  # applied


def test_without_previews_the_page_gives_the_command() -> None:
    board = Dashboard(lambda _o: [view()], Auth(TOKEN.encode()))
    page = get(board, "/ui/cluster/prod-1").body.decode()
    assert f"acm-lite preview --base {BASE} --head {HEAD}" in page and "Preview being computed" not in page
