"""Local control planes: one etcd shared by named kube-apiservers, each with its own prefix.

Started as controller-runtime's envtest starts them: loopback only, generated certificates, RBAC
authorization, an admin client certificate in ``system:masters``, a kubeconfig per cluster.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from acm_lite.devcluster import certs, kubeconfig, process

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

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

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
        try:
            data = json.loads((root / "state.json").read_text())
        except FileNotFoundError:
            return None
        return cls(
            root=data["root"],
            etcd=EtcdServer(**data["etcd"]),
            clusters=[APIServer(**c) for c in data["clusters"]],
        )


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
    }
    for file_name, data in files.items():
        path = directory / file_name
        path.write_bytes(data)
        path.chmod(0o600)


def _start_apiserver(
    root: Path, name: str, binary: str, etcd: EtcdServer, detached: bool, *, port: int | None = None
) -> tuple[APIServer, subprocess.Popen[bytes]]:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "ca.crt").exists():  # a restart keeps its certificates and kubeconfig
        _write_certs(directory, name)
    port = port or process.free_port()
    args = [
        binary,
        f"--etcd-servers={etcd.url}",
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
        "--disable-admission-plugins=ServiceAccount",
        "--authorization-mode=RBAC",
        f"--cert-dir={directory / 'certs'}",
        "--profiling=false",
    ]
    proc = process.start(args, directory / "apiserver.log", detached=detached)
    server = APIServer(name, proc.pid, port, str(directory), binary)
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
) -> Environment:
    """Start one etcd and a kube-apiserver per name; return once every server is ready.

    On any failure everything already started is stopped and the directory removed.
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
        started = [_start_apiserver(base, n, apiserver_binary, etcd, detached) for n in names]
        env.clusters = [server for server, _ in started]
        for server, proc in started:
            process.wait_ready(
                f"kube-apiserver {server.name}",
                proc,
                Path(server.dir) / "apiserver.log",
                lambda s=server: _apiserver_ready(s),  # type: ignore[misc]
                start_timeout(),
            )
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
    server, proc = _start_apiserver(Path(env.root), name, old.binary, env.etcd, detached, port=old.port)
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
        pids = [] if env is None else [env.etcd.pid, *(c.pid for c in env.clusters)]
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
    """Stop every server of ``env`` (API servers first) and remove its directory."""
    for server in env.clusters:
        if _is_ours(server.pid, server.binary):
            process.stop(server.pid)
    if _is_ours(env.etcd.pid, env.etcd.binary):
        process.stop(env.etcd.pid)
    shutil.rmtree(env.root, ignore_errors=True)
