"""The control planes ``acm-lite dev up`` leaves running, found again by later commands."""

from __future__ import annotations

from pathlib import Path

from acm_lite.devcluster import binaries, controlplane, kwok, process
from acm_lite.devcluster.controllers import Controllers
from acm_lite.devcluster.controlplane import Environment
from acm_lite.errors import DEV_ALREADY_RUNNING, DEV_STATE_MISSING, AcmError
from acm_lite.paths import state_dir


def state_root() -> Path:
    """Where the running environment is recorded (outside any checkout)."""
    return state_dir() / "dev"


def _running(env: Environment) -> bool:
    return any(process.alive(pid) for pid in env.pids)


def current() -> Environment:
    """The running environment, or a coded error telling how to start one."""
    env = Environment.load(state_root())
    if env is None or not _running(env):
        raise AcmError(
            DEV_STATE_MISSING, "no local control plane is running", hint="start one with `acm-lite dev up`"
        )
    return env


def full_mode(nodes: int, progress: binaries.Progress) -> Controllers:
    """The controllers of a full cluster (built when absent) with ``nodes`` fake Nodes."""
    return Controllers(
        controller_manager=str(binaries.ensure("kube-controller-manager", progress)),
        scheduler=str(binaries.ensure("kube-scheduler", progress)),
        kwok=str(binaries.ensure("kwok", progress)),
        nodes=nodes,
    )


def up(
    names: list[str], progress: binaries.Progress, *, light: bool = False, nodes: int = kwok.DEFAULT_NODES
) -> Environment:
    """Start detached control planes named ``names``; refuse if some are running already.

    Full clusters (controllers, scheduler, kwok and ``nodes`` fake Nodes) unless ``light``.
    """
    root = state_root()
    existing = Environment.load(root)
    if existing is not None:
        if _running(existing):
            raise AcmError(
                DEV_ALREADY_RUNNING,
                f"local clusters {', '.join(c.name for c in existing.clusters)} are running",
                hint="stop them with `acm-lite dev down`",
            )
        controlplane.stop(existing)  # stale state of a crashed run: clear it
    etcd = binaries.ensure("etcd", progress)
    apiserver = binaries.ensure("kube-apiserver", progress)
    spec = None if light else full_mode(nodes, progress)
    what = "kube-apiserver(s)" if light else "cluster(s) with controllers, scheduler, kwok and nodes"
    progress(f"starting etcd and {len(names)} {what}: {', '.join(names)}")
    return controlplane.start(
        names,
        etcd_binary=str(etcd),
        apiserver_binary=str(apiserver),
        root=root,
        detached=True,
        controllers=spec,
    )


def down() -> Environment | None:
    """Stop whatever ``up`` started; None when nothing was recorded."""
    env = Environment.load(state_root())
    if env is not None:
        controlplane.stop(env)
    return env
