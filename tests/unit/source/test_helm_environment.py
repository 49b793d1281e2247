"""helm template runs in the same sealed environment as kustomize: nothing of acm-lite's own
environment but what a tool needs, and no way out to the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.source import helm


def test_helm_gets_no_credentials_and_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACM_LITE_HELM_PASSWORD", "s3cret")
    monkeypatch.setenv("KUBECONFIG", "/etc/admin.conf")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    env = helm._env(tmp_path, 4242)
    assert "s3cret" not in env.values() and "KUBECONFIG" not in env
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        assert env[name] == "http://127.0.0.1:4242"
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    assert env["GIT_ALLOW_PROTOCOL"] == "none"
    for name in ("HOME", "TMPDIR", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        assert Path(env[name]).is_relative_to(tmp_path)
    assert Path(env["HOME"]).is_dir() and Path(env["TMPDIR"]).is_dir()
