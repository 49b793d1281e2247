"""Build control-plane binaries from the Go module proxy through small wrapper modules.

``k8s.io/kubernetes`` maps its staging modules (``k8s.io/api``, ``k8s.io/client-go``, ...) to local
paths with ``replace``, so ``go install k8s.io/kubernetes/cmd/...@vX`` is refused. A wrapper module
requires ``k8s.io/kubernetes vX.Y.Z`` and replaces every staging module with its published
``v0.Y.Z``, a list generated from the release's own go.mod.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from acm_lite.errors import BINARY_BUILD_FAILED, TOOLCHAIN_MISSING, AcmError

Progress = Callable[[str], None]

_STAGING_REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", re.MULTILINE)
_OTHER_REPLACE = re.compile(r"^\s*(\S+)(\s+\S+)?\s+=>\s+(?!\./)(\S+)\s+(\S+)\s*$", re.MULTILINE)


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=mod -buildvcs=false").strip()
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def _run(args: Sequence[str], cwd: Path, what: str, progress: Progress) -> str:
    """Run one go command, streaming a progress line every few seconds; its output on failure."""
    try:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=_go_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except FileNotFoundError as e:
        raise AcmError(
            TOOLCHAIN_MISSING,
            f"cannot run {args[0]!r} to build {what}",
            hint="install Go 1.24+ or point KUBEBUILDER_ASSETS at existing binaries",
        ) from e
    assert proc.stdout is not None
    lines: list[str] = []
    started = last = time.monotonic()
    for line in proc.stdout:
        lines.append(line.rstrip())
        now = time.monotonic()
        if now - last >= 5:
            last = now
            progress(f"{what}: {len(lines)} packages, {now - started:.0f}s")
    code = proc.wait()
    output = "\n".join(lines)
    if code != 0:
        tail = "\n".join(lines[-25:])
        raise AcmError(
            BINARY_BUILD_FAILED,
            f"`{' '.join(args)}` failed for {what} (exit {code}):\n{tail}",
            hint="check that the Go module proxy (GOPROXY) is reachable, or set KUBEBUILDER_ASSETS",
        )
    return output


def _wrapper(workdir: Path, progress: Progress, what: str) -> None:
    _run(["go", "mod", "init", "acm-lite.local/build"], workdir, what, progress)


def staging_replacements(gomod: str, minor_version: str) -> list[tuple[str, str]]:
    """(module, module@v0.Y.Z) for every staging module in a Kubernetes release's go.mod."""
    return [(m, f"{m}@{minor_version}") for m in sorted(set(_STAGING_REPLACE.findall(gomod)))]


def other_replacements(gomod: str) -> list[tuple[str, str]]:
    """Non-local replace lines of a go.mod, carried over to the wrapper unchanged."""
    block = re.search(r"^replace \((.*?)^\)", gomod, re.MULTILINE | re.DOTALL)
    text = block.group(1) if block else ""
    text += "\n".join(
        line[len("replace ") :]
        for line in gomod.splitlines()
        if line.startswith("replace ") and "(" not in line
    )
    out = []
    for m in _OTHER_REPLACE.finditer(text):
        old = m.group(1) + (m.group(2) or "").replace(" ", "@")
        out.append((old, f"{m.group(3)}@{m.group(4)}"))
    return out


def _module_gomod(module: str, version: str, workdir: Path, progress: Progress) -> str:
    info = json.loads(
        _run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            workdir,
            f"{module}@{version}",
            progress,
        )
    )
    return Path(info["GoMod"]).read_text()


def _kubernetes_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={date}",
        ]
    return " ".join(flags)


