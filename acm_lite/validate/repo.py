"""The hierarchical repo's ``system/`` Repo: KNV1017 (none), KNV2012 (several), KNV1027 (an
unsupported ``spec.version``)."""

from __future__ import annotations

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

SUPPORTED_VERSIONS = frozenset({"1.0.0", "0.1.0"})


def check(objs: list[Manifest]) -> list[Problem]:
    repos = [o for o in objs if o.group_kind == kinds.REPO]
    if not repos:
        return [
            Problem(
                errors.MISSING_REPO,
                "the system/ directory must declare a Repo",
                source="system/",
                hint="add system/repo.yaml with kind: Repo, "
                'apiVersion: configmanagement.gke.io/v1, spec.version: "1.0.0"',
            )
        ]
    if len(repos) > 1:
        return [
            Problem.about(
                errors.MULTIPLE_SINGLETONS,
                f"only one Repo may be declared; found {len(repos)} "
                f"(in {', '.join(r.source for r in repos)})",
                r,
            )
            for r in repos
        ]
    spec = repos[0].spec
    version = spec.get("version")
    if version not in SUPPORTED_VERSIONS:
        return [
            Problem.about(
                errors.UNSUPPORTED_REPO_SPEC_VERSION,
                f'unsupported Repo spec.version {version!r}; use "1.0.0"',
                repos[0],
            )
        ]
    return []
