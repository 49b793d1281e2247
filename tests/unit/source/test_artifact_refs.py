"""OCI references, HTTP answers turned into coded errors, and credentials kept out of text."""

from __future__ import annotations

import pytest

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source import oci, transfer
from acm_lite.source.helm import HelmSpec


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("127.0.0.1:5000/team/app:v1", ("127.0.0.1:5000", "team/app", "v1", None)),
        ("localhost/app", ("localhost", "app", "latest", None)),
        ("reg.example.com/a/b@sha256:" + "a" * 64, ("reg.example.com", "a/b", None, "sha256:" + "a" * 64)),
        ("reg.example.com/a:1@sha256:" + "b" * 64, ("reg.example.com", "a", "1", "sha256:" + "b" * 64)),
    ],
)
def test_references_are_parsed(text: str, parts: tuple[str, str, str | None, str | None]) -> None:
    ref = oci.Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == parts
    assert ref.reference == (parts[3] or parts[2])


@pytest.mark.parametrize(
    "text", ["app:v1", "reg.example.com/UPPER:v1", "reg.example.com/a@sha256:short", "reg.example.com/a:b:c"]
)
def test_malformed_references_are_coded(text: str) -> None:
    with pytest.raises(AcmError) as caught:
        oci.Reference.parse(text)
    assert caught.value.code is errors.ARTIFACT_NOT_FOUND


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, errors.SOURCE_AUTH_FAILED),
        (403, errors.SOURCE_AUTH_FAILED),
        (404, errors.ARTIFACT_NOT_FOUND),
        (500, errors.SOURCE_ERROR),
        (503, errors.SOURCE_ERROR),
        (429, errors.SOURCE_ERROR),
    ],
)
def test_http_statuses_map_to_permanent_or_transient_codes(status: int, code: errors.Code) -> None:
    error = transfer.status_error(status, "the Helm repository http://h/charts")
    assert error.code is code
    assert "http://h/charts" in error.message
    transient = code.category is errors.Category.TRANSIENT
    assert transient == (status >= 500 or status == 429)


def test_credentials_are_hidden_from_repr_and_scrubbed_from_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACM_LITE_OCI_USERNAME", "robot")
    monkeypatch.setenv("ACM_LITE_OCI_PASSWORD", "s3cr3t-pass")
    creds = transfer.Credentials.from_env("OCI")
    assert creds is not None and "s3cr3t" not in repr(creds)
    header = creds.header()
    text = creds.scrub(f"failed with s3cr3t-pass and {header} at https://robot:s3cr3t-pass@reg/x")
    assert "s3cr3t" not in text and header.split()[1] not in text


def test_credentials_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "password"
    secret.write_text("from-file\n")
    monkeypatch.setenv("ACM_LITE_HELM_USERNAME", "u")
    monkeypatch.setenv("ACM_LITE_HELM_PASSWORD_FILE", str(secret))
    creds = transfer.Credentials.from_env("HELM")
    assert creds is not None and creds.password == "from-file"
    monkeypatch.delenv("ACM_LITE_HELM_PASSWORD_FILE")
    assert transfer.Credentials.from_env("HELM") is None


def test_credentials_go_only_to_their_host_and_over_https() -> None:
    client = transfer.Client("x", credentials=transfer.Credentials("u", "p"))
    assert client.may_send("https://reg.example/v2/a", "https://reg.example")
    assert not client.may_send("https://other.example/blob", "https://reg.example")
    assert not client.may_send("http://reg.example/v2/a", "http://reg.example")
    allowed = transfer.Client("x", credentials=transfer.Credentials("u", "p", allow_http=True))
    assert allowed.may_send("http://reg.example/v2/a", "http://reg.example")


def test_helm_spec_is_written_in_config_syncs_shape() -> None:
    spec = HelmSpec(
        repo="https://user:pw@charts.example/stable",
        chart="app",
        version="^1.2",
        values="replicas: 2\n",
        include_crds=True,
    )
    assert spec.to_spec() == {
        "repo": "https://charts.example/stable",
        "chart": "app",
        "version": "^1.2",
        "namespace": "default",
        "includeCRDs": True,
        "values": {"replicas": 2},
        "auth": "none",
    }
    assert spec.display == "https://charts.example/stable/app"