def _build_kubernetes(command: str, version: str, out: Path, progress: Progress) -> None:
    with tempfile.TemporaryDirectory(prefix="acm-lite-build-") as tmp:
        work = Path(tmp)
        _wrapper(work, progress, command)
        progress(f"{command} {version}: reading the release's go.mod")
        gomod = _module_gomod("k8s.io/kubernetes", version, work, progress)
        staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
        edits = [f"-replace={old}={new}" for old, new in staging_replacements(gomod, staging_version)]
        edits += [f"-replace={old}={new}" for old, new in other_replacements(gomod)]
        _run(["go", "mod", "edit", *edits], work, command, progress)
        progress(f"{command} {version}: resolving modules ({len(edits)} replacements)")
        _run(["go", "get", f"k8s.io/kubernetes@{version}"], work, command, progress)
        progress(f"{command} {version}: compiling")
        _run(
            [
                "go",
                "build",
                "-v",
                "-trimpath",
                "-ldflags",
                _kubernetes_ldflags(version),
                "-o",
                str(out),
                f"k8s.io/kubernetes/cmd/{command}",
            ],
            work,
            command,
            progress,
        )


def build_kube_apiserver(version: str, out: Path, progress: Progress) -> None:
    _build_kubernetes("kube-apiserver", version, out, progress)


def build_kube_controller_manager(version: str, out: Path, progress: Progress) -> None:
    _build_kubernetes("kube-controller-manager", version, out, progress)


def build_kube_scheduler(version: str, out: Path, progress: Progress) -> None:
    _build_kubernetes("kube-scheduler", version, out, progress)


def build_kubectl(version: str, out: Path, progress: Progress) -> None:
    _build_kubernetes("kubectl", version, out, progress)


def _build_simple(
    module: str, package: str, *, ldflags: str, version: str, out: Path, progress: Progress
) -> None:
    name = out.name.removesuffix(".partial")
    with tempfile.TemporaryDirectory(prefix="acm-lite-build-") as tmp:
        work = Path(tmp)
        _wrapper(work, progress, name)
        progress(f"{name} {version}: resolving modules")
        _run(["go", "get", f"{module}@{version}"], work, name, progress)
        progress(f"{name} {version}: compiling")
        _run(
            ["go", "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(out), package],
            work,
            name,
            progress,
        )


def build_etcd(version: str, out: Path, progress: Progress) -> None:
    module = "go.etcd.io/etcd/server/v3"
    _build_simple(module, module, ldflags="-s -w", version=version, out=out, progress=progress)


def build_helm(version: str, out: Path, progress: Progress) -> None:
    major = version.lstrip("v").split(".")[0]
    module = f"helm.sh/helm/v{major}"
    ldflags = f"-s -w -X {module}/internal/version.version={version}"
    _build_simple(module, f"{module}/cmd/helm", ldflags=ldflags, version=version, out=out, progress=progress)


def kustomize_ldflags(version: str) -> str:
    """Stamp the release into ``kustomize version`` (a module build would print ``(devel)``)."""
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pkg = "sigs.k8s.io/kustomize/api/provenance"
    return f"-s -w -X {pkg}.version={version} -X {pkg}.buildDate={date}"


def build_kustomize(version: str, out: Path, progress: Progress) -> None:
    major = version.lstrip("v").split(".")[0]
    module = f"sigs.k8s.io/kustomize/kustomize/v{major}"
    _build_simple(
        module, module, ldflags=kustomize_ldflags(version), version=version, out=out, progress=progress
    )


def build_registry(version: str, out: Path, progress: Progress) -> None:
    """distribution's ``registry`` (the OCI registry tests push charts and artifacts to)."""
    major = version.lstrip("v").split(".")[0]
    module = f"github.com/distribution/distribution/v{major}"
    ldflags = f"-s -w -X {module}/version.version={version}"
    _build_simple(
        module, f"{module}/cmd/registry", ldflags=ldflags, version=version, out=out, progress=progress
    )


def build_kwok(version: str, out: Path, progress: Progress) -> None:
    """kwok, which simulates nodes and the pod lifecycle for the local clusters."""
    module = "sigs.k8s.io/kwok"
    ldflags = f"-s -w -X {module}/pkg/consts.Version={version.lstrip('v')}"
    _build_simple(module, f"{module}/cmd/kwok", ldflags=ldflags, version=version, out=out, progress=progress)
