"""Find or build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, helm,
kustomize and the OCI registry (distribution's ``registry``, which tests and the demo serve charts and
OCI artifacts from).

Resolution order: ``KUBEBUILDER_ASSETS`` (the envtest convention: use what is there, build nothing),
then the cache (``$ACM_LITE_CACHE`` or ``~/.cache/acm-lite``), keyed by component and version, then a
build from the Go module proxy.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acm_lite.devcluster import gobuild
from acm_lite.paths import cache_dir

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.3"
HELM_VERSION = "v3.22.0"
# The newest kustomize whose go.mod this machine's Go accepts without a toolchain switch; it pairs
# with sigs.k8s.io/kustomize/api v0.21.2 (v5.8.3 and api v0.21.3 ask for Go 1.27).
KUSTOMIZE_VERSION = "v5.8.2"
# The newest distribution release; its go.mod asks for Go 1.26.0.
REGISTRY_VERSION = "v3.1.2"
# The newest kwok release; its go.mod asks for Go 1.26.0, so the local toolchain builds it.
KWOK_VERSION = "v0.8.0"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Component:
    """One binary and how to build it."""

    name: str
    version: str
    recipe: Callable[[str, Path, Progress], None]

    def cached_path(self, cache: Path) -> Path:
        return cache / "bin" / f"{self.name}-{self.version}" / self.name


def components() -> dict[str, Component]:
    """Every binary acm-lite's local environment uses, at the pinned (or overridden) versions."""
    k8s = os.environ.get("ACM_LITE_KUBERNETES_VERSION", KUBERNETES_VERSION)
    etcd = os.environ.get("ACM_LITE_ETCD_VERSION", ETCD_VERSION)
    helm = os.environ.get("ACM_LITE_HELM_VERSION", HELM_VERSION)
    kustomize = os.environ.get("ACM_LITE_KUSTOMIZE_VERSION", KUSTOMIZE_VERSION)
    registry = os.environ.get("ACM_LITE_REGISTRY_VERSION", REGISTRY_VERSION)
    kwok = os.environ.get("ACM_LITE_KWOK_VERSION", KWOK_VERSION)
    return {
        "kube-apiserver": Component("kube-apiserver", k8s, gobuild.build_kube_apiserver),
        "kube-controller-manager": Component(
            "kube-controller-manager", k8s, gobuild.build_kube_controller_manager
        ),
        "kube-scheduler": Component("kube-scheduler", k8s, gobuild.build_kube_scheduler),
        "kubectl": Component("kubectl", k8s, gobuild.build_kubectl),
        "etcd": Component("etcd", etcd, gobuild.build_etcd),
        "kwok": Component("kwok", kwok, gobuild.build_kwok),
        "helm": Component("helm", helm, gobuild.build_helm),
        "kustomize": Component("kustomize", kustomize, gobuild.build_kustomize),
        "registry": Component("registry", registry, gobuild.build_registry),
    }


def _from_assets(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        return None
    candidate = Path(assets) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def find(name: str) -> Path | None:
    """The binary for ``name`` if it exists already, without building anything."""
    from_assets = _from_assets(name)
    if from_assets:
        return from_assets
    cached = components()[name].cached_path(cache_dir())
    return cached if cached.is_file() else None


def ensure(name: str, progress: Progress = lambda _msg: None) -> Path:
    """The binary for ``name``, building it into the cache when absent."""
    found = find(name)
    if found:
        return found
    component = components()[name]
    target = component.cached_path(cache_dir())
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same binary: wait for it
        if target.is_file():
            return target
        partial = target.with_name(target.name + ".partial")
        component.recipe(component.version, partial, progress)
        os.replace(partial, target)  # atomic: a killed build never leaves a half-written binary
    return target


def ensure_all(names: list[str] | None = None, progress: Progress = lambda _msg: None) -> dict[str, Path]:
    """Every requested binary (all of them by default)."""
    wanted = names or list(components())
    return {name: ensure(name, progress) for name in wanted}
