"""A token service on loopback for distribution's ``auth: token``: it checks a user name and
password (HTTP Basic) and answers with a JWT signed with ES256, its signing certificate in the
``x5c`` header; the registry trusts that certificate (``rootcertbundle``). Every request is
recorded (path, the Authorization scheme, the full header) and every token issued, so tests can
check where credentials and tokens went."""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

ISSUER = "acm-lite-test-issuer"
SERVICE = "acm-lite-test-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Seen:
    path: str
    scheme: str  # "basic", "bearer" or "" (no Authorization header)
    authorization: str


@dataclass
class TokenServer:
    username: str
    password: str
    cert_file: Path  # the signing certificate, the registry's rootcertbundle
    seen: list[Seen] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acm-lite test token signer")])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def token(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        token = f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        self.issued.append(token)
        return token

    def serve(self, context: ssl.SSLContext) -> None:
        """Start answering on a loopback port over TLS (``context``)."""
        server = self
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                given = self.headers.get("Authorization", "")
                server.seen.append(Seen(self.path, given.split(" ", 1)[0].lower(), given))
                query = parse_qs(urlsplit(self.path).query)
                if urlsplit(self.path).path != "/token" or query.get("service") != [SERVICE]:
                    self._answer(404, {"errors": ["no such service"]})
                elif given != expected:
                    self._answer(401, {"details": "wrong user name or password"})
                else:
                    token = server.token(self.username(given), query.get("scope", []))
                    self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

            def username(self, given: str) -> str:
                return base64.b64decode(given.split(" ", 1)[1]).decode().partition(":")[0]

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
