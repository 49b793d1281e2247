"""distribution's OCI registry on loopback for tests: a config file of its own, optional basic
auth (an htpasswd file hashed with bcrypt) or token auth (``auth: token`` trusting the signing
certificate of a ``tokenserver.TokenServer``, which is started here on the same TLS
certificate), and optional TLS (a CA and serving certificate from ``devcluster.certs``). The
process dies with the test run, as the control planes do."""

from __future__ import annotations

import secrets
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import yaml

from acm_lite.devcluster import process
from tests.support import tls
from tests.support.tokenserver import ISSUER, SERVICE, TokenServer


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:<port>
    pid: int
    root: Path
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    def image(self, repository: str, tag: str) -> str:
        return f"{self.host}/{repository}:{tag}"


def start(
    binary: Path, root: Path, *, auth: bool = False, use_tls: bool = False, token: bool = False
) -> Registry:
    """With ``token`` (which needs ``use_tls``), a token server is started and the registry
    accepts only its tokens."""
    root.mkdir(parents=True, exist_ok=True)
    port = process.free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "health": {"storagedriver": {"enabled": False}},
    }
    username = password = None
    if auth:
        username, password = "robot", secrets.token_urlsafe(12)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (root / "htpasswd").write_text(f"{username}:{hashed}\n")
        config["auth"] = {"htpasswd": {"realm": "acm-lite-test", "path": str(root / "htpasswd")}}
    ca_file = None
    token_server = None
    if use_tls:
        certs = root / "certs"
        certs.mkdir(exist_ok=True)
        paths = tls.files(certs, "registry")
        config["http"] = {
            **config["http"],  # type: ignore[dict-item]
            "tls": {"certificate": paths["server.crt"], "key": paths["server.key"]},
        }
        ca_file = Path(paths["ca"])
        if token:
            username, password = "robot", secrets.token_urlsafe(12)
            token_server = TokenServer(username, password, root / "token-signer.pem")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(paths["server.crt"], paths["server.key"])
            token_server.serve(context)
            config["auth"] = {
                "token": {
                    "realm": token_server.url,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(token_server.cert_file),
                }
            }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    proc = process.start(
        [str(binary), "serve", str(root / "config.yml")], root / "registry.log", detached=False
    )
    registry = Registry(f"127.0.0.1:{port}", proc.pid, root, ca_file, username, password, token_server)
    process.wait_ready("registry", proc, root / "registry.log", lambda: _answers(registry), 30)
    return registry


def _answers(registry: Registry) -> bool:
    context = ssl.create_default_context(cafile=str(registry.ca_file)) if registry.ca_file else None
    try:
        with urllib.request.urlopen(f"{registry.scheme}://{registry.host}/v2/", timeout=2, context=context):
            return True
    except urllib.error.HTTPError as e:
        return e.code == 401
    except OSError:
        return False


def stop(registry: Registry) -> None:
    process.stop(registry.pid)
    if registry.token_server is not None:
        registry.token_server.close()
