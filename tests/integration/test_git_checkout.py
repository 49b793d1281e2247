"""A commit's checkout built from the newest kept one (unchanged files hard-linked, changed ones
written from Git) is the full export, byte for byte and mode for mode, on random commit
sequences; anything the fast way does not reproduce falls back to the full export."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from acm_lite.errors import AcmError
from acm_lite.source import git as gitsource
from acm_lite.source import gittree
from tests.support.gitrepo import GitRepo, git

DIRS = ["", "a", "a/b", "c", "c/d/e", "f g"]


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root``: directories and files with their modes, files' bytes, links'
    targets."""
    found: dict[str, tuple[object, ...]] = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(parent) / name
            rel = str(path.relative_to(root))
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                assert stat.S_ISREG(info.st_mode), rel
                found[rel] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    return found


def full_export(url: str, commit: str, cache: Path) -> dict[str, tuple[object, ...]]:
    source = gitsource.GitSource(url, cache)
    source.update()
    target = cache / "export"
    target.mkdir()
    source._export(commit, target)
    return tree(target)


class Random:
    """Random edits of a work tree: files added, edited, removed, renamed, moved between
    directories, made executable or not, symbolic links made and retargeted, directories
    emptied."""

    def __init__(self, repo: GitRepo, seed: int, links: bool = True):
        self.repo, self.rng, self.links = repo, random.Random(seed), links

    def files(self) -> list[str]:
        listed = git(self.repo.work, "ls-files", "-z")
        return [p for p in listed.split("\0") if p]

    def new_path(self) -> str:
        folder = self.rng.choice(DIRS)
        name = f"{self.rng.choice(['x', 'y', 'z', 'ü', 'w v'])}{self.rng.randrange(40)}.yaml"
        return f"{folder}/{name}" if folder else name

    def content(self) -> bytes:
        size = self.rng.choice([0, 1, 50, 3000, 70_000])
        return bytes(self.rng.getrandbits(8) for _ in range(size % 200)) * (size // 200 + 1)

    def step(self) -> None:
        work, files = self.repo.work, self.files()
        ops = ["add", "add", "edit", "remove", "rename", "move", "chmod", "empty-dir"]
        op = self.rng.choice([*ops, "link", "relink"] if self.links else ops)
        if op == "add" or not files:
            path = work / self.new_path()
            if not path.is_symlink() and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.content())
            return
        victim = self.rng.choice(files)
        path = work / victim
        if op == "edit" and not path.is_symlink():
            path.write_bytes(self.content())
        elif op == "remove":
            git(work, "rm", "-qf", "--", victim)
        elif op in ("rename", "move"):
            target = (
                self.new_path() if op == "move" else f"{Path(victim).parent}/r{self.rng.randrange(99)}.yaml"
            )
            if not (work / target).exists() and not (work / target).is_symlink():
                (work / target).parent.mkdir(parents=True, exist_ok=True)
                git(work, "mv", "--", victim, target)
        elif op == "chmod" and not path.is_symlink():
            path.chmod(path.stat().st_mode ^ 0o111)
        elif op in ("link", "relink"):
            link = path if op == "relink" and path.is_symlink() else work / self.new_path()
            if link.is_symlink() or not link.exists():
                link.unlink(missing_ok=True)
                link.parent.mkdir(parents=True, exist_ok=True)
                choices = [os.path.relpath(work / f, link.parent) for f in files]
                link.symlink_to(self.rng.choice([*choices, "missing.yaml", "/etc/hostname", "../" * 4]))
        elif op == "empty-dir":
            folder = str(Path(victim).parent)
            if folder != ".":
                git(work, "rm", "-qrf", "--", folder)


