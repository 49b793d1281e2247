"""A plain local directory as a source (no Git): for `vet`, `hydrate` and development."""

from __future__ import annotations

from pathlib import Path

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source.snapshot import Snapshot


def is_git_repository(path: Path) -> bool:
    """A work tree (``.git`` inside) or a bare repository."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def snapshot(path: Path, directory: str = ".") -> Snapshot:
    root = (path / directory).resolve()
    if not root.is_dir():
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND, f"directory {root} does not exist", hint="check the path and --dir"
        )
    return Snapshot(root, str(path), "(local)", None, directory)
