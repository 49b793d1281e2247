"""The wheel as users get it: built from the repository, installed into a fresh virtualenv with
nothing of the checkout around, and run from outside it — the policy library, the LICENSE and
every imported dependency must come along."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRIVILEGED_POD = """apiVersion: v1
kind: Pod
metadata: {name: root, namespace: default}
spec:
  containers:
  - name: c
    image: nginx
    securityContext: {privileged: true}
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the repository's sources (the checkout stays clean)."""
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    for name in ("acm_lite", "policies"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        check=True,
        timeout=600,
    )
    (built,) = dist.glob("acm_lite-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel; dependencies come from the test environment's
    site-packages through a .pth file, so nothing is downloaded again."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return venv


def _clean_env() -> dict[str, str]:
    """The environment without what would point the installed package elsewhere."""
    return {k: v for k, v in os.environ.items() if k not in ("ACM_LITE_POLICIES", "PYTHONPATH")}


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "acm-lite"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_clean_env(),
        timeout=300,
    )


def test_wheel_holds_the_library_and_the_license(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "acm_lite/policies/bundles/pod-security-baseline/constraints.yaml" in names
    shipped = {n.removeprefix("acm_lite/policies/") for n in names if n.startswith("acm_lite/policies/")}
    in_repo = {
        str(p.relative_to(ROOT / "policies"))
        for p in (ROOT / "policies").rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".md")
    }
    assert shipped == in_repo
    assert "acm_lite/data/kwok-stages.yaml" in names  # the Stages kwok runs in `dev up` clusters
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_installed_wheel_enforces_a_bundle_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pod.yaml").write_text(PRIVILEGED_POD)
    run = _run(
        installed,
        "vet",
        str(repo),
        "--source-format",
        "unstructured",
        "--policy-bundle",
        "pod-security-baseline",
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr
    assert "ACM3100 PolicyViolation" in run.stdout and "privileged" in run.stdout.lower()
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import acm_lite.policy.library as l; print(l.root())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env=_clean_env(),
    ).stdout
    assert where.startswith(str(installed)), where
    (repo / "pod.yaml").write_text(PRIVILEGED_POD.replace("privileged: true", "privileged: false"))
    clean = _run(
        installed,
        "vet",
        str(repo),
        "--source-format",
        "unstructured",
        "--policy-bundle",
        "pod-security-baseline",
        cwd=tmp_path,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_every_imported_distribution_is_declared() -> None:
    """urllib3 was imported without being declared: any third-party import must be."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower().replace("_", "-")
        for d in project["dependencies"]
    }
    owners = metadata.packages_distributions()
    imported: set[str] = set()
    for path in (ROOT / "acm_lite").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "acm_lite"}
    missing = {
        m: owners.get(m)
        for m in third_party
        if not {o.lower().replace("_", "-") for o in owners.get(m, [m])} & declared
    }
    assert not missing
