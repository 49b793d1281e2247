"""A Git repository for tests: a bare remote plus a work tree to commit YAML into."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.unit.repo_builder import write


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class GitRepo:
    def __init__(self, root: Path):
        self.bare = root / "remote.git"
        self.work = root / "work"
        self.bare.mkdir(parents=True)
        git(self.bare, "init", "-q", "--bare", "-b", "main")
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return str(self.bare)

    def write(self, files: dict[str, Any]) -> None:
        """Write files into the work tree (as repo_builder.write does); None deletes."""
        for rel in [r for r, content in files.items() if content is None]:
            path = self.work / rel
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        write(self.work, {r: c for r, c in files.items() if c is not None})

    def commit(self, files: dict[str, Any], message: str = "change") -> str:
        """Write (None deletes), commit and push; the new commit's SHA."""
        self.write(files)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")
