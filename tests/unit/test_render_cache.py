"""The on-disk render cache stays bounded: least recently used files go first."""

from __future__ import annotations

import os
import time
from pathlib import Path

from acm_lite.render import cache


def _age(path: Path, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


def test_entries_beyond_the_bound_are_removed_oldest_first(tmp_path: Path) -> None:
    disk = cache.Disk(tmp_path, max_entries=3, max_bytes=1 << 20)
    for index, key in enumerate(["a", "b", "c"]):
        disk.put(key, b"x")
        _age(disk.path(key), 100 - index)  # a oldest, c newest
    disk.put("d", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.yaml", "c.yaml", "d.yaml"]


def test_a_hit_keeps_an_old_entry(tmp_path: Path) -> None:
    disk = cache.Disk(tmp_path, max_entries=2, max_bytes=1 << 20)
    disk.put("old", b"x")
    _age(disk.path("old"), 200)
    disk.put("mid", b"x")
    _age(disk.path("mid"), 100)
    disk.touch("old")
    disk.put("new", b"x")
    assert disk.has("old") and disk.has("new") and not disk.has("mid")


def test_total_size_is_bounded(tmp_path: Path) -> None:
    disk = cache.Disk(tmp_path, max_entries=100, max_bytes=250)
    for index, key in enumerate(["a", "b", "c"]):
        disk.put(key, b"x" * 100)
        _age(disk.path(key), 100 - index)
    assert [disk.has(k) for k in "abc"] == [False, True, True]


def test_one_entry_larger_than_the_bound_is_not_kept(tmp_path: Path) -> None:
    disk = cache.Disk(tmp_path, max_entries=10, max_bytes=10)
    disk.put("big", b"x" * 11)
    assert not disk.has("big")


def test_stale_partial_files_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    disk = cache.Disk(tmp_path)
    stale = tmp_path / ".partial-dead"
    fresh = tmp_path / ".partial-writing"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    _age(stale, cache.PARTIAL_AGE + 60)
    removed = disk.prune()
    assert removed == [stale]
    assert fresh.exists()


def test_other_files_and_links_are_left_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(b"x")
    directory = tmp_path / "render"
    disk = cache.Disk(directory, max_entries=1, max_bytes=1 << 20)
    disk.put("a", b"x")
    (directory / "link.yaml").symlink_to(outside)
    (directory / "notes.txt").write_bytes(b"x")
    _age(disk.path("a"), 100)
    disk.put("b", b"x")
    assert outside.exists() and (directory / "link.yaml").is_symlink() and (directory / "notes.txt").exists()
    assert not disk.has("a") and disk.has("b")


def test_a_missing_directory_prunes_nothing(tmp_path: Path) -> None:
    assert cache.Disk(tmp_path / "absent").prune() == []
