"""Building binaries fails fast, with a coded error, where it cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.devcluster import binaries
from acm_lite.errors import AcmError


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    return tmp_path


def test_without_go_the_error_says_what_to_install(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(empty_cache))
    with pytest.raises(AcmError) as failed:
        binaries.ensure("etcd")
    assert failed.value.code.id == "ACM9001"
    assert "KUBEBUILDER_ASSETS" in (failed.value.hint or "")


def test_unreachable_module_proxy_is_a_coded_build_failure(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOMODCACHE", str(empty_cache / "gomod"))
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOFLAGS", "-modcacherw")
    with pytest.raises(AcmError) as failed:
        binaries.ensure("kube-apiserver")
    assert failed.value.code.id == "ACM9002"
    assert "k8s.io/kubernetes@" in failed.value.message
    assert "GOPROXY" in (failed.value.hint or "")
    assert not binaries.components()["kube-apiserver"].cached_path(empty_cache / "cache").exists()
