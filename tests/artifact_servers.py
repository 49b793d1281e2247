"""Fixtures serving Helm charts and OCI artifacts on loopback: distribution's registry (plain, and
with basic auth over TLS, and
with token auth and a token server over TLS) for the whole run, and a Helm repository per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from acm_lite.devcluster import binaries
from tests.support import registry as registry_server
from tests.support.helmrepo import HelmRepository


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    return binaries.ensure("helm")


@pytest.fixture(scope="session")
def registry_binary() -> Path:
    return binaries.ensure("registry")


@pytest.fixture(scope="session")
def oci_registry(
    registry_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[registry_server.Registry]:
    """A registry on loopback over plain http, without authentication."""
    started = registry_server.start(registry_binary, tmp_path_factory.mktemp("registry"))
    yield started
    registry_server.stop(started)


@pytest.fixture(scope="session")
def secure_registry(
    registry_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[registry_server.Registry]:
    """A registry on loopback over TLS (its own CA) that asks for a user name and password."""
    started = registry_server.start(
        registry_binary, tmp_path_factory.mktemp("registry-auth"), auth=True, use_tls=True
    )
    yield started
    registry_server.stop(started)


@pytest.fixture(scope="session")
def token_registry(
    registry_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[registry_server.Registry]:
    """A registry on loopback over TLS that accepts only the JWTs of a token server beside it
    (distribution's ``auth: token``), which issues them for a user name and password."""
    started = registry_server.start(
        registry_binary, tmp_path_factory.mktemp("registry-token"), use_tls=True, token=True
    )
    yield started
    registry_server.stop(started)


@pytest.fixture
def helm_repository(tmp_path: Path) -> Iterator[HelmRepository]:
    served = tmp_path / "helm-repo"
    served.mkdir()
    repo = HelmRepository(served)
    yield repo
    repo.close()
