"""`acm-lite serve` refuses an address or a webhook secret it cannot use with a coded error or a
usage error, never a traceback (no cluster is contacted before the endpoints listen)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from acm_lite.cli.main import main


def serve(tmp_path: Path, *extra: str) -> list[str]:
    return ["serve", "--repo", str(tmp_path), "--kubeconfig", str(tmp_path / "none"), *extra]


def test_an_address_in_use_is_a_coded_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(serve(tmp_path, "--metrics-address", f"127.0.0.1:{port}")) == 1
    err = capsys.readouterr().err
    assert "ACM2014 ListenFailed" in err and "Traceback" not in err


@pytest.mark.parametrize("address", ["127.0.0.1:http", "127.0.0.1:99999", "nonsense"])
def test_a_malformed_address_is_a_usage_error(
    tmp_path: Path, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(serve(tmp_path, "--metrics-address", address)) == 2
    assert "--metrics-address" in capsys.readouterr().err


def test_an_unreadable_or_empty_webhook_secret_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = serve(
        tmp_path, "--metrics-address", "127.0.0.1:0", "--webhook-secret-file", str(tmp_path / "missing")
    )
    assert main(missing) == 2
    (tmp_path / "empty").write_text("\n")
    empty = serve(
        tmp_path, "--metrics-address", "127.0.0.1:0", "--webhook-secret-file", str(tmp_path / "empty")
    )
    assert main(empty) == 2
    err = capsys.readouterr().err
    assert "cannot read --webhook-secret-file" in err and "is empty" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("where", [["--from-cluster"], ["--config", "syncs.yaml"]])
def test_ignore_fields_with_rootsyncs_is_a_usage_error(
    tmp_path: Path, where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "ignore.yaml"
    rules.write_text("- {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}\n")
    argv = ["serve", "--kubeconfig", str(tmp_path / "none"), "--metrics-address", "127.0.0.1:0", *where]
    assert main([*argv, "--ignore-fields", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "spec.override.ignoreFields" in err and "Traceback" not in err


@pytest.mark.parametrize("address", ["127.0.0.1:https", "127.0.0.1:70000", "nonsense"])
def test_a_malformed_admission_webhook_address_is_a_usage_error(
    tmp_path: Path, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = serve(tmp_path, "--metrics-address", "127.0.0.1:0", "--admission-webhook")
    assert main([*argv, "--admission-webhook-address", address]) == 2
    assert "--admission-webhook-address" in capsys.readouterr().err


def test_the_admission_webhook_without_a_cluster_is_a_coded_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = serve(tmp_path, "--metrics-address", "127.0.0.1:0", "--admission-webhook")
    assert main([*argv, "--admission-webhook-address", "127.0.0.1:0"]) == 1
    err = capsys.readouterr().err
    assert "ACM2001 KubeconfigError" in err and "Traceback" not in err


def test_the_admission_webhook_with_a_fleet_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("clusters: []\n")
    argv = ["serve", "--fleet", str(fleet), "--repo", str(tmp_path), "--metrics-address", "127.0.0.1:0"]
    assert main([*argv, "--admission-webhook"]) == 2
    assert "--admission-webhook protects the one cluster" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ui"], "--ui needs --ui-token-file FILE or --ui-token-review"),
        (["--ui", "--ui-token-file", "missing"], "cannot read --ui-token-file"),
        (["--ui", "--ui-token-file", "short"], "fewer than 16 characters"),
        (["--ui-token-file", "short"], "go with --ui"),
    ],
)
def test_a_dashboard_without_a_usable_token_is_a_usage_error(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "short").write_text("abc\n")
    argv = [str(tmp_path / a) if a in ("missing", "short") else a for a in extra]
    assert main(serve(tmp_path, "--metrics-address", "127.0.0.1:0", *argv)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert main(serve(tmp_path, "--metrics-address", "off", "--ui", "--ui-token-review")) == 2
    assert "cannot be 'off'" in capsys.readouterr().err
