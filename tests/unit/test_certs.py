from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acm_lite.devcluster import certs


def test_bundle_signs_serving_and_admin_certificates_with_its_ca() -> None:
    bundle = certs.generate("demo")
    ca = x509.load_pem_x509_certificate(bundle.ca.cert)
    serving = x509.load_pem_x509_certificate(bundle.serving.cert)
    admin = x509.load_pem_x509_certificate(bundle.admin.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    serving.verify_directly_issued_by(ca)
    admin.verify_directly_issued_by(ca)

    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )

    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ("system:masters")
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )


def test_service_account_key_pair_is_separate_and_fresh() -> None:
    first, second = certs.generate("a"), certs.generate("a")
    assert first.service_account.key != first.serving.key
    assert first.service_account.key != second.service_account.key
    assert first.service_account.public_key.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_each_controller_has_its_own_client_certificate_named_for_bootstrap_rbac() -> None:
    bundle = certs.generate("demo")
    ca = x509.load_pem_x509_certificate(bundle.ca.cert)
    subjects = {}
    for pair in (bundle.controller_manager, bundle.scheduler, bundle.kwok):
        cert = x509.load_pem_x509_certificate(pair.cert)
        cert.verify_directly_issued_by(ca)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        subjects[common] = groups
    assert subjects == {
        "system:kube-controller-manager": [],
        "system:kube-scheduler": [],
        "kwok": ["system:masters"],
    }
    assert len({bundle.controller_manager.key, bundle.scheduler.key, bundle.kwok.key, bundle.admin.key}) == 4
