"""The daemon's OCI image, built by `make image`'s script, pushed to a real registry on loopback,
pulled back by digest and run the way the chart's Deployment runs it: its entrypoint and the
Deployment's args, uid 65532, a read-only root with tmpfs /tmp and cache, a ServiceAccount token
and CA where in-cluster configuration looks, the local API server as KUBERNETES_SERVICE_HOST/PORT
(host network). It syncs a Git repository, holds the Lease and serves /healthz and /metrics.

Needs root with buildah, mmdebstrap and bubblewrap (`.ci/run` installs them); the image's base
layer is cached under ~/.cache/acm-lite/image/, so only the first run builds Debian."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import process
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.status import store
from tests.support import registry as registry_server
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "image.py"
UID = 65532
SYSTEM_NAMESPACE = "acm-lite-system"
SECRETS = Path("/var/run/secrets/kubernetes.io/serviceaccount")  # where in-cluster config reads
# Debian's /var/run is a link to /run: a runtime mounts where it leads (runc resolves it in the root).
MOUNTED = Path("/run") / SECRETS.relative_to("/var/run")
TOOLS = ("buildah", "mmdebstrap", "bwrap", "setpriv")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in TOOLS),
    reason="needs root with buildah, mmdebstrap and bubblewrap (.ci/run installs them)",
)


@dataclass(frozen=True)
class Built:
    archive: Path
    digest: str


@pytest.fixture(scope="module")
def built() -> Built:
    run = subprocess.run([sys.executable, str(SCRIPT), "build"], capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr[-4000:]
    fields = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    return Built(Path(fields["oci-archive"]), fields["digest"])


class Storage:
    """buildah with a throwaway vfs storage of the test's own: the pull is a real download."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *args: str) -> str:
        run = subprocess.run(
            [
                "buildah",
                "--root",
                str(self.root / "storage"),
                "--runroot",
                str(self.root / "run"),
                "--storage-driver",
                "vfs",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout.strip()


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory uid 65532 can reach (pytest's own are root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="acm-lite-image-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_archive_has_the_images_labels_and_user(built: Built, tmp_path: Path) -> None:
    subprocess.run(["tar", "-xf", str(built.archive), "-C", str(tmp_path)], check=True, timeout=300)
    index = json.loads((tmp_path / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    assert manifest_digest == built.digest
    manifest = json.loads((tmp_path / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_text())
    config = json.loads(
        (tmp_path / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text()
    )
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    image = config["config"]
    assert image["User"] == f"{UID}:{UID}"
    assert image["Entrypoint"] == ["/usr/bin/tini", "--", "acm-lite"]
    labels = image["Labels"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert labels["org.opencontainers.image.revision"].startswith(head.stdout.strip())
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    assert config["created"] == labels["org.opencontainers.image.created"]
    env = dict(e.split("=", 1) for e in image["Env"])
    assert env["ACM_LITE_POLICIES"] == "/opt/acm-lite/policies"
    assert env["ACM_LITE_CACHE"] == "/var/cache/acm-lite"
    assert len(manifest["layers"]) == 2  # the cached base, and acm-lite on top


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _service_account(admin: Cluster, name: str) -> str:
    """What the chart installs for the cluster-wide scope, and a token from the TokenRequest API."""
    try:
        admin.request("POST", "/api/v1/namespaces", body=ns(SYSTEM_NAMESPACE))
    except ApiError as e:
        assert e.status == 409
    admin.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )
    admin.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": SYSTEM_NAMESPACE}],
        },
    )
    token = admin.request(
        "POST",
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts/{name}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    return str(token["status"]["token"])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def _pushed_and_pulled_back(
    built: Built, registry: registry_server.Registry, storage: Storage, scratch: Path
) -> tuple[Path, dict[str, Any], str]:
    """Push with the script `make image-push` runs, pull back by digest into empty storage, and
    mount it: the root filesystem, the image's configuration and the working container."""
    reference = registry.image("platform/acm-lite", "0.1.0")
    push = subprocess.run(
        [sys.executable, str(SCRIPT), "push", reference, "--tls-verify=false"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert push.returncode == 0, push.stderr[-3000:]
    digest = re.fullmatch(r"pushed: (\S+)@(sha256:[0-9a-f]{64})", push.stdout.strip())
    assert digest and digest.group(1) == reference, push.stdout
    by_digest = f"{registry.host}/platform/acm-lite@{digest.group(2)}"
    storage("pull", "--quiet", "--tls-verify=false", f"docker://{by_digest}")
    config = json.loads(storage("inspect", "--type", "image", by_digest))["OCIv1"]["config"]
    container = storage("from", "--pull-never", "--quiet", by_digest)
    rootfs = Path(storage("mount", container))
    for parent in [rootfs, *rootfs.parents]:  # uid 65532 must reach it, as a runtime's would
        if parent == scratch:
            break
        parent.chmod(parent.stat().st_mode | 0o055)

    return rootfs, config, container


def _sandbox(config: dict[str, Any], rootfs: Path, binds: dict[str, str], env: dict[str, str]) -> list[str]:
    """What a runtime does for the chart's pod: the image's user (a real uid 65532, not root in a
    namespace), its root filesystem read-only, tmpfs emptyDirs at /tmp and the cache, the given
    read-only binds, the host's network, and only the given environment."""
    user, group = config["User"].split(":")
    return [
        "setpriv",
        f"--reuid={user}",
        f"--regid={group}",
        "--clear-groups",
        "--",
        "bwrap",
        "--unshare-user",
        "--uid",
        user,
        "--gid",
        group,
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--ro-bind",
        str(rootfs),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/var/cache/acm-lite",
        *(a for source, target in binds.items() for a in ("--ro-bind", source, target)),
        "--chdir",
        config.get("WorkingDir") or "/",
        "--clearenv",
        *(a for k, v in env.items() for a in ("--setenv", k, v)),
        "--",
    ]


def _service_account_files(
    admin: Cluster, server: APIServer, account: str, scratch: Path, rootfs: Path
) -> Path:
    """The ServiceAccount's token, CA and namespace as the kubelet projects them (group 65532,
    the fsGroup), and their mount point in the root filesystem, which a runtime makes too."""
    secrets = scratch / "serviceaccount"
    secrets.mkdir()
    (secrets / "token").write_text(_service_account(admin, account))
    (secrets / "ca.crt").write_bytes(Path(server.file("ca.crt")).read_bytes())
    (secrets / "namespace").write_text(SYSTEM_NAMESPACE)
    for path in (secrets, *secrets.iterdir()):
        os.chown(path, 0, UID)
        path.chmod(0o750 if path.is_dir() else 0o440)
    assert os.readlink(rootfs / "var/run") == "/run"  # so the mount point is made inside the root
    (rootfs / MOUNTED.relative_to("/")).mkdir(parents=True, exist_ok=True)
    return secrets


def _wait_synced(admin: Cluster, name: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    state = errors = None
    while time.monotonic() < deadline and daemon.poll() is None and state != "SYNCED":
        time.sleep(0.5)
        try:
            found = admin.request(
                "GET", f"/apis/acm-lite.io/v1alpha1/namespaces/{SYSTEM_NAMESPACE}/rootsyncs/{name}"
            )
        except ApiError:
            continue
        status = found.get("status") or {}
        state, errors = status.get("state"), status.get("errors")
    assert state == "SYNCED", f"{state} {errors}: {log.read_text()[-3000:]}"


def _assert_sandboxed(daemon: subprocess.Popen[bytes], sandbox: list[str]) -> list[int]:
    """Every process of the sandbox runs as uid 65532 (tini, then acm-lite), and its root is
    mounted read-only; the sandbox's processes."""
    inside = _descendants(daemon.pid)
    assert {_status(pid, "Uid").split()[0] for pid in inside} == {str(UID)}
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in inside}
    assert "tini" in names and any(n.startswith(("acm-lite", "python")) for n in names), names
    probe = subprocess.run(
        [*sandbox, "/usr/bin/cat", "/proc/self/mountinfo"], capture_output=True, text=True, timeout=60
    )
    mounts = {fields[4]: fields[5].split(",") for fields in map(str.split, probe.stdout.splitlines())}
    assert "ro" in mounts["/"], probe.stdout + probe.stderr
    assert "rw" in mounts["/tmp"] and "rw" in mounts["/var/cache/acm-lite"]
    assert "ro" in mounts[str(MOUNTED)], probe.stdout
    return inside


def test_the_image_runs_as_the_charts_deployment_and_syncs(
    built: Built,
    oci_registry: registry_server.Registry,
    control_plane: APIServer,
    scratch: Path,
) -> None:
    storage = Storage(scratch)
    rootfs, config, container = _pushed_and_pulled_back(built, oci_registry, storage, scratch)

    admin = Cluster.connect(control_plane.kubeconfig)
    store.install(admin)  # the chart's crds/
    suffix = uuid.uuid4().hex[:8]
    secrets = _service_account_files(admin, control_plane, f"image-{suffix}", scratch, rootfs)

    namespace = f"img-{suffix}"
    repo = GitRepo(scratch / "git")
    repo.commit({"ns.yaml": ns(namespace), "cm.yaml": cm("from-the-image", namespace)})
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(scratch / "git")], check=True)
    (rootfs / "srv/config.git").mkdir(parents=True, exist_ok=True)  # the mount point

    port = process.free_port()
    name, lease = f"image-{suffix}", f"image-lease-{suffix}"
    args = [  # charts/acm-lite/templates/deployment.yaml's args, leader election on
        "serve",
        "--repo=/srv/config.git",
        "--revision=main",
        "--dir=.",
        "--source-format=unstructured",
        f"--name={name}",
        "--period=1",
        "--render-timeout=300",
        "--render-max-output=64",
        f"--metrics-address=0.0.0.0:{port}",
        "--leader-elect",
        f"--lease-namespace={SYSTEM_NAMESPACE}",
        f"--lease-name={lease}",
    ]
    env = dict(e.split("=", 1) for e in config["Env"]) | {
        "ACM_LITE_CACHE": "/var/cache/acm-lite",
        "HOME": "/tmp",
        "ACM_LITE_NAMESPACE": SYSTEM_NAMESPACE,
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": control_plane.url.rsplit(":", 1)[1],
    }
    binds = {str(secrets): str(MOUNTED), str(repo.bare): "/srv/config.git"}
    sandbox = _sandbox(config, rootfs, binds, env)
    daemon_command = [*sandbox, *config["Entrypoint"], *args]
    log = scratch / "daemon.log"
    daemon = subprocess.Popen(daemon_command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        _wait_synced(admin, name, daemon, log)

        synced = admin.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/from-the-image")
        assert synced["metadata"]["labels"]["acm-lite.io/sync"] == name
        held = admin.request(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NAMESPACE}/leases/{lease}"
        )
        assert held["spec"]["holderIdentity"]
        health, _ = _get(f"http://127.0.0.1:{port}/healthz")
        assert health == 200
        status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert re.search(r"^acm_lite_leader(\{[^}]*\})? 1(\.0)?$", metrics, re.M), metrics[:2000]
        assert "acm_lite_last_sync_success_timestamp_seconds" in metrics

        inside = _assert_sandboxed(daemon, sandbox)

        # SIGTERM to the image's PID 1 (tini) reaches the daemon, which releases the Lease and exits 0.
        tini = next(pid for pid in inside if Path(f"/proc/{pid}/comm").read_text().strip() == "tini")
        os.kill(tini, signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=30)
        storage("umount", container)


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("hack_image_e2e", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["hack_image_e2e"] = module
    spec.loader.exec_module(module)
    return module


def test_a_pin_the_mirror_no_longer_serves_stops_the_build_and_says_how_to_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _script()
    lock = tmp_path / "debian.lock"
    lock.write_text(re.sub(r"(?m)^tini=.*$", "tini=0.0.1-gone", image.DEBIAN_LOCK.read_text()))
    monkeypatch.setattr(image, "DEBIAN_LOCK", lock)
    pins, epoch = image.parse_debian_lock(lock.read_text())

    def bootstrap(*args: object) -> str:
        raise AssertionError("mmdebstrap ran: the pins are checked before any package is downloaded")

    monkeypatch.setattr(image, "_mmdebstrap", bootstrap)
    started = time.monotonic()
    with pytest.raises(image.ImageError) as refused:
        image.rootfs(tmp_path / "cache", pins, epoch)  # the host's apt sources' real indexes
    message = str(refused.value)
    assert "no longer serves tini=0.0.1-gone" in message and "make image-lock" in message, message
    assert "git" not in message  # every other pin is served
    assert not list((tmp_path / "cache").glob("rootfs-*"))  # nothing half-made is kept
    assert not list((tmp_path / "cache" / "apt" / "cache" / "archives").glob("*.deb"))
    print(f"refused after {time.monotonic() - started:.1f}s")


def test_a_push_to_a_registry_with_tls_and_a_password_takes_the_credentials_from_the_auth_file(
    built: Built, secure_registry: registry_server.Registry, tmp_path: Path
) -> None:
    assert secure_registry.ca_file and secure_registry.username and secure_registry.password
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copyfile(secure_registry.ca_file, certs / "ca.crt")
    reference = secure_registry.image("platform/acm-lite", "0.1.0")
    command = [sys.executable, str(SCRIPT), "push", reference, "--cert-dir", str(certs)]
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}
    empty = tmp_path / "empty.json"
    empty.write_text('{"auths": {}}')
    refused = subprocess.run(
        command, env={**env, "REGISTRY_AUTH_FILE": str(empty)}, capture_output=True, text=True, timeout=1800
    )
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert re.search(r"unauthorized|authentication required|401", refused.stderr, re.I), refused.stderr[
        -2000:
    ]
    auth = tmp_path / "auth.json"
    token = base64.b64encode(f"{secure_registry.username}:{secure_registry.password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {secure_registry.host: {"auth": token}}}))
    pushed = subprocess.run(
        command, env={**env, "REGISTRY_AUTH_FILE": str(auth)}, capture_output=True, text=True, timeout=1800
    )
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert re.fullmatch(rf"pushed: {re.escape(reference)}@sha256:[0-9a-f]{{64}}", pushed.stdout.strip())
    assert secure_registry.password not in pushed.stdout + pushed.stderr + refused.stdout + refused.stderr
