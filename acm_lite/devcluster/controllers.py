"""What makes a local cluster behave like one: kube-controller-manager, kube-scheduler and kwok.

Each runs beside its cluster's kube-apiserver, on loopback, with leader election off and a client
certificate of its own; kwok turns a few fake Nodes Ready and moves the Pods bound to them through
their lifecycle (``kwok.py``). Started, probed and stopped like etcd and the API server
(``process.py``): children that die with the session, or detached for ``acm-lite dev up``.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acm_lite.devcluster import kubeconfig, kwok, process
from acm_lite.devcluster.kwok import DEFAULT_NODES
from acm_lite.errors import CONTROL_PLANE_START_FAILED, AcmError

CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"
# Every controller enabled by default. The cloud ones (service load balancers, routes, cloud node
# lifecycle) left kube-controller-manager for cloud-controller-manager and are not in 1.37's list;
# none of the rest needs a kubelet: the node lifecycle controller reads the Leases kwok renews, and
# node-ipam allocates nothing without --allocate-node-cidrs.
CONTROLLERS = "*"


@dataclass(frozen=True)
class Controllers:
    """The binaries a full cluster runs beside its API server, and how many fake nodes it gets."""

    controller_manager: str
    scheduler: str
    kwok: str
    nodes: int = DEFAULT_NODES


@dataclass
class Child:
    """One running controller process of a cluster."""

    name: str
    pid: int
    port: int
    binary: str
    log: str


def controller_manager_args(binary: str, directory: Path, port: int) -> list[str]:
    config = directory / "controller-manager.kubeconfig"
    return [
        binary,
        # No delegated authentication or authorization: only /healthz (always allowed) is used, and
        # the API server has no request-header CA for them to look up.
        f"--kubeconfig={config}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={directory / 'controller-manager-certs'}",
        "--leader-elect=false",
        f"--controllers={CONTROLLERS}",
        # Each controller acts as its own ServiceAccount (as in a real cluster), so RBAC sees them
        # apart; tokens for them and for every namespace's `default` come from this key.
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={directory / 'sa.key'}",
        f"--root-ca-file={directory / 'ca.crt'}",
        f"--cluster-signing-cert-file={directory / 'ca.crt'}",
        f"--cluster-signing-key-file={directory / 'ca.key'}",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
        "--profiling=false",
    ]


def scheduler_args(binary: str, directory: Path, port: int) -> list[str]:
    config = directory / "scheduler.kubeconfig"
    return [
        binary,
        # No delegated authentication or authorization: only /healthz (always allowed) is used, and
        # the API server has no request-header CA for them to look up.
        f"--kubeconfig={config}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={directory / 'scheduler-certs'}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def _client_kubeconfig(directory: Path, cluster: str, server: str, user: str) -> Path:
    path = directory / f"{user}.kubeconfig"
    kubeconfig.write(
        path,
        [
            kubeconfig.Entry(
                cluster, server, directory / "ca.crt", directory / f"{user}.crt", directory / f"{user}.key"
            )
        ],
    )
    return path


def start(
    cluster: str, directory: Path, server: str, spec: Controllers, detached: bool
) -> list[tuple[Child, subprocess.Popen[bytes]]]:
    """Start kube-controller-manager, kube-scheduler and kwok for the cluster in ``directory``."""
    _client_kubeconfig(directory, cluster, server, "controller-manager")
    _client_kubeconfig(directory, cluster, server, "scheduler")
    kwok_config = _client_kubeconfig(directory, cluster, server, "kwok")
    stages = kwok.write_config(directory / "kwok-stages.yaml")
    plans = [
        (CONTROLLER_MANAGER, spec.controller_manager, controller_manager_args),
        (SCHEDULER, spec.scheduler, scheduler_args),
    ]
    started: list[tuple[Child, subprocess.Popen[bytes]]] = []
    try:
        for name, binary, args in plans:
            port = process.free_port()
            log = directory / f"{name}.log"
            proc = process.start(args(binary, directory, port), log, detached=detached)
            started.append((Child(name, proc.pid, port, binary, str(log)), proc))
        port = process.free_port()
        log = directory / "kwok.log"
        command = kwok.command(spec.kwok, kubeconfig=kwok_config, config=stages, port=port)
        proc = process.start(command, log, detached=detached)
        started.append((Child(KWOK, proc.pid, port, spec.kwok, str(log)), proc))
    except BaseException:
        for child, _ in started:
            process.stop(child.pid)
        raise
    return started


def _insecure_loopback() -> ssl.SSLContext:
    # The controllers serve /healthz with certificates they generate themselves; only our own
    # loopback children are probed with it, and nothing is sent.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def healthz_url(child: Child) -> str:
    scheme = "http" if child.name == KWOK else "https"
    return f"{scheme}://127.0.0.1:{child.port}/healthz"


def healthy(child: Child) -> bool:
    try:
        with urllib.request.urlopen(healthz_url(child), timeout=2, context=_insecure_loopback()) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _request(
    url: str, context: ssl.SSLContext, method: str = "GET", body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as resp:
            return int(resp.status), json.loads(resp.read(8 << 20) or b"{}")
    except urllib.error.HTTPError as e:
        return int(e.code), {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


def create_nodes(server: str, context: ssl.SSLContext, names: list[str]) -> None:
    """Create the fake Nodes kwok manages (one already there is left as it is)."""
    for name in names:
        status, _ = _request(f"{server}/api/v1/nodes", context, "POST", kwok.node(name))
        if status not in (201, 409):
            raise AcmError(
                CONTROL_PLANE_START_FAILED,
                f"creating the fake Node {name} failed ({f'HTTP {status}' if status else 'no answer'})",
                subject=f"{server}/api/v1/nodes",
            )


def nodes_ready(server: str, context: ssl.SSLContext, names: list[str]) -> bool:
    """Whether every named Node reports Ready=True."""
    status, body = _request(f"{server}/api/v1/nodes", context)
    if status != 200:
        return False
    ready = {
        item.get("metadata", {}).get("name")
        for item in body.get("items", [])
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in item.get("status", {}).get("conditions") or []
        )
    }
    return set(names) <= ready


def default_service_account(server: str, context: ssl.SSLContext) -> bool:
    """Whether the ServiceAccount controller has created ``default`` in the ``default`` namespace."""
    status, _ = _request(f"{server}/api/v1/namespaces/default/serviceaccounts/default", context)
    return status == 200


def ready_probe(server: str, context: ssl.SSLContext, nodes: list[str]) -> Callable[[], bool]:
    """The cluster-level readiness check once every controller is healthy."""
    return lambda: nodes_ready(server, context, nodes) and default_service_account(server, context)
