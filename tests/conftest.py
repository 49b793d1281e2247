"""Fixtures shared by every tier: real control planes for integration and end-to-end tests."""

from __future__ import annotations

import functools
import logging
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from kubernetes import client, config

from acm_lite.devcluster import binaries, controlplane
from acm_lite.devcluster.controllers import Controllers
from acm_lite.devcluster.controlplane import APIServer, Environment

FLEET = ["eks-prod", "aks-staging", "baremetal-edge"]
pytest_plugins = ["tests.artifact_servers"]


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # pytest then tears fixtures down, stopping every control plane


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _sigterm)


@pytest.fixture(autouse=True)
def _acm_lite_logging() -> Iterator[None]:
    """A test that runs `serve` in-process configures acm-lite's logger (its own handler, no
    propagation): put it back afterwards, so later tests' caplog sees acm-lite's records."""
    logger = logging.getLogger("acm_lite")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture(scope="session")
def control_plane_binaries() -> dict[str, Path]:
    """etcd and kube-apiserver: from KUBEBUILDER_ASSETS, the cache, or built now."""
    return binaries.ensure_all(["etcd", "kube-apiserver", "kubectl"])


def _start(names: list[str], bins: dict[str, Path]) -> Environment:
    return controlplane.start(
        names, etcd_binary=str(bins["etcd"]), apiserver_binary=str(bins["kube-apiserver"])
    )


@pytest.fixture(scope="session")
def dev_env(control_plane_binaries: dict[str, Path]) -> Iterator[Environment]:
    env = _start(["test"], control_plane_binaries)
    yield env
    controlplane.stop(env)


@pytest.fixture(scope="session")
def control_plane(dev_env: Environment) -> APIServer:
    """One real kube-apiserver (with etcd) for the whole session."""
    return dev_env.clusters[0]


@pytest.fixture(scope="session")
def fleet(control_plane_binaries: dict[str, Path]) -> Iterator[dict[str, APIServer]]:
    """Three real control planes named like the sample fleet, sharing one etcd."""
    env = _start(FLEET, control_plane_binaries)
    yield {c.name: c for c in env.clusters}
    controlplane.stop(env)


@pytest.fixture(scope="session")
def live_env(control_plane_binaries: dict[str, Path]) -> Iterator[Environment]:
    """One full cluster: kube-apiserver with kube-controller-manager, kube-scheduler, kwok and three
    Ready fake nodes, so Deployments roll out, Jobs complete and namespaces finish deleting. The
    other fixtures stay light (API servers only): they start faster and need nothing more."""
    full = binaries.ensure_all(["kube-controller-manager", "kube-scheduler", "kwok"])
    env = controlplane.start(
        ["live"],
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
        controllers=Controllers(
            controller_manager=str(full["kube-controller-manager"]),
            scheduler=str(full["kube-scheduler"]),
            kwok=str(full["kwok"]),
        ),
    )
    yield env
    controlplane.stop(env)


@pytest.fixture(scope="session")
def live_cluster(live_env: Environment) -> APIServer:
    """The API server of the full cluster (``live_env``)."""
    return live_env.clusters[0]


@pytest.fixture(scope="session")
def api_client(control_plane: APIServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=control_plane.kubeconfig)


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test (deleted afterwards; with no controller-manager it stays
    Terminating, which keeps names unique without slowing tests down)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


# Under pytest-xdist (`make test` runs two workers, `--dist loadgroup`) every session fixture starts
# once per worker that asks for it, and a module's fixtures once per worker that runs one of its
# tests. So a module's tests all go to one worker, and every module using one of the costly shared
# control planes below goes to the same worker, which then starts it once. (The scheduler reads the
# modules' text: xdist's own `xdist_group` marks do not reach it under pytest 9.)
SHARED = (("live-cluster", re.compile(r"\blive_(cluster|env)\b")), ("fleet", re.compile(r"[(,]\s*fleet\s*:")))


@functools.cache
def _group(module: str) -> str:
    try:
        text = (Path(__file__).parent.parent / module).read_text()
    except OSError:
        return module
    return next((name for name, uses in SHARED if uses.search(text)), module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedControlPlanes(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid.split("::", 1)[0])

    return SharedControlPlanes(config, log)
