"""Certificate files for TLS tests on loopback: a CA, a serving certificate for 127.0.0.1 and an
admin client certificate, and a server context that requires a client certificate from that CA."""

from __future__ import annotations

import ssl
from pathlib import Path

from acm_lite.devcluster import certs


def files(directory: Path, name: str) -> dict[str, str]:
    """Write the bundle under ``directory``; paths by role: ca, server.crt, server.key,
    client.crt, client.key."""
    bundle = certs.generate(name)
    paths = {}
    for role, data in (
        ("ca", bundle.ca.cert),
        ("server.crt", bundle.serving.cert),
        ("server.key", bundle.serving.key),
        ("client.crt", bundle.admin.cert),
        ("client.key", bundle.admin.key),
    ):
        (directory / role).write_bytes(data)
        paths[role] = str(directory / role)
    return paths


def server_context(paths: dict[str, str]) -> ssl.SSLContext:
    """Serves with the bundle's certificate; insists on a client certificate from its CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=paths["ca"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(paths["server.crt"], paths["server.key"])
    return context
