from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.devcluster import binaries, gobuild


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    return tmp_path


def _no_build(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = binaries.components

    def tracked() -> dict[str, binaries.Component]:
        return {
            n: binaries.Component(c.name, c.version, lambda v, out, p, n=n: calls.append(n))  # type: ignore[misc]
            for n, c in original().items()
        }

    monkeypatch.setattr(binaries, "components", tracked)
    return calls


def test_kubebuilder_assets_are_used_and_nothing_is_built(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = isolated / "assets"
    names = (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "etcd",
        "kwok",
        "helm",
        "kustomize",
        "registry",
    )
    for name in names:
        _executable(assets / name)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    calls = _no_build(monkeypatch)
    assert binaries.ensure_all() == {n: assets / n for n in names}
    assert calls == []


def test_assets_missing_a_binary_fall_back_to_the_cache(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = isolated / "assets"
    _executable(assets / "etcd")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    cached = _executable(binaries.components()["helm"].cached_path(isolated / "cache"))
    assert binaries.find("etcd") == assets / "etcd"
    assert binaries.find("helm") == cached
    assert binaries.find("kube-apiserver") is None


def test_cache_is_keyed_by_version(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACM_LITE_ETCD_VERSION", "v3.6.9")
    path = binaries.components()["etcd"].cached_path(isolated / "cache")
    assert path == isolated / "cache" / "bin" / "etcd-v3.6.9" / "etcd"


def test_kustomize_is_pinned_and_its_version_can_be_overridden(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = binaries.components()["kustomize"]
    assert pinned.version == binaries.KUSTOMIZE_VERSION
    assert pinned.recipe is gobuild.build_kustomize
    monkeypatch.setenv("ACM_LITE_KUSTOMIZE_VERSION", "v5.8.1")
    path = binaries.components()["kustomize"].cached_path(isolated / "cache")
    assert path == isolated / "cache" / "bin" / "kustomize-v5.8.1" / "kustomize"


def test_kustomize_from_assets_is_found_without_a_build(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assets = isolated / "assets"
    _executable(assets / "kustomize")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    calls = _no_build(monkeypatch)
    assert binaries.ensure("kustomize") == assets / "kustomize"
    assert calls == []


def test_a_build_lands_atomically_in_the_cache(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def recipe(version: str, out: Path, progress: binaries.Progress) -> None:
        seen.append(out)
        progress(f"building {version}")
        _executable(out)

    monkeypatch.setattr(
        binaries, "components", lambda: {"etcd": binaries.Component("etcd", "v3.7.3", recipe)}
    )
    messages: list[str] = []
    built = binaries.ensure("etcd", messages.append)
    assert built == isolated / "cache" / "bin" / "etcd-v3.7.3" / "etcd"
    assert seen == [built.with_name("etcd.partial")]
    assert not seen[0].exists()
    assert messages == ["building v3.7.3"]
    assert binaries.ensure("etcd") == built  # second call: cached, recipe not run again
    assert len(seen) == 1


def test_controllers_share_the_kubernetes_pin_and_kwok_has_its_own(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    components = binaries.components()
    assert components["kube-controller-manager"].version == binaries.KUBERNETES_VERSION
    assert components["kube-controller-manager"].recipe is gobuild.build_kube_controller_manager
    assert components["kube-scheduler"].version == binaries.KUBERNETES_VERSION
    assert components["kube-scheduler"].recipe is gobuild.build_kube_scheduler
    assert components["kwok"].version == binaries.KWOK_VERSION
    assert components["kwok"].recipe is gobuild.build_kwok
    monkeypatch.setenv("ACM_LITE_KUBERNETES_VERSION", "v1.36.0")
    monkeypatch.setenv("ACM_LITE_KWOK_VERSION", "v0.7.0")
    overridden = binaries.components()
    assert overridden["kube-scheduler"].version == "v1.36.0"
    assert overridden["kwok"].cached_path(isolated / "cache") == (
        isolated / "cache" / "bin" / "kwok-v0.7.0" / "kwok"
    )
