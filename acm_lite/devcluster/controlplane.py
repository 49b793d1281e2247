"""Local control planes: one etcd shared by named kube-apiservers, each with its own prefix.

Started as controller-runtime's envtest starts them: loopback only, generated certificates, RBAC
authorization, an admin client certificate in ``system:masters``, a kubeconfig per cluster. That is
the light mode. The full mode also runs kube-controller-manager, kube-scheduler and kwok beside
each API server, with a few fake Nodes (``controllers.py``), so workloads roll out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from acm_lite.devcluster import certs, controllers, kubeconfig, kwok, process
from acm_lite.devcluster.controllers import Child, Controllers

_TEMP_PREFIX = "acm-lite-dev-"


def start_timeout() -> float:
    """Seconds a server may take to become ready (2 slow cores need far more than envtest's 20)."""
    return float(os.environ.get("ACM_LITE_START_TIMEOUT", "120"))


@dataclass
class EtcdServer:
    """A running etcd on loopback."""

    pid: int
    port: int
    peer_port: int
    data_dir: str
    binary: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class APIServer:
    """A running kube-apiserver and the files its clients need."""

    name: str
    pid: int
    port: int
    dir: str
    binary: str
    # Full mode: kube-controller-manager, kube-scheduler and kwok, and the fake Nodes.
    children: list[Child] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    # kube-apiserver flags beyond the usual ones (a test's watch cache or compaction settings);
    # a restart passes them again
    flags: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def full(self) -> bool:
        return bool(self.children)

    @property
    def pids(self) -> list[int]:
        return [self.pid, *(c.pid for c in self.children)]

    @property
    def kubeconfig(self) -> str:
        return str(Path(self.dir) / "kubeconfig")

    def file(self, name: str) -> str:
        return str(Path(self.dir) / name)


@dataclass
class Environment:
    """Everything one ``start`` launched; serialisable so ``acm-lite dev down`` can stop it later."""

    root: str
    etcd: EtcdServer
    clusters: list[APIServer] = field(default_factory=list)

    def cluster(self, name: str) -> APIServer | None:
        return next((c for c in self.clusters if c.name == name), None)

    @property
    def merged_kubeconfig(self) -> str:
        return str(Path(self.root) / "kubeconfig")

    def save(self) -> None:
        (Path(self.root) / "state.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, root: Path) -> Environment | None:
        """The environment saved under ``root``; None when there is none, or when its state file is
        not one this version can read (another acm-lite version's, or damaged): such a directory is
        left alone rather than crashing whoever looks at it."""
        try:
            data = json.loads((root / "state.json").read_text())
            return cls(
                root=data["root"],
                etcd=EtcdServer(**data["etcd"]),
                clusters=[
                    APIServer(**{**c, "children": [Child(**child) for child in c.get("children", [])]})
                    for c in data["clusters"]
                ],
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @property
    def pids(self) -> list[int]:
        return [self.etcd.pid, *(pid for c in self.clusters for pid in c.pids)]


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def admin_ssl_context(server: APIServer) -> ssl.SSLContext:
    """TLS context trusting the cluster CA and presenting the admin client certificate."""
    context = ssl.create_default_context(cafile=server.file("ca.crt"))
    context.load_cert_chain(server.file("admin.crt"), server.file("admin.key"))
    return context


def _start_etcd(root: Path, binary: str, detached: bool) -> tuple[EtcdServer, subprocess.Popen[bytes]]:
    data_dir = root / "etcd-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port, peer = process.free_port(), process.free_port()
    args = [
        binary,
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://127.0.0.1:{port}",
        f"--advertise-client-urls=http://127.0.0.1:{port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=default=http://127.0.0.1:{peer}",
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=8589934592",
    ]
    proc = process.start(args, root / "etcd.log", detached=detached)
    return EtcdServer(proc.pid, port, peer, str(data_dir), binary), proc


def _write_certs(directory: Path, name: str) -> None:
    bundle = certs.generate(name)
    files = {
        "ca.crt": bundle.ca.cert,
        "apiserver.crt": bundle.serving.cert,
        "apiserver.key": bundle.serving.key,
        "admin.crt": bundle.admin.cert,
        "admin.key": bundle.admin.key,
        "sa.key": bundle.service_account.key,
        "sa.pub": bundle.service_account.public_key,
        # The controller-manager signs certificates with the CA, and each controller has a client
        # certificate of its own.
        "ca.key": bundle.ca.key,
        "controller-manager.crt": bundle.controller_manager.cert,
        "controller-manager.key": bundle.controller_manager.key,
        "scheduler.crt": bundle.scheduler.cert,
        "scheduler.key": bundle.scheduler.key,
        "kwok.crt": bundle.kwok.cert,
        "kwok.key": bundle.kwok.key,
    }
    for file_name, data in files.items():
        path = directory / file_name
        path.write_bytes(data)
        path.chmod(0o600)


AUDIT_LOG = "audit.log"
# writes only, at Metadata level (who, what, never a body), without the Lease renewals and Events
# every controller makes
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources:
  - group: coordination.k8s.io
    resources: [leases]
  - group: ""
    resources: [events]
  - group: events.k8s.io
    resources: [events]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
"""


def _audit_policy(directory: Path) -> Path:
    path = directory / "audit-policy.yaml"
    path.write_text(AUDIT_POLICY, encoding="utf-8")
    return path


def apiserver_args(
    binary: str,
    directory: Path,
    etcd_url: str,
    name: str,
    port: int,
    *,
    full: bool,
    flags: Sequence[str] = (),
) -> list[str]:
    """kube-apiserver's command line; the full mode admits Pods with their ServiceAccount.
    ``flags`` come last, so one of them overrides a default given earlier."""
    return [
        binary,
        f"--etcd-servers={etcd_url}",
        f"--etcd-prefix=/registry-{name}",
        f"--secure-port={port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # 1.37 refuses a loopback advertise address for the endpoint reconciler; the kubernetes
        # Service endpoints are useless without pods anyway.
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={directory / 'apiserver.crt'}",
        f"--tls-private-key-file={directory / 'apiserver.key'}",
        f"--client-ca-file={directory / 'ca.crt'}",
        f"--service-account-issuer=https://127.0.0.1:{port}/",
        f"--service-account-key-file={directory / 'sa.pub'}",
        f"--service-account-signing-key-file={directory / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        # Without a controller-manager no `default` ServiceAccount is ever created, and the
        # ServiceAccount admission plugin would refuse every Pod.
        *([] if full else ["--disable-admission-plugins=ServiceAccount"]),
        "--authorization-mode=RBAC",
        # who changed what: `serve --audit-log <dir>/audit.log` names the user behind a drift
        f"--audit-policy-file={_audit_policy(directory)}",
        f"--audit-log-path={directory / AUDIT_LOG}",
        "--audit-log-format=json",
        "--audit-log-maxsize=16",  # MiB, then rotated
        "--audit-log-maxbackup=1",
        f"--cert-dir={directory / 'certs'}",
        "--profiling=false",
        *flags,
    ]


def _start_apiserver(
    root: Path,
    name: str,
    binary: str,
    etcd: EtcdServer,
    detached: bool,
    *,
    port: int | None = None,
    full: bool = False,
    flags: Sequence[str] = (),
) -> tuple[APIServer, subprocess.Popen[bytes]]:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "ca.crt").exists():  # a restart keeps its certificates and kubeconfig
        _write_certs(directory, name)
    port = port or process.free_port()
    args = apiserver_args(binary, directory, etcd.url, name, port, full=full, flags=flags)
    proc = process.start(args, directory / "apiserver.log", detached=detached)
    server = APIServer(name, proc.pid, port, str(directory), binary, flags=list(flags))
    kubeconfig.write(
        Path(server.kubeconfig),
        [
            kubeconfig.Entry(
                name, server.url, directory / "ca.crt", directory / "admin.crt", directory / "admin.key"
            )
        ],
    )
    return server, proc


def _apiserver_ready(server: APIServer) -> bool:
    context = admin_ssl_context(server)
    return _http_ok(f"{server.url}/readyz", context) and _http_ok(
        f"{server.url}/api/v1/namespaces/default", context
    )


def start(
    names: list[str],
    *,
    etcd_binary: str,
    apiserver_binary: str,
    root: Path | None = None,
    detached: bool = False,
    controllers: Controllers | None = None,
    apiserver_flags: Sequence[str] = (),
) -> Environment:
    """Start one etcd and a kube-apiserver per name; return once every server is ready.

    With ``controllers`` (the full mode), each cluster also gets kube-controller-manager,
    kube-scheduler, kwok and ``controllers.nodes`` fake Nodes, and is ready once each of them
    answers its health check, every Node is Ready and the ``default`` ServiceAccount exists.
    Without (the light mode), only the API servers run. ``apiserver_flags`` are added to every
    kube-apiserver's command line. On any failure everything already started is stopped and the
    directory removed.
    """
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"cluster names must be distinct and non-empty: {names}")
    sweep_stale()
    base = root or Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
    base.mkdir(parents=True, exist_ok=True)
    etcd, etcd_proc = _start_etcd(base, etcd_binary, detached)
    env = Environment(root=str(base), etcd=etcd)
    try:
        process.wait_ready(
            "etcd", etcd_proc, base / "etcd.log", lambda: _http_ok(f"{etcd.url}/health"), start_timeout()
        )
        full = controllers is not None
        started = [
            _start_apiserver(base, n, apiserver_binary, etcd, detached, full=full, flags=apiserver_flags)
            for n in names
        ]
        env.clusters = [server for server, _ in started]
        for server, proc in started:
            process.wait_ready(
                f"kube-apiserver {server.name}",
                proc,
                Path(server.dir) / "apiserver.log",
                lambda s=server: _apiserver_ready(s),  # type: ignore[misc]
                start_timeout(),
            )
        if controllers is not None:
            _start_controllers(env, controllers, detached)
        kubeconfig.write(
            Path(env.merged_kubeconfig),
            [
                kubeconfig.Entry(
                    c.name,
                    c.url,
                    Path(c.file("ca.crt")),
                    Path(c.file("admin.crt")),
                    Path(c.file("admin.key")),
                )
                for c in env.clusters
            ],
        )
        env.save()
    except BaseException:
        stop(env)
        raise
    return env


def _start_controllers(env: Environment, spec: Controllers, detached: bool) -> None:
    """Start every cluster's controllers, then wait for each and for its Nodes to be Ready."""
    running: list[tuple[APIServer, Child, subprocess.Popen[bytes]]] = []
    for server in env.clusters:
        for child, proc in controllers.start(server.name, Path(server.dir), server.url, spec, detached):
            server.children.append(child)  # recorded at once, so a failure stops it too
            running.append((server, child, proc))
        server.nodes = kwok.node_names(spec.nodes)
    env.save()
    for server, child, proc in running:
        process.wait_ready(
            f"{child.name} {server.name}",
            proc,
            Path(child.log),
            lambda c=child: controllers.healthy(c),  # type: ignore[misc]
            start_timeout(),
        )
    for server in env.clusters:
        context = admin_ssl_context(server)
        controllers.create_nodes(server.url, context, server.nodes)
    for server in env.clusters:
        kwok_proc = next(proc for s, c, proc in running if s is server and c.name == controllers.KWOK)
        process.wait_ready(
            f"{len(server.nodes)} Ready node(s) and the default ServiceAccount in {server.name}",
            kwok_proc,
            Path(server.dir) / "kwok.log",
            controllers.ready_probe(server.url, admin_ssl_context(server), server.nodes),
            start_timeout(),
        )


def stop_apiserver(env: Environment, name: str) -> None:
    """Kill one cluster's API server (SIGKILL, as a crash would); its data stays in etcd."""
    server = env.cluster(name)
    if server is None:
        raise ValueError(f"no cluster {name!r}")
    if _is_ours(server.pid, server.binary):
        os.kill(server.pid, signal.SIGKILL)
        process.stop(server.pid, grace=5)


def restart_apiserver(env: Environment, name: str, detached: bool = False) -> APIServer:
    """Start a stopped cluster's API server again, same port, certificates and data."""
    old = env.cluster(name)
    if old is None:
        raise ValueError(f"no cluster {name!r}")
    server, proc = _start_apiserver(
        Path(env.root), name, old.binary, env.etcd, detached, port=old.port, full=old.full, flags=old.flags
    )
    server.children, server.nodes = old.children, old.nodes  # they reconnect on their own
    process.wait_ready(
        f"kube-apiserver {name}",
        proc,
        Path(server.dir) / "apiserver.log",
        lambda: _apiserver_ready(server),
        start_timeout(),
    )
    env.clusters[env.clusters.index(old)] = server
    env.save()
    return server


def sweep_stale(parent: Path | None = None) -> list[str]:
    """Remove the directories of environments whose every server is gone.

    A run killed outright (SIGKILL) cannot clean up: its servers die with it (parent-death signal),
    and the next start removes what it left on disk.
    """
    removed = []
    for candidate in Path(parent or tempfile.gettempdir()).glob(_TEMP_PREFIX + "*"):
        env = Environment.load(candidate)
        pids = [] if env is None else env.pids
        if env is not None and not any(process.alive(p) for p in pids):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(str(candidate))
    return removed


def _is_ours(pid: int, binary: str) -> bool:
    """Guard against pid reuse: only signal a process still running the binary we started."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, UnicodeDecodeError):
        return False
    return cmdline == binary


def stop(env: Environment) -> None:
    """Stop every server of ``env`` (controllers, then API servers, then etcd) and remove its
    directory."""
    # each tier at once (every cluster's controllers, then every API server), so stopping a
    # fleet takes as long as its slowest server rather than the sum of them
    process.stop_all([c.pid for s in env.clusters for c in reversed(s.children) if _is_ours(c.pid, c.binary)])
    process.stop_all([s.pid for s in env.clusters if _is_ours(s.pid, s.binary)])
    if _is_ours(env.etcd.pid, env.etcd.binary):
        process.stop(env.etcd.pid)
    shutil.rmtree(env.root, ignore_errors=True)
