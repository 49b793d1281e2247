"""What changed between two snapshots, from plain directories' records, and when it is unknown;
the snapshot's new fields leave older callers unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.source import gittree
from acm_lite.source.changes import Changes, changed
from acm_lite.source.snapshot import FileRecord, Snapshot

ROOT = Path("/srv/repo")


def _local(files: dict[str, tuple[int, int, int, int]], racy: set[str] | None = None, **kw: str) -> Snapshot:
    return Snapshot(
        ROOT,
        kw.get("repo", "/srv/repo"),
        "(local)",
        None,
        kw.get("dir", "."),
        record=FileRecord(1, files, frozenset(racy or ())),
    )


def test_snapshot_is_backwards_compatible() -> None:
    old_style = Snapshot(ROOT, "https://example.com/r.git", "main", "a" * 40)
    assert (old_style.dir, old_style.git_dir, old_style.record) == (".", None, None)
    with_new = Snapshot(ROOT, "https://example.com/r.git", "main", "a" * 40, git_dir=Path("/m"))
    assert with_new == old_style and hash(with_new) == hash(old_style)  # where it came from is no identity
    assert "record" not in repr(_local({"a": (1, 1, 1, 1)}))


def test_records_tell_added_changed_and_removed_files() -> None:
    old = _local({"same": (1, 10, 100, 10), "edited": (1, 10, 101, 10), "gone": (1, 10, 102, 10)})
    new = _local({"same": (1, 10, 100, 10), "edited": (1, 10, 101, 11), "added": (5, 20, 103, 20)})
    assert changed(old, new) == Changes(frozenset({"edited", "added"}), frozenset({"gone"}))
    assert changed(new, old) == Changes(frozenset({"edited", "gone"}), frozenset({"added"}))
    assert changed(old, old) == Changes(frozenset(), frozenset())
    # every field counts: a new inode (replaced by a rename), a size, an mtime
    for changed_stat in [(1, 10, 999, 10), (2, 10, 100, 10), (1, 11, 100, 10)]:
        assert changed(old, _local({**old.record.files, "same": changed_stat})).modified == {"same"}  # type: ignore[union-attr]


def test_a_racy_file_is_reported_until_a_calmer_record() -> None:
    racy = _local({"a": (1, 10, 100, 10), "b": (1, 10, 101, 10)}, racy={"a"})
    calm = _local({"a": (1, 10, 100, 10), "b": (1, 10, 101, 10)})
    assert changed(racy, calm) == Changes(frozenset({"a"}), frozenset())
    assert changed(calm, racy) == Changes(frozenset(), frozenset())


@pytest.mark.parametrize(
    "other",
    [
        _local({}, repo="/srv/other"),
        _local({}, dir="sub"),
        Snapshot(ROOT, "/srv/repo", "(local)", None),  # no record
        Snapshot(ROOT, "/srv/repo", "main", "b" * 40, git_dir=Path("/m")),  # a commit
        Snapshot(Path("/elsewhere"), "/srv/repo", "(local)", None, record=FileRecord(1, {})),
    ],
    ids=["repo", "dir", "no-record", "git", "root"],
)
def test_unknown_between_unlike_snapshots(other: Snapshot) -> None:
    mine = _local({"a": (1, 1, 1, 1)})
    assert changed(mine, other) is None
    assert changed(other, mine) is None


def test_unknown_for_commits_without_a_git_repository() -> None:
    """Helm and OCI snapshots carry a digest as their commit, and no Git repository."""
    a = Snapshot(ROOT, "oci://r/x", "v1", "sha256:" + "a" * 64)
    b = Snapshot(ROOT, "oci://r/x", "v2", "sha256:" + "b" * 64)
    assert changed(a, b) is None
    same = Snapshot(ROOT, "r", "main", "c" * 40, git_dir=Path("/m"))
    assert changed(same, Snapshot(ROOT, "r", "main", "c" * 40, git_dir=Path("/other"))) is None
    assert changed(same, Snapshot(ROOT, "r", "main", "c" * 40, "./", git_dir=Path("/m"))) == Changes(
        frozenset(), frozenset()
    )


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("a.yaml", True),
        ("a/b c/ü.yaml", True),
        ("..", False),
        ("a/../b", False),
        ("/abs", False),
        ("a//b", False),
        ("a/./b", False),
        ("a/", False),
        ("", False),
        ("a\0b", False),
    ],
)
def test_safe_paths(path: str, safe: bool) -> None:
    assert gittree.safe_path(path) is safe


def test_git_is_not_asked_about_names_that_are_not_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An option where an object name belongs (``--output=...``) never reaches git."""
    asked: list[object] = []
    monkeypatch.setattr(gittree.bounded, "run", lambda *a, **k: asked.append(a))
    assert not gittree.is_object_name("--output=/tmp/x")
    assert gittree.is_object_name("a" * 40) and gittree.is_object_name("b" * 64)
    assert gittree.diff(tmp_path, "--output=x", "a" * 40, limit=10) is None
    assert gittree.entries(tmp_path, "HEAD", limit=10) is None
    assert asked == []
