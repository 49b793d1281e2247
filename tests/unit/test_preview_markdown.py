"""The preview comment: hostile names and messages stay inert text, the size limit holds, and
problems are compared across revisions by code and object."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import markdown_it
import pytest

from acm_lite import errors
from acm_lite.cli import previewmd
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.cli.main import main
from acm_lite.cli.preview import exit_status
from acm_lite.errors import Problem
from acm_lite.fleet.preview import ClusterPreview, compare, short_diff

GOLDEN = Path(__file__).parent.parent / "golden" / "preview"
HOSTILE = (
    "evil<script>alert(1)</script>`rm -rf`|x|[link](https://evil.example)@org/team #12 ![i](x) </details>"
)


def cluster(name: str, **fields: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "reachable": True,
        "mode": "live",
        "against": None,
        "base": "a" * 40,
        "head": "b" * 40,
        "create": [],
        "change": [],
        "changesKnown": True,
        "prune": [],
        "leave": 0,
        "introduced": [],
        "fixed": [],
        "blocking": False,
        "notes": [],
        "error": None,
    }
    return {**base, **fields}


def hostile_report() -> dict[str, Any]:
    problem = {
        "code": "ACM3100",
        "blocking": True,
        "message": f"[deny] {HOSTILE}",
        "object": {"kind": "ConfigMap", "namespace": "apps", "name": HOSTILE},
    }
    return {
        "base": "main",
        "head": "pr|<b>x</b>",
        "clusters": [
            cluster(
                HOSTILE,
                create=[f"ConfigMap apps/{HOSTILE}"],
                change=[{"object": f"ConfigMap apps/{HOSTILE}", "diff": f"-  a: '1'\n+  a: '```{HOSTILE}'"}],
                prune=[f"ConfigMap apps/{HOSTILE}"],
                introduced=[problem],
                blocking=True,
                notes=[HOSTILE],
            )
        ],
    }


def rendered_html(markdown: str) -> str:
    """The Markdown as a CommonMark renderer with raw HTML allowed turns it into HTML (GitHub
    allows some HTML in comments, so raw HTML passing through would be the failure)."""
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def test_hostile_names_and_messages_are_inert() -> None:
    markdown = previewmd.render(hostile_report())
    html = rendered_html(markdown)
    assert "<script>" not in html and "<b>" not in html
    assert html.count("<details>") == 1 and html.count("</details>") == 1
    assert "<a " not in html and "<img" not in html  # no link or image from the repository's text
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert all(row.count("|") == 9 for row in rows)  # a name with | keeps the table's columns
    prose = re.sub(r"(`{3,})diff\n.*?\n *\1", "", markdown, flags=re.DOTALL)  # outside the diffs
    assert not re.search(r"@org|(?<!&)#12", prose)  # no mention, no issue reference
    cells = re.findall(r"<td>(.*?)</td>", html)
    assert cells[0] == HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;"
    )
    # the diff is fenced by more backticks than it holds: its text stays literal
    assert '<pre><code class="language-diff">' in html and "&lt;script&gt;" in html
    compare_golden("hostile.md", markdown)


def compare_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ACM_LITE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_the_size_limit_cuts_sections_and_points_to_the_full_report() -> None:
    clusters = [cluster(f"c{i}", create=[f"ConfigMap apps/cm-{j}" for j in range(40)]) for i in range(200)]
    data = {"base": "main", "head": "pr", "clusters": clusters}
    whole = previewmd.render(data, max_bytes=10**9)
    assert len(whole.encode()) > previewmd.GITHUB_COMMENT_LIMIT
    cut = previewmd.render(data, full_report="https://ci.example.com/runs/7?a=(b)")
    assert len(cut.encode()) <= previewmd.GITHUB_COMMENT_LIMIT
    assert cut.count("| c") == 200  # the summary table is whole
    shown = cut.count("<details>")
    assert 0 < shown < 200
    assert f"{200 - shown} cluster section(s) left out" in cut
    assert "[the full report](<https://ci.example.com/runs/7?a=%28b%29>)" in cut
    local = previewmd.render(data, full_report="report.json")
    assert "see the full report (report.json)" in local
    rows = previewmd.render({**data, "clusters": clusters * 20}, max_bytes=20000)
    assert len(rows.encode()) <= 20000 and re.search(r"_\d+ more cluster\(s\) left out of the table", rows)


def test_clusters_with_blocking_problems_keep_their_sections_first() -> None:
    quiet = [cluster(f"ok{i}", create=[f"ConfigMap apps/cm-{j}" for j in range(40)]) for i in range(5)]
    bad = cluster("bad", blocking=True, introduced=[{"code": "ACM3100", "blocking": True, "message": "m"}])
    cut = previewmd.render({"base": "a", "head": "b", "clusters": [*quiet, bad]}, max_bytes=4000)
    assert "<summary>⛔ bad" in cut and "<summary>✅ ok4" not in cut


def test_offline_changes_are_unknown() -> None:
    data = {
        "base": "main",
        "head": "pr",
        "clusters": [
            cluster(
                "edge",
                reachable=False,
                mode="offline",
                against="base",
                changesKnown=False,
                change=[{"object": "ConfigMap apps/a", "diff": ""}],
            )
        ],
    }
    markdown = previewmd.render(data)
    assert "| edge | no | offline | 0 | ? | 0 | 0 | 0 |" in markdown
    assert "**Kept, changes unknown** (1):" in markdown and "base revision's objects" in markdown


def problem(code: errors.Code, name: str, message: str = "m") -> Problem:
    return Problem(code, message, obj={"kind": "Pod", "namespace": "apps", "name": name})


def test_compare_by_code_and_object() -> None:
    stays = problem(errors.POLICY_VIOLATION, "a", "worded once")
    fixed = problem(errors.POLICY_VIOLATION, "b")
    new = problem(errors.POLICY_VIOLATION, "c")
    reworded = problem(errors.POLICY_VIOLATION, "a", "worded again")  # same code and object: not new
    introduced, gone = compare([stays, fixed], [reworded, new])
    assert introduced == [new] and gone == [fixed]


@pytest.mark.parametrize(
    ("previews", "status"),
    [
        ([ClusterPreview("a")], ExitStatus.SUCCESS),
        ([ClusterPreview("a", introduced=[problem(errors.POLICY_VIOLATION, "x")])], ExitStatus.FAILURE),
        ([ClusterPreview("a", error=Problem(errors.SOURCE_ERROR, "cannot fetch"))], ExitStatus.UNAVAILABLE),
        ([ClusterPreview("a", error=Problem(errors.PREVIEW_NEEDS_GIT, "helm"))], ExitStatus.FAILURE),
    ],
)
def test_exit_status(previews: list[ClusterPreview], status: ExitStatus) -> None:
    assert exit_status(previews) is status


def test_short_diff_drops_headers_and_bookkeeping_and_is_bounded() -> None:
    diff = "--- live/x\n+++ desired/x\n@@ -1 +1 @@\n"
    diff += "-    acm-lite.io/declared-hash: 1\n+    acm-lite.io/declared-hash: 2\n"
    diff += "".join(f"+  k{i}: v\n" for i in range(100))
    short = short_diff(diff, limit=10).splitlines()
    assert short[0] == "@@ -1 +1 @@" and len(short) == 11 and short[-1] == "... 91 more line(s)"
    assert short_diff("+  big: " + "x" * 10**6) == "+  big: " + "x" * 192 + " …"


@pytest.mark.parametrize(
    "argv",
    [
        ["preview", "--base", "main"],  # neither --fleet nor --repo
        ["preview", "--repo", ".", "--base", "main", "--cluster", "a", "--cluster", "b"],
        ["preview", "--repo", ".", "--base", "main", "--max-bytes", "0"],
        ["preview", "--repo", "."],  # no --base
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACM_LITE_FLEET", raising=False)
    assert main(argv) == ExitStatus.USAGE
    assert capsys.readouterr().out == ""


def test_a_member_syncing_a_chart_is_refused_with_a_code() -> None:
    from acm_lite.fleet import preview
    from acm_lite.fleet.registry import FleetCluster, FleetSync
    from acm_lite.source.helm import HelmSpec

    def never(_member: FleetCluster) -> Any:
        raise AssertionError("no cluster is reached for a member that cannot be previewed")

    chart = FleetSync(source_type="helm", helm=HelmSpec(repo="https://charts.example.com", chart="app"))
    found = preview.preview_one(FleetCluster("edge", sync=chart), preview.Request("main", "pr"), never)
    assert found.error is not None and found.error.code is errors.PREVIEW_NEEDS_GIT
    assert exit_status([found]) is ExitStatus.FAILURE
