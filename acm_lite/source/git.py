"""Fetch a Git revision into an immutable snapshot, through a local mirror so refetches are
incremental. GitPython drives the git binary; credentials reach it only through its environment.

Layout of the cache: ``<cache>/git/<hash of url>/mirror.git`` (a ``--mirror`` clone) and
``.../checkouts/<commit>/`` (an export of one commit, reused while it is among the newest).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import git

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source import gittree
from acm_lite.source.auth import ALLOW_HTTP_ENV, GitAuth, strip_userinfo
from acm_lite.source.snapshot import Snapshot

KEEP_CHECKOUTS = 5
MAX_INCREMENTAL_PATHS = 3000  # past this many changed paths a whole export costs about the same
MAX_TREE_ENTRIES = 500_000
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TIMEOUT = float(os.environ.get("ACM_LITE_GIT_TIMEOUT", "300"))
_AUTH_SIGNS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "permission denied",
    "403",
    "401",
    "invalid username or password",
    "terminal prompts disabled",
)
Progress = Callable[[str], None]
_ASKING = re.compile(r"could not read (?:username|password) for '([^']+)'", re.IGNORECASE)
_log = logging.getLogger(__name__)


def _classify(stderr: str, url: str) -> AcmError:
    stderr = re.sub(r"^\s*stderr: '(.*)'\s*$", r"\1", stderr, flags=re.DOTALL)
    lowered = stderr.lower()
    if any(sign in lowered for sign in _AUTH_SIGNS):
        return AcmError(
            errors.SOURCE_AUTH_FAILED,
            f"the Git remote {url} refused the credentials",
            hint="check the token (ACM_LITE_GIT_TOKEN) or SSH key, and its access",
        )
    return AcmError(
        errors.SOURCE_ERROR,
        f"cannot fetch from {url}: {stderr.strip()[-500:]}",
        hint="check the URL and that the Git server is reachable",
    )


def _extract(archive: tarfile.TarFile, staging: Path) -> None:
    """``extractall(filter="tar")``. CPython before 3.11.4 (Debian bookworm's 3.11.2, which the
    container image runs) has no extraction filters: the "tar" filter's checks are made here, one
    member at a time as the filter does (a link extracted earlier is followed)."""
    if hasattr(tarfile, "tar_filter"):
        archive.extractall(staging, filter="tar")
        return
    root = os.path.realpath(staging)
    for member in archive:
        name = member.name.lstrip("/")
        if os.path.commonpath([root, os.path.realpath(os.path.join(root, name))]) != root:
            raise tarfile.TarError(f"{member.name!r} would be extracted outside the checkout")
        member.name = name
        if member.isreg() or member.isdir():
            member.mode &= 0o755  # no setuid, setgid, sticky, group or other write bits
        archive.extract(member, root, set_attrs=not member.isdir())


def _dir_mode() -> int:
    """The mode the export's extraction leaves on a directory: git archive writes 0775, which
    the "tar" filter masks to 0755; by hand (no filters) directories stay as tarfile makes them."""
    return 0o755 if hasattr(tarfile, "tar_filter") else 0o700


def _build_from(mirror: Path, base: Path, commit: str, staging: Path) -> None:
    """``commit``'s files in ``staging``, as ``git archive`` and ``_extract`` would make them,
    from the checkout ``base`` of another commit. Raises ``gittree.TreeError`` on any surprise."""
    if (mirror / "info" / "attributes").exists():
        raise gittree.TreeError("the mirror has attributes, which git archive applies")
    changes = gittree.diff(mirror, base.name, commit, limit=MAX_INCREMENTAL_PATHS)
    if changes is None:
        raise gittree.TreeError("no diff, or too many changed paths")
    listing = gittree.entries(mirror, commit, limit=MAX_TREE_ENTRIES)
    if listing is None:
        raise gittree.TreeError("cannot list the commit's tree")
    directories = _directories(listing)
    written = _written(changes, base, directories)
    if not written <= {e.path for e in listing}:
        raise gittree.TreeError("the diff names paths the tree does not hold")
    mode = _dir_mode()
    here, there = os.fspath(base), os.fspath(staging)  # plain strings: a thousand joins add up
    for directory in sorted(directories):  # a parent sorts before its children
        os.mkdir(os.path.join(there, directory), mode)
        os.chmod(os.path.join(there, directory), mode)
    for entry in listing:
        if entry.path not in written and entry.mode != gittree.GITLINK:
            _link(os.path.join(here, entry.path), os.path.join(there, entry.path), entry.mode)
    gittree.write_blobs(mirror, [e for e in listing if e.path in written], staging)


def _directories(listing: list[gittree.Entry]) -> set[str]:
    """The directories the export makes: those holding an entry, and submodules (empty). Raises
    when a path would escape, a name is both a file and a directory, or the tree has attributes
    (git archive applies ``export-ignore`` and ``export-subst``)."""
    directories: set[str] = set()
    files: set[str] = set()
    for entry in listing:
        if not gittree.safe_path(entry.path) or entry.path.rsplit("/", 1)[-1] == ".gitattributes":
            raise gittree.TreeError(f"{entry.path!r} would escape, or holds attributes")
        if entry.mode not in (*gittree.REGULAR, gittree.SYMLINK, gittree.GITLINK):
            raise gittree.TreeError(f"{entry.path} has mode {entry.mode}")
        parts = entry.path.split("/")
        directories.update("/".join(parts[:i]) for i in range(1, len(parts)))
        (directories if entry.mode == gittree.GITLINK else files).add(entry.path)
    if directories & files:
        raise gittree.TreeError("a path is both a file and a directory")
    return directories


def _written(changes: list[gittree.Change], base: Path, directories: set[str]) -> set[str]:
    """The paths to write from Git: added or changed files. Raises on a type change (file,
    directory, link, submodule) or a path that would escape."""
    written = set()
    for change in changes:
        if not gittree.safe_path(change.path):
            raise gittree.TreeError(f"path {change.path!r} would leave the checkout")
        if change.status not in ("A", "D", "M") or gittree.GITLINK in (change.old_mode, change.new_mode):
            raise gittree.TreeError(f"{change.path} changed type or is a submodule")
        if change.status == "A" and os.path.lexists(base / change.path):
            raise gittree.TreeError(f"{change.path} was a directory")
        if change.status == "D" and change.path in directories:
            raise gittree.TreeError(f"{change.path} became a directory")
        if change.new_mode != gittree.MISSING:
            written.add(change.path)
    return written


def _link(source: str, target: str, mode: str) -> None:
    """An unchanged file hard-linked from the older checkout, an unchanged link made again;
    raises when ``source`` is not what the older commit's export made."""
    info = os.lstat(source)
    if mode == gittree.SYMLINK:
        if not stat.S_ISLNK(info.st_mode):
            raise gittree.TreeError(f"{source} is not the link it should be")
        os.symlink(os.readlink(os.fsencode(source)), os.fsencode(target))
    elif stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == gittree.REGULAR[mode]:
        os.link(source, target, follow_symlinks=False)
    else:
        raise gittree.TreeError(f"{source} is not the file it should be")


