"""What changed between two snapshots, against real Git repositories and real directories: the
answer equals the difference of the two snapshots' files, or is None when it cannot be exact."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from acm_lite.source import git as gitsource
from acm_lite.source import local
from acm_lite.source.changes import Changes, changed
from acm_lite.source.snapshot import Snapshot
from tests.integration.test_git_checkout import Random
from tests.support.gitrepo import GitRepo, git


def files(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file below ``root`` (links followed) with its mode and bytes."""
    found = {}
    for parent, _dirs, names in os.walk(root):
        for name in names:
            path = Path(parent) / name
            if path.is_file():
                found[str(path.relative_to(root))] = (path.stat().st_mode, path.read_bytes())
    return found


def expected(old: dict[str, tuple[int, bytes]], new: dict[str, tuple[int, bytes]]) -> Changes:
    return Changes(
        frozenset(p for p, seen in new.items() if old.get(p) != seen), frozenset(old.keys() - new.keys())
    )


@pytest.mark.parametrize("directory", [".", "a", "c/d"])
@pytest.mark.parametrize("seed", [4, 5])
def test_git_changes_match_the_snapshots_difference(seed: int, directory: str, tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    edits = Random(repo, seed, links=False)
    cache = tmp_path / "cache"
    seen: list[tuple[Snapshot, dict[str, tuple[int, bytes]]]] = []
    repo.commit({f"{directory}/keep.yaml": "k: 1\n", "outside/o.yaml": "o: 1\n"})
    for i in range(20):
        for _ in range(edits.rng.randrange(1, 5)):
            edits.step()
        (repo.work / directory).mkdir(parents=True, exist_ok=True)
        (repo.work / directory / "keep.yaml").write_text(f"k: {i % 3}\n")
        snap = gitsource.fetch(repo.url, repo.commit({}, f"step {i}"), directory, cache=cache)
        seen.append((snap, files(snap.root)))
    pairs = [*itertools.pairwise(seen), (seen[-1], seen[0]), (seen[3], seen[12])]
    for (old, old_files), (new, new_files) in pairs:
        assert changed(old, new) == expected(old_files, new_files), (old.commit, new.commit)
    assert any(changed(o, n) != Changes(frozenset(), frozenset()) for (o, _), (n, _) in pairs)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    made = GitRepo(tmp_path / "repo")
    made.commit({"app/a.yaml": "a: 1\n", "app/sub/b.yaml": "b: 1\n", "other/c.yaml": "c: 1\n"})
    return made


def test_git_changes_below_dir_only_and_relative_to_it(repo: GitRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old = gitsource.fetch(repo.url, "main", "app", cache=cache)
    repo.commit(
        {"app/sub/b.yaml": "b: 2\n", "app/new.yaml": "n: 1\n", "app/a.yaml": None, "other/c.yaml": "c2"}
    )
    new = gitsource.fetch(repo.url, "main", "app", cache=cache)
    assert changed(old, new) == Changes(frozenset({"sub/b.yaml", "new.yaml"}), frozenset({"a.yaml"}))
    assert changed(new, old) == Changes(frozenset({"sub/b.yaml", "a.yaml"}), frozenset({"new.yaml"}))
    assert changed(new, new) == Changes(frozenset(), frozenset())
    (repo.work / "app" / "a.yaml").write_text("x")
    (repo.work / "app" / "a.yaml").chmod(0o755)
    third = gitsource.fetch(repo.url, repo.commit({}), "app", cache=cache)
    assert changed(new, third) == Changes(frozenset({"a.yaml"}), frozenset())
    (repo.work / "app" / "a.yaml").chmod(0o644)  # a mode change alone is a change
    fourth = gitsource.fetch(repo.url, repo.commit({}), "app", cache=cache)
    assert changed(third, fourth) == Changes(frozenset({"a.yaml"}), frozenset())
    # another dir, another repository, another cache's mirror: unknown
    whole = gitsource.fetch(repo.url, "main", ".", cache=cache)
    assert changed(third, whole) is None
    assert changed(third, gitsource.fetch(repo.url, "main", "app", cache=tmp_path / "c2")) is None
    clone = tmp_path / "clone.git"
    shutil.copytree(repo.bare, clone)
    assert changed(third, gitsource.fetch(str(clone), "main", "app", cache=cache)) is None


@pytest.mark.parametrize(
    "odd", ["link-below", "submodule", "attributes-above", "attributes-below", "dir-link"]
)
def test_git_changes_unknown_when_the_export_differs_from_the_blobs(
    odd: str, repo: GitRepo, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    directory = "app"
    if odd == "link-below":
        (repo.work / "app" / "l.yaml").symlink_to("a.yaml")  # follows a.yaml, which changes
    elif odd == "attributes-above":
        repo.write({".gitattributes": "*.yaml export-subst\n"})
    elif odd == "attributes-below":
        repo.write({"app/.gitattributes": "b.yaml export-ignore\n"})
    elif odd == "dir-link":
        (repo.work / "linked").symlink_to("app")
        directory = "linked"
    elif odd == "submodule":
        head = git(repo.work, "rev-parse", "HEAD")
        git(repo.work, "update-index", "--add", "--cacheinfo", f"160000,{head},app/vendor")
        git(repo.work, "commit", "-qm", "submodule")
        git(repo.work, "push", "-q", "origin", "HEAD:main")
    old = gitsource.fetch(repo.url, repo.commit({}) if odd != "submodule" else "main", directory, cache=cache)
    if odd == "submodule":  # the submodule moves on
        git(
            repo.work,
            "update-index",
            "--cacheinfo",
            f"160000,{git(repo.work, 'rev-parse', 'HEAD')},app/vendor",
        )
        git(repo.work, "commit", "-qm", "bump")
        git(repo.work, "push", "-q", "origin", "HEAD:main")
        new = gitsource.fetch(repo.url, "main", directory, cache=cache)
    else:
        new = gitsource.fetch(repo.url, repo.commit({"app/a.yaml": "a: 2\n"}), directory, cache=cache)
    assert old.commit != new.commit
    assert changed(old, new) is None


def test_git_changes_known_with_a_link_outside_dir(repo: GitRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (repo.work / "other" / "l.yaml").symlink_to("c.yaml")
    old = gitsource.fetch(repo.url, repo.commit({}), "app", cache=cache)
    new = gitsource.fetch(repo.url, repo.commit({"app/a.yaml": "a: 2\n"}), "app", cache=cache)
    assert changed(old, new) == Changes(frozenset({"a.yaml"}), frozenset())


def _edit_dir(root: Path, rng: random.Random) -> None:
    """A random edit of a plain directory: add, rewrite (same size or not), remove, rename."""
    present = sorted(p for p in root.rglob("*") if p.is_file())
    op = rng.choice(["add", "rewrite", "same-size", "remove", "rename"]) if present else "add"
    if op == "add":
        path = root / rng.choice(["", "a", "a/b"]) / f"f{rng.randrange(30)}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x" * rng.randrange(1, 30))
        return
    victim = rng.choice(present)
    if op == "rewrite":
        victim.write_text("y" * rng.randrange(1, 30))
    elif op == "same-size":  # same size, mtime put back: only ctime tells
        info = victim.stat()
        victim.write_bytes(bytes((b + 1) % 256 for b in victim.read_bytes()))
        os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))
    elif op == "remove":
        victim.unlink()
    else:
        victim.rename(root / f"renamed{rng.randrange(30)}.yaml")


def test_plain_directory_changes_are_exact_once_past_the_racy_window(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    rng = random.Random(7)
    for _ in range(5):
        _edit_dir(root, rng)
    time.sleep(local.RACY_NS / 1e9 + 0.05)
    old = local.snapshot(root)
    old_files = files(root)
    assert old.record is not None and not old.record.racy
    for _ in range(6):
        for _ in range(rng.randrange(1, 4)):
            _edit_dir(root, rng)
        time.sleep(local.RACY_NS / 1e9 + 0.05)
        new = local.snapshot(root)
        new_files = files(root)
        assert changed(old, new) == expected(old_files, new_files)
        old, old_files = new, new_files


def test_plain_directory_changes_without_waiting_may_only_add_racy_files(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    rng = random.Random(8)
    old, old_files = local.snapshot(root), files(root)
    for _ in range(30):
        for _ in range(rng.randrange(1, 4)):
            _edit_dir(root, rng)
        new, new_files = local.snapshot(root), files(root)
        found, exact = changed(old, new), expected(old_files, new_files)
        assert found is not None and old.record is not None
        assert found.removed == exact.removed
        assert exact.modified <= found.modified
        assert found.modified - exact.modified <= old.record.racy
        old, old_files = new, new_files
    # a file the older record saw as racy is reported once, then no more
    time.sleep(local.RACY_NS / 1e9 + 0.05)
    calm = local.snapshot(root)
    calmer = local.snapshot(root)
    assert changed(calm, calmer) == Changes(frozenset(), frozenset())


def test_plain_directory_changes_unknown_when_unreliable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "dir"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.yaml").write_text("x")
    (root / ".git").mkdir()  # a nested repository's insides are not recorded
    (root / ".git" / "index").write_text("i")
    first = local.snapshot(root)
    assert first.record is not None and set(first.record.files) == {"a/x.yaml"}
    (root / "l.yaml").symlink_to("a/x.yaml")  # what a link points at may change while it does not
    linked = local.snapshot(root)
    assert linked.record is None and changed(first, linked) is None
    (root / "l.yaml").unlink()
    assert changed(first, local.snapshot(root, "a")) is None  # another dir
    other = tmp_path / "other"
    shutil.copytree(root, other)
    assert changed(first, local.snapshot(other)) is None  # another directory
    assert local.record(root) is not None
    monkeypatch.setattr(local, "MAX_RECORDED", 0)
    assert local.record(root) is None
    monkeypatch.undo()
    assert local.file_system(root) in local.TRUSTED_FILE_SYSTEMS
    monkeypatch.setattr(local, "TRUSTED_FILE_SYSTEMS", frozenset({"nfs"}))  # as on a network file system
    assert local.snapshot(root).record is None
