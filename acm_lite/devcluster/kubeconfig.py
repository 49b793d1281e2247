"""Write kubeconfig files for local control planes, with certificates embedded."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Entry:
    """One cluster, reached as its admin user, under a context of the same name."""

    name: str
    server: str
    ca: Path
    client_cert: Path
    client_key: Path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def render(entries: list[Entry]) -> dict[str, object]:
    """A kubeconfig document with one context per entry; the first is current."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": entries[0].name,
        "clusters": [
            {"name": e.name, "cluster": {"server": e.server, "certificate-authority-data": _b64(e.ca)}}
            for e in entries
        ],
        "users": [
            {
                "name": f"{e.name}-admin",
                "user": {
                    "client-certificate-data": _b64(e.client_cert),
                    "client-key-data": _b64(e.client_key),
                },
            }
            for e in entries
        ],
        "contexts": [
            {"name": e.name, "context": {"cluster": e.name, "user": f"{e.name}-admin"}} for e in entries
        ],
    }


def write(path: Path, entries: list[Entry]) -> None:
    path.write_text(yaml.safe_dump(render(entries), sort_keys=False))
    path.chmod(0o600)
