"""A Git repository for tests: a bare remote plus a work tree to commit YAML into."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


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
        for rel, content in files.items():
            path = self.work / rel
            if content is None:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            elif isinstance(content, list):
                path.write_text(yaml.safe_dump_all(content, sort_keys=False))
            else:
                path.write_text(yaml.safe_dump(content, sort_keys=False))

    def commit(self, files: dict[str, Any], message: str = "change") -> str:
        """Write (None deletes), commit and push; the new commit's SHA."""
        self.write(files)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")