@pytest.fixture(params=["filter", "by-hand"])
def extraction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The export's extraction with tarfile's filters, and by hand as on CPython before 3.11.4."""
    if request.param == "by-hand":
        monkeypatch.delattr(tarfile, "tar_filter")
    return str(request.param)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each checkout made was built from an older one (True) or exported whole."""
    seen: list[bool] = []
    real = gitsource.GitSource._incremental

    def recorded(self: gitsource.GitSource, base: Path, commit: str, staging: Path) -> bool:
        seen.append(real(self, base, commit, staging))
        return seen[-1]

    monkeypatch.setattr(gitsource.GitSource, "_incremental", recorded)
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_commit_sequences_match_the_full_export(
    seed: int, extraction: str, built: list[bool], tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    edits = Random(repo, seed)
    cache = tmp_path / "cache"
    commits = [repo.commit({"seed.yaml": "a: 1\n"})]
    gitsource.fetch(repo.url, commits[0], cache=cache)
    for i in range(24):
        for _ in range(edits.rng.randrange(1, 5)):
            edits.step()
        commits.append(repo.commit({}, f"step {i}"))
        # now and then an older commit again: rebuilt from the newest, backwards
        wanted = edits.rng.choice(commits[:-1]) if i % 6 == 5 else commits[-1]
        snap = gitsource.fetch(repo.url, wanted, cache=cache)
        assert tree(snap.root) == full_export(repo.url, wanted, tmp_path / f"full-{i}"), (seed, i)
    assert built.count(True) >= 15, built  # the fast way, mostly


def test_unchanged_files_are_shared_and_changed_ones_are_not(built: list[bool], tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    files = {f"dir{i % 10}/f{i}.yaml": f"n: {i}\n" for i in range(200)}
    first = gitsource.fetch(repo.url, repo.commit(files), cache=cache)
    second = gitsource.fetch(repo.url, repo.commit({"dir3/f3.yaml": "n: changed\n"}), cache=cache)
    assert built == [True]
    assert os.stat(first.root / "dir5/f5.yaml").st_ino == os.stat(second.root / "dir5/f5.yaml").st_ino
    assert os.stat(first.root / "dir3/f3.yaml").st_ino != os.stat(second.root / "dir3/f3.yaml").st_ino
    assert (first.root / "dir3/f3.yaml").read_text() == "n: 3\n"  # the older checkout is untouched
    assert (second.root / "dir3/f3.yaml").read_text() == "n: changed\n"
    leftovers = [p.name for p in (cache / "git").glob("*/checkouts/*") if "." in p.name]
    assert leftovers == []  # no staging directory left behind


def _submodule(repo: GitRepo) -> str:
    """A commit adding a submodule (``vendor/sub``, at the current commit) and ``more.yaml``."""
    git(
        repo.work,
        "update-index",
        "--add",
        "--cacheinfo",
        f"160000,{git(repo.work, 'rev-parse', 'HEAD')},vendor/sub",
    )
    (repo.work / "more.yaml").write_text("m: 1\n")
    git(repo.work, "add", "more.yaml")
    git(repo.work, "commit", "-qm", "submodule")
    git(repo.work, "push", "-q", "origin", "HEAD:main")
    return git(repo.work, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    "change",
    ["file-to-dir", "dir-to-file", "file-to-link", "link-to-file", "submodule", "attributes", "many"],
)
def test_surprises_fall_back_to_the_full_export(
    change: str, extraction: str, built: list[bool], tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    repo.commit({"x.yaml": "a: 1\n", "d/y.yaml": "b: 2\n", "l.yaml": None, "keep.yaml": "k: 1\n"})
    (repo.work / "l.yaml").symlink_to("x.yaml")
    base = repo.commit({})
    gitsource.fetch(repo.url, base, cache=cache)
    if change == "file-to-dir":
        repo.write({"x.yaml": None, "x.yaml/inner.yaml": "c: 3\n"})
    elif change == "dir-to-file":
        repo.write({"d": None})
        (repo.work / "d").write_text("now a file\n")
    elif change == "file-to-link":
        (repo.work / "x.yaml").unlink()
        (repo.work / "x.yaml").symlink_to("keep.yaml")
    elif change == "link-to-file":
        (repo.work / "l.yaml").unlink()
        (repo.work / "l.yaml").write_text("c: 3\n")
    elif change == "submodule":
        pass
    elif change == "attributes":
        repo.write({".gitattributes": "keep.yaml export-ignore\n"})
    else:
        repo.write({f"many/f{i}.yaml": f"n: {i}\n" for i in range(gitsource.MAX_INCREMENTAL_PATHS + 1)})
    commit = _submodule(repo) if change == "submodule" else repo.commit({})
    snap = gitsource.fetch(repo.url, commit, cache=cache)
    assert built == [False]
    assert tree(snap.root) == full_export(repo.url, commit, tmp_path / "full")
    if change == "attributes":
        assert not (snap.root / "keep.yaml").exists()


def test_a_changed_base_is_not_trusted(built: list[bool], tmp_path: Path) -> None:
    """A kept checkout that no longer holds what its commit's export made (a file gone or
    replaced) is not built upon."""
    repo = GitRepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    first = gitsource.fetch(repo.url, repo.commit({"a.yaml": "a\n", "b.yaml": "b\n"}), cache=cache)
    (first.root / "b.yaml").unlink()
    commit = repo.commit({"a.yaml": "a2\n"})
    snap = gitsource.fetch(repo.url, commit, cache=cache)
    assert built == [False]
    assert tree(snap.root) == full_export(repo.url, commit, tmp_path / "full")


def test_submodules_kept_unchanged_are_empty_directories(built: list[bool], tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    repo.commit({"a.yaml": "a\n"})
    gitsource.fetch(repo.url, _submodule(repo), cache=cache)
    (repo.work / "b.yaml").write_text("b\n")
    git(repo.work, "add", "b.yaml")
    git(repo.work, "commit", "-qm", "b")
    git(repo.work, "push", "-q", "origin", "HEAD:main")
    commit = git(repo.work, "rev-parse", "HEAD")
    snap = gitsource.fetch(repo.url, commit, cache=cache)
    assert built == [True]  # the first was exported whole: there was nothing to build on
    assert (snap.root / "vendor" / "sub").is_dir()
    assert tree(snap.root) == full_export(repo.url, commit, tmp_path / "full")


@pytest.mark.parametrize("name", [b"..", b".", b"a\\..", b"..\\evil"])
def test_a_tree_naming_a_path_outside_falls_back_and_fails_closed(
    name: bytes, built: list[bool], tmp_path: Path
) -> None:
    """A crafted tree (``git mktree`` and ``hash-object --literally`` write what fsck refuses)."""
    repo = GitRepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    gitsource.fetch(repo.url, repo.commit({"a.yaml": "a: 1\n"}), cache=cache)
    blob = bytes.fromhex(git(repo.work, "rev-parse", "HEAD:a.yaml"))
    raw = subprocess.run(
        ["git", "hash-object", "-t", "tree", "-w", "--literally", "--stdin"],
        cwd=repo.work,
        input=b"100644 " + name + b"\0" + blob + b"100644 b.yaml\0" + blob,
        capture_output=True,
        check=True,
    ).stdout.decode()
    inner = raw.strip()
    top = subprocess.run(
        ["git", "mktree"],
        cwd=repo.work,
        input=f"040000 tree {inner}\td\n",
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()
    commit = git(repo.work, "commit-tree", top, "-p", "HEAD", "-m", "crafted")
    git(repo.work, "push", "-q", "-f", "origin", f"{commit}:refs/heads/main")
    try:
        snap = gitsource.fetch(repo.url, "main", cache=cache)
    except AcmError as e:
        assert e.code.id == "KNV2004" and "invalid path" in e.message
    else:  # a name git lets through is kept inside the checkout
        assert name not in (b"..", b".")
        assert tree(snap.root) == full_export(repo.url, commit, tmp_path / "full")
    assert built == ([False] if name in (b"..", b".") else [True])
    assert not (tmp_path / "b.yaml").exists()
    leftovers = [p.name for p in (cache / "git").glob("*/checkouts/*") if "." in p.name]
    assert leftovers == []


def test_git_out_of_time_falls_back_to_the_full_export(
    built: list[bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = GitRepo(tmp_path / "repo")
    cache = tmp_path / "cache"
    gitsource.fetch(repo.url, repo.commit({"a.yaml": "a: 1\n"}), cache=cache)
    commit = repo.commit({"a.yaml": "a: 2\n", "b.yaml": "b: 1\n"})
    monkeypatch.setattr(gittree, "TIMEOUT", 0.0)  # every git run of the fast way stops at once
    snap = gitsource.fetch(repo.url, commit, cache=cache)
    assert built == [False]
    assert tree(snap.root) == full_export(repo.url, commit, tmp_path / "full")
