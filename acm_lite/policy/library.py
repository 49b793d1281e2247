"""Where policies come from: the shipped library (``policies/``, opt-in per bundle), extra
directories (``--policies DIR``), and the synced repository itself.

The library is package data, ``acm_lite/policies``: in a checkout that is a symbolic link to the
repository's ``policies/`` (its source of truth), in a wheel the files themselves, so one lookup
through importlib.resources serves both."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.objects import Manifest
from acm_lite.parse import reader
from acm_lite.policy.model import is_policy_object

SKIPPED_DIRS = frozenset({"samples", "tests"})


@dataclass(frozen=True)
class PolicySources:
    bundles: tuple[str, ...] = ()
    directories: tuple[Path, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.bundles and not self.directories


def root() -> Path:
    """The shipped library: ``$ACM_LITE_POLICIES``, else the package's ``policies`` data."""
    explicit = os.environ.get("ACM_LITE_POLICIES")
    if explicit:
        return Path(explicit)
    return Path(str(resources.files("acm_lite").joinpath("policies")))


def bundles() -> list[str]:
    folder = root() / "bundles"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def read_directory(directory: Path) -> list[Manifest]:
    """Every ConstraintTemplate, Constraint and ExpansionTemplate under ``directory`` (sample and
    test folders, and gator Suite files, are skipped)."""
    if not directory.is_dir():
        raise AcmError(
            errors.POLICY_SUITE_INVALID, f"policy directory {directory} does not exist", path=str(directory)
        )
    result = reader.read(directory)
    if result.problems:
        first = result.problems[0]
        raise AcmError(first.code, first.message, path=str(directory / (first.source or "")))
    return [
        m
        for m in result.manifests
        if is_policy_object(m) and not SKIPPED_DIRS & set(m.source.split("/")[:-1])
    ]


def load(sources: PolicySources) -> list[Manifest]:
    """The policy objects the sources name; bundles bring every library template with them."""
    objs: list[Manifest] = []
    if sources.bundles:
        known = bundles()
        for name in sources.bundles:
            if name not in known:
                raise AcmError(
                    errors.POLICY_SUITE_INVALID,
                    f"no policy bundle named {name!r}",
                    hint=f"bundles: {', '.join(known)}",
                )
        objs += read_directory(root() / "templates") + read_directory(root() / "expansion")
        for name in sources.bundles:
            objs += read_directory(root() / "bundles" / name)
    for directory in sources.directories:
        objs += read_directory(directory)
    return objs
