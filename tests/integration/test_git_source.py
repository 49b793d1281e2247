"""The Git source against real repositories: local bare repos and a smart-HTTP server on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from acm_lite.errors import AcmError
from acm_lite.source import git as gitsource
from acm_lite.source.auth import GitAuth
from tests.support import gitserver

TOKEN = "tok-3f9c1a7e5b"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _commit(work: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", message)
    _git(work, "push", "-q", "origin", "HEAD:main", "--tags")
    return _git(work, "rev-parse", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A bare repository (served as ``repo.git``) and a clone to commit from."""
    bare = tmp_path / "served" / "repo.git"
    bare.mkdir(parents=True)
    _git(bare, "init", "-q", "--bare", "-b", "main")
    work = tmp_path / "work"
    _git(tmp_path, "clone", "-q", str(bare), str(work))
    _git(work, "checkout", "-q", "-b", "main")
    yield bare, work


def test_branch_tag_commit_and_subdirectory(remote: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = remote
    first = _commit(work, {"configs/a.yaml": "one", "other/b.yaml": "x"}, "first")
    _git(work, "tag", "v1")
    second = _commit(work, {"configs/a.yaml": "two"}, "second")
    cache = tmp_path / "cache"

    at_branch = gitsource.fetch(str(bare), "main", "configs", cache=cache)
    assert at_branch.commit == second
    assert (at_branch.root / "a.yaml").read_text() == "two"
    assert not (at_branch.root / "b.yaml").exists()

    at_tag = gitsource.fetch(str(bare), "v1", "configs", cache=cache)
    assert (at_tag.commit, (at_tag.root / "a.yaml").read_text()) == (first, "one")
    at_sha = gitsource.fetch(str(bare), first[:10], cache=cache)
    assert at_sha.commit == first
    assert gitsource.fetch(str(bare), cache=cache).commit == second  # HEAD: the default branch


def test_snapshots_are_immutable_and_refetch_is_incremental(
    remote: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, work = remote
    first = _commit(work, {"a.yaml": "one"}, "first")
    cache = tmp_path / "cache"
    old = gitsource.fetch(str(bare), "main", cache=cache)
    second = _commit(work, {"a.yaml": "two"}, "second")
    new = gitsource.fetch(str(bare), "main", cache=cache)
    assert (old.commit, new.commit) == (first, second)
    assert (old.root / "a.yaml").read_text() == "one"  # the old snapshot did not change
    assert (new.root / "a.yaml").read_text() == "two"
    mirrors = list((cache / "git").iterdir())
    assert len(mirrors) == 1  # one mirror, updated in place
    log = _git(mirrors[0] / "mirror.git", "log", "--format=%H", "main")
    assert log.split() == [second, first]


def test_missing_revision_directory_and_remote(remote: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = remote
    _commit(work, {"a.yaml": "x"}, "first")
    cache = tmp_path / "cache"
    with pytest.raises(AcmError) as missing_ref:
        gitsource.fetch(str(bare), "no-such-branch", cache=cache)
    assert missing_ref.value.code.id == "ACM1102"
    with pytest.raises(AcmError) as missing_dir:
        gitsource.fetch(str(bare), "main", "nope", cache=cache)
    assert missing_dir.value.code.id == "ACM1101"
    with pytest.raises(AcmError) as escaping:
        gitsource.fetch(str(bare), "main", "../..", cache=cache)
    assert escaping.value.code.id == "ACM1101"
    with pytest.raises(AcmError) as gone:
        gitsource.fetch(str(tmp_path / "absent.git"), cache=cache)
    assert gone.value.code.id == "KNV2004"


def test_unreachable_server_is_a_transient_source_error(tmp_path: Path) -> None:
    with gitserver.serve(tmp_path) as server:
        url = gitserver.url(server, "repo.git")
    with pytest.raises(AcmError) as unreachable:  # the server is closed now
        gitsource.fetch(url, cache=tmp_path / "cache")
    assert unreachable.value.code.id == "KNV2004"
    assert unreachable.value.category.value == "transient"


def test_http_server_without_auth(remote: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = remote
    commit = _commit(work, {"a.yaml": "served"}, "first")
    with gitserver.serve(bare.parent) as server:
        snap = gitsource.fetch(gitserver.url(server, "repo.git"), "main", cache=tmp_path / "c")
    assert snap.commit == commit
    assert (snap.root / "a.yaml").read_text() == "served"


def test_http_token_auth(remote: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = remote
    commit = _commit(work, {"a.yaml": "secret stuff"}, "first")
    cache = tmp_path / "cache"
    with gitserver.serve(bare.parent, credentials=("alice", TOKEN)) as server:
        url = gitserver.url(server, "repo.git")
        for auth in (None, GitAuth(token="wrong", username="alice", allow_http=True)):
            with pytest.raises(AcmError) as refused:
                gitsource.fetch(url, cache=cache, auth=auth)
            assert refused.value.code.id == "ACM1103"
            assert TOKEN not in refused.value.render()
        snap = gitsource.fetch(
            url, "main", cache=cache, auth=GitAuth(token=TOKEN, username="alice", allow_http=True)
        )
        assert snap.commit == commit
        assert any(auth for _, _, auth in server.requests)
    # the credential is never written to disk with the mirror
    for path in cache.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in repr(GitAuth(token=TOKEN))


def test_credentials_in_the_url_are_used_but_never_shown_or_stored(
    remote: tuple[Path, Path], tmp_path: Path
) -> None:
    bare, work = remote
    commit = _commit(work, {"a.yaml": "x"}, "first")
    cache = tmp_path / "cache"
    with gitserver.serve(bare.parent, credentials=("alice", TOKEN)) as server:
        host, port = server.server_address[:2]
        loopback = GitAuth(allow_http=True)
        with pytest.raises(AcmError) as failed:
            gitsource.fetch(f"http://alice:{TOKEN}@{host!s}:{port}/missing.git", cache=cache, auth=loopback)
        snap = gitsource.fetch(f"http://alice:{TOKEN}@{host!s}:{port}/repo.git", cache=cache, auth=loopback)
    assert TOKEN not in failed.value.render()
    assert "alice" not in failed.value.render()
    assert snap.commit == commit
    assert TOKEN not in snap.repo
    for path in cache.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("challenge", [False, True], ids=["at-once", "after-auth"])
def test_a_redirect_to_another_host_never_receives_the_token(
    remote: tuple[Path, Path], tmp_path: Path, challenge: bool
) -> None:
    bare, work = remote
    _commit(work, {"a.yaml": "x"}, "first")
    with (
        gitserver.serve(bare.parent, credentials=("alice", TOKEN), host="127.0.0.2") as other,
        gitserver.redirect(gitserver.url(other, ""), challenge=challenge) as first,
        pytest.raises(AcmError) as refused,
    ):
        gitsource.fetch(
            gitserver.url(first, "repo.git"),
            cache=tmp_path / "cache",
            auth=GitAuth(token=TOKEN, username="alice", allow_http=True),
        )
    assert other.requests, "the redirect was not followed"
    assert [auth for _, _, auth in other.requests] == [None] * len(other.requests)
    assert TOKEN not in refused.value.render()
    if challenge:  # the repository's own host did get it, once it asked
        assert any(auth for _, _, auth in first.requests)
        assert refused.value.code.id == "ACM1103"  # git names only the first host then
    else:  # the other host asked: the error names it
        assert refused.value.code.id == "ACM1030" and "127.0.0.2" in refused.value.message


def test_plain_http_sends_no_token_without_the_opt_in(remote: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = remote
    _commit(work, {"a.yaml": "x"}, "first")
    with gitserver.serve(bare.parent, credentials=("alice", TOKEN)) as server:
        url = gitserver.url(server, "repo.git")
        with pytest.raises(AcmError) as withheld:
            gitsource.fetch(url, cache=tmp_path / "cache", auth=GitAuth(token=TOKEN, username="alice"))
        host, port = server.server_address[:2]
        with pytest.raises(AcmError) as in_url:
            gitsource.fetch(
                f"http://alice:{TOKEN}@{host!s}:{port}/repo.git", cache=tmp_path / "cache", auth=GitAuth()
            )
    assert server.requests
    assert [auth for _, _, auth in server.requests] == [None] * len(server.requests)
    for error in (withheld.value, in_url.value):
        assert error.code.id == "ACM1030"
        assert "https" in error.render() and TOKEN not in error.render()


def test_the_users_own_credential_helpers_are_not_asked(
    remote: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper in the user's git configuration would store (or hand out) credentials for the
    repository; acm-lite's configuration resets the list."""
    bare, work = remote
    _commit(work, {"a.yaml": "x"}, "first")
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "asked"
    (home / ".gitconfig").write_text(f'[credential]\n\thelper = "!f() {{ touch {marker}; }}; f"\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    with gitserver.serve(bare.parent, credentials=("alice", TOKEN)) as server:
        gitsource.fetch(
            gitserver.url(server, "repo.git"),
            cache=tmp_path / "cache",
            auth=GitAuth(token=TOKEN, username="alice", allow_http=True),
        )
    assert not marker.exists()


def test_ssh_key_auth_against_a_real_ssh_server(remote: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.support import sshserver

    bare, work = remote
    commit = _commit(work, {"a.yaml": "over ssh"}, "first")
    keys = tmp_path / "keys"
    keys.mkdir()
    client_key, client_pub = sshserver.keypair(keys, "client")
    host_key, host_pub = sshserver.keypair(keys, "host")
    stranger, _ = sshserver.keypair(keys, "stranger")
    with sshserver.serve(bare.parent, client_pub, host_key) as port:
        known_hosts = keys / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub.read_text().strip()}\n")
        url = f"ssh://git@127.0.0.1:{port}/repo.git"
        cache = tmp_path / "cache"
        with pytest.raises(AcmError) as refused:
            gitsource.fetch(url, cache=cache, auth=GitAuth(ssh_key=stranger, known_hosts=known_hosts))
        assert refused.value.code.id == "ACM1103"
        wrong_host = keys / "wrong_hosts"
        wrong_host.write_text(f"[127.0.0.1]:{port} {(keys / 'client.pub').read_text().strip()}\n")
        with pytest.raises(AcmError):  # a host key that does not match is refused too
            gitsource.fetch(url, cache=cache, auth=GitAuth(ssh_key=client_key, known_hosts=wrong_host))
        snap = gitsource.fetch(
            url, "main", cache=cache, auth=GitAuth(ssh_key=client_key, known_hosts=known_hosts)
        )
    assert snap.commit == commit
    assert (snap.root / "a.yaml").read_text() == "over ssh"
