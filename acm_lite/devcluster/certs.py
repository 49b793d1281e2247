"""Certificates and keys for a local control plane, and for the daemon's admission webhook,
generated in memory.

A CA signs the API server's serving certificate (localhost, 127.0.0.1), an admin client
certificate in group ``system:masters`` and one client certificate per controller
(kube-controller-manager and kube-scheduler as the users Kubernetes' bootstrap RBAC roles name,
kwok as a member of ``system:masters``); a separate key pair signs service-account tokens. No I/O.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate (empty for a bare key pair) with its PEM private and public keys."""

    cert: bytes
    key: bytes
    public_key: bytes


@dataclass(frozen=True)
class Bundle:
    """Everything a local API server and its admin client need."""

    ca: KeyPair
    serving: KeyPair
    admin: KeyPair
    service_account: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    kwok: KeyPair


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    validity: dt.timedelta = _VALIDITY,
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - min(dt.timedelta(minutes=5), validity / 10))  # clocks a little behind
        .not_valid_after(now + validity)
    )


def _ca(
    name: str, validity: dt.timedelta = _VALIDITY
) -> tuple[KeyPair, ec.EllipticCurvePrivateKey, x509.Name]:
    key = _key()
    subject = _name(name)
    cert = (
        _builder(subject, subject, key, validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    pair = KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), _pem_public(key))
    return pair, key, subject


def _leaf(
    subject: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
    *,
    validity: dt.timedelta = _VALIDITY,
) -> KeyPair:
    key = _key()
    builder = (
        _builder(subject, ca_name, key, validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), _pem_public(key))


def generate(cluster: str) -> Bundle:
    """A fresh bundle for the local cluster ``cluster``."""
    ca, ca_key, ca_name = _ca(f"acm-lite-dev-ca-{cluster}")
    serving = _leaf(
        _name("localhost"),
        ca_key,
        ca_name,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    admin = _leaf(_name("admin", "system:masters"), ca_key, ca_name, client)
    sa_key = _key()
    service_account = KeyPair(b"", _pem_key(sa_key), _pem_public(sa_key))
    return Bundle(
        ca=ca,
        serving=serving,
        admin=admin,
        service_account=service_account,
        controller_manager=_leaf(_name("system:kube-controller-manager"), ca_key, ca_name, client),
        scheduler=_leaf(_name("system:kube-scheduler"), ca_key, ca_name, client),
        kwok=_leaf(_name("kwok", "system:masters"), ca_key, ca_name, client),
    )


def serving_pair(common_name: str, hosts: list[str], validity: dt.timedelta) -> tuple[KeyPair, KeyPair]:
    """A fresh CA and a serving certificate it signs for ``hosts`` (DNS names or IP addresses),
    both valid for ``validity``: the admission webhook's."""
    ca, ca_key, ca_name = _ca(f"{common_name}-ca", validity)
    sans: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    serving = _leaf(
        _name(common_name), ca_key, ca_name, ExtendedKeyUsageOID.SERVER_AUTH, sans, validity=validity
    )
    return ca, serving