class GitSource:
    """One remote (URL or local path) with its mirror in ``cache``."""

    def __init__(self, url: str, cache: Path, auth: GitAuth | None = None):
        # credentials written in the URL go to git's credential helper, never into the mirror
        self.auth = (auth or GitAuth()).with_url_credentials(url)
        self.url = strip_userinfo(url)
        self.display_url = self.url
        key = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.home = cache / "git" / key
        self.mirror = self.home / "mirror.git"

    def _git(self, *args: str, cwd: Path | None = None, binary: bool = False) -> str | bytes:
        runner = git.Git(str(cwd or self.home))
        env = self.auth.env(self.url)
        try:
            with runner.custom_environment(**env):
                out = runner.execute(["git", *args], kill_after_timeout=TIMEOUT, stdout_as_string=not binary)
                return out if isinstance(out, str | bytes) else ""
        except git.GitCommandError as e:
            stderr = self.auth.scrub(str(e.stderr or e))
            raise self._explained(_classify(stderr, self.display_url), stderr) from None
        except git.GitCommandNotFound as e:
            raise AcmError(errors.SOURCE_ERROR, "git is not installed", hint="install git") from e

    def _explained(self, error: AcmError, stderr: str) -> AcmError:
        """An authentication failure where acm-lite held the token back says why: another host
        (a redirect) asked for it, or the repository is on plain http."""
        if error.code is not errors.SOURCE_AUTH_FAILED:
            return error
        asking = _ASKING.search(stderr)
        other = urlsplit(asking.group(1)).netloc if asking else ""
        if self.auth.token and other and other != urlsplit(self.url).netloc:
            return AcmError(
                errors.CREDENTIALS_WITHHELD,
                f"the Git remote {self.display_url} redirected to {other}, which asked "
                "for credentials; they are sent only to the repository's own host",
                hint="use the URL the server redirects to, if that host is trusted",
            )
        if not self.auth.withheld(self.url):
            return error
        return AcmError(
            errors.CREDENTIALS_WITHHELD,
            f"the Git remote {self.display_url} asked for credentials; acm-lite sends them only over https",
            hint=f"use an https:// URL, or set "
            f"{ALLOW_HTTP_ENV}=1 if the network to the Git server is trusted",
        )

    def update(self) -> None:
        """Create the mirror, or bring it up to date (only new objects travel)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if (self.mirror / "HEAD").exists():
            self._git("--git-dir", str(self.mirror), "fetch", "--prune", "--tags", "origin")
            return
        partial = self.home / "mirror.partial"
        shutil.rmtree(partial, ignore_errors=True)
        self._git("clone", "--mirror", "--quiet", self.url, str(partial))
        os.replace(partial, self.mirror)

    def resolve(self, revision: str) -> str:
        """The commit SHA of a branch, tag, SHA or ``HEAD``."""
        candidates = (
            [revision]
            if revision == "HEAD"
            else [f"refs/heads/{revision}", f"refs/tags/{revision}", revision]
        )
        for ref in candidates:
            try:
                out = self._git(
                    "--git-dir", str(self.mirror), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"
                )
                return str(out).strip()
            except AcmError:
                continue
        raise AcmError(
            errors.REVISION_NOT_FOUND,
            f"revision {revision!r} is neither a branch, a tag nor a commit of {self.display_url}",
            hint="check --revision",
        )

    def checkout(self, commit: str) -> Path:
        """The files of ``commit``, exported once and then reused. Built from the newest kept
        checkout when there is one (see ``_incremental``), else exported whole."""
        target = self.home / "checkouts" / commit
        if target.is_dir():
            os.utime(target)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{commit}.", dir=target.parent))
        try:
            base = self._newest_checkout()
            if base is None or not self._incremental(base, commit, staging):
                if base is not None:  # start again from nothing
                    shutil.rmtree(staging, ignore_errors=True)
                    staging = Path(tempfile.mkdtemp(prefix=f"{commit}.", dir=target.parent))
                self._export(commit, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            os.replace(staging, target)
        except OSError:  # another process exported it first
            shutil.rmtree(staging, ignore_errors=True)
        self._prune_checkouts()
        return target

    def _export(self, commit: str, staging: Path) -> None:
        """Every file of ``commit`` through ``git archive`` (the umask pinned: modes do not depend
        on the user's git configuration)."""
        tree = str(self._git("--git-dir", str(self.mirror), "rev-parse", f"{commit}^{{tree}}"))
        if tree.strip() == EMPTY_TREE:  # git archive of an empty tree is no readable tar
            return
        data = self._git(
            "--git-dir",
            str(self.mirror),
            "-c",
            "tar.umask=0002",
            "archive",
            "--format=tar",
            commit,
            binary=True,
        )
        assert isinstance(data, bytes)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            _extract(archive, staging)  # links are kept; the reader vets them

    def _newest_checkout(self) -> Path | None:
        """The most recently used checkout, or None (none kept, or they cannot be listed)."""
        try:
            kept = [
                (p.stat().st_mtime, p)
                for p in (self.home / "checkouts").iterdir()
                if gittree.is_object_name(p.name) and p.is_dir()
            ]
        except OSError:
            return None
        return max(kept)[1] if kept else None

    def _incremental(self, base: Path, commit: str, staging: Path) -> bool:
        """Build ``commit``'s checkout in ``staging`` from ``base`` (another commit's checkout):
        unchanged files hard-linked (checkouts are never written to), changed ones written from
        Git. False, with ``staging`` in any state, on anything a full export would make
        differently or that is cheaper exported whole."""
        try:
            _build_from(self.mirror, base, commit, staging)
        except (gittree.TreeError, OSError, ValueError, KeyError) as e:
            _log.debug("exporting %s whole, not from %s: %s", commit[:12], base.name[:12], e)
            return False
        return True

    def _prune_checkouts(self) -> None:
        checkouts = sorted(
            (p for p in (self.home / "checkouts").iterdir() if "." not in p.name),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in checkouts[KEEP_CHECKOUTS:]:
            shutil.rmtree(old, ignore_errors=True)


def fetch(
    url: str,
    revision: str = "HEAD",
    directory: str = ".",
    *,
    cache: Path,
    auth: GitAuth | None = None,
    progress: Progress = lambda _m: None,
) -> Snapshot:
    """``url`` at ``revision``, narrowed to ``directory``, as an immutable snapshot.

    One fetch at a time per mirror (threads of a fleet, or several processes), so concurrent
    syncs of the same repository share one mirror safely.
    """
    source = GitSource(url, cache, auth)
    progress(f"fetching {source.display_url}")
    source.home.mkdir(parents=True, exist_ok=True)
    with (source.home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source.update()
        commit = source.resolve(revision)
        root = source.checkout(commit)
    narrowed = (root / directory).resolve()
    if not narrowed.is_dir() or not (narrowed == root.resolve() or root.resolve() in narrowed.parents):
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND,
            f"directory {directory!r} does not exist at {revision} ({commit[:12]}) of {source.display_url}",
            hint="check --dir",
        )
    plain = narrowed == Path(os.path.normpath(root.resolve() / directory))  # no link on the way
    return Snapshot(
        narrowed, source.display_url, revision, commit, directory, git_dir=source.mirror if plain else None
    )
