"""Helm charts and OCI artifacts as sources, end to end: distribution's registry and a Helm
repository on loopback, charts packaged and pushed with the real helm, rendered with helm
template, synced into a real API server. Every failure is coded, names the source, and applies
nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.source import oci
from acm_lite.source.helm import HelmSpec
from acm_lite.source.oci import OciSpec
from acm_lite.source.transfer import Credentials
from tests.support import helmrepo
from tests.support.helmrepo import HelmRepository
from tests.support.kube import get
from tests.support.registry import Registry
from tests.unit.repo_builder import cm, ns


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    return Cluster.connect(control_plane.kubeconfig)


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("HELM", "OCI"):
        for var in ("USERNAME", "PASSWORD", "PASSWORD_FILE", "TOKEN", "TOKEN_FILE"):
            monkeypatch.delenv(f"ACM_LITE_{kind}_{var}", raising=False)
    monkeypatch.delenv("ACM_LITE_SOURCE_ALLOW_HTTP", raising=False)


def unique() -> str:
    return uuid.uuid4().hex[:8]


def layer(files: dict[str, object]) -> bytes:
    """A gzip-compressed tarball of YAML files (a dict or list value is dumped)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, value in files.items():
            data = (
                value
                if isinstance(value, bytes)
                else yaml.safe_dump_all(value if isinstance(value, list) else [value]).encode()
            )
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def oci_spec(image: str, name: str, ca_file: Path | None = None) -> SyncSpec:
    return SyncSpec(
        repo=image,
        name=name,
        source_format="unstructured",
        source_type="oci",
        oci=OciSpec(image=image, ca_file=ca_file),
    )


def helm_spec(repo: str, chart: str, version: str, name: str, namespace: str) -> SyncSpec:
    source = HelmSpec(repo=repo, chart=chart, version=version, values=f"namespace: {namespace}\n")
    return SyncSpec(
        repo=source.display, name=name, source_format="unstructured", source_type="helm", helm=source
    )


def run(cluster: Cluster, spec: SyncSpec, tmp_path: Path) -> pipeline.SyncResult:
    return pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))


def codes(result: pipeline.SyncResult) -> list[str]:
    return [p.code.id for p in result.problems]


def refused(result: pipeline.SyncResult, code: errors.Code, names: str) -> str:
    """The pass stopped at the source with ``code`` naming ``names``, and applied nothing."""
    assert codes(result) == [code.id], [p.render() for p in result.problems]
    assert result.status.stage == "source"
    assert result.applied == 0 and not result.results
    problem = result.problems[0]
    assert names in problem.message or names in (problem.source or ""), problem.render()
    return problem.message


def configmap(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    found = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    return None if found is None else found.get("data", {})


# OCI artifacts


def test_an_oci_artifact_is_synced_and_a_moved_tag_is_picked_up(
    secure_registry: Registry, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space, name = f"oci-{unique()}", f"oci-{unique()}"
    creds = Credentials(secure_registry.username or "", secure_registry.password or "")
    image = secure_registry.image(f"configs/{name}", "prod")
    first = oci.push(
        image,
        layer({"ns.yaml": ns(space), "app/cm.yaml": {**cm("settings", space), "data": {"v": "1"}}}),
        credentials=creds,
        ca_file=secure_registry.ca_file,
    )
    monkeypatch.setenv("ACM_LITE_OCI_USERNAME", creds.username)
    monkeypatch.setenv("ACM_LITE_OCI_PASSWORD", creds.password)
    spec = oci_spec(image, name, secure_registry.ca_file)

    synced = run(cluster, spec, tmp_path)
    assert synced.ok, [p.render() for p in synced.problems]
    assert synced.status.commit == first and first.startswith("sha256:")
    assert configmap(cluster, space, "settings") == {"v": "1"}
    assert spec.to_spec()["oci"] == {"image": image, "dir": ".", "auth": "none"}

    second = oci.push(
        image,
        layer({"ns.yaml": ns(space), "app/cm.yaml": {**cm("settings", space), "data": {"v": "2"}}}),
        credentials=creds,
        ca_file=secure_registry.ca_file,
    )
    assert second != first
    moved = run(cluster, spec, tmp_path)
    assert moved.ok and moved.status.commit == second
    assert configmap(cluster, space, "settings") == {"v": "2"}


def test_a_registry_asking_for_credentials_refuses_none_and_wrong_ones(
    secure_registry: Registry, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space, name = f"oci-{unique()}", f"oci-{unique()}"
    image = secure_registry.image(f"configs/{name}", "v1")
    oci.push(
        image,
        layer({"ns.yaml": ns(space)}),
        credentials=Credentials(secure_registry.username or "", secure_registry.password or ""),
        ca_file=secure_registry.ca_file,
    )
    spec = oci_spec(image, name, secure_registry.ca_file)
    refused(run(cluster, spec, tmp_path), errors.SOURCE_AUTH_FAILED, image)
    monkeypatch.setenv("ACM_LITE_OCI_USERNAME", secure_registry.username or "")
    monkeypatch.setenv("ACM_LITE_OCI_PASSWORD", "not-the-password")
    message = refused(run(cluster, spec, tmp_path), errors.SOURCE_AUTH_FAILED, image)
    assert "not-the-password" not in message
    assert get(cluster, f"/api/v1/namespaces/{space}") is None


def test_an_oci_tag_that_does_not_exist_is_not_found(
    oci_registry: Registry, cluster: Cluster, tmp_path: Path
) -> None:
    name = f"oci-{unique()}"
    image = oci_registry.image(f"configs/{name}", "v1")
    oci.push(image, layer({"ns.yaml": ns(f"oci-{unique()}")}))
    missing = oci_registry.image(f"configs/{name}", "no-such-tag")
    result = run(cluster, oci_spec(missing, name), tmp_path)
    refused(result, errors.ARTIFACT_NOT_FOUND, missing)
    assert errors.ARTIFACT_NOT_FOUND.category is errors.Category.PERMANENT


def _member(
    name: str, data: bytes = b"kind: ConfigMap\n", kind: bytes = tarfile.REGTYPE, to: str = ""
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = to
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("case", "data", "says"),
    [
        ("not-a-tarball", b'{"this is": "json, not a tarball"}', "not a"),
        ("dot-dot", _member("../../escaped.yaml"), "leads outside"),
        ("absolute", _member("/tmp/acm-lite-escaped.yaml"), "absolute path"),
        (
            "symlink-out",
            _member("cm.yaml", kind=tarfile.SYMTYPE, to="../../../../etc/passwd"),
            "leads outside",
        ),
    ],
)
def test_hostile_layers_are_refused_naming_the_reference(
    oci_registry: Registry, cluster: Cluster, tmp_path: Path, *, case: str, data: bytes, says: str
) -> None:
    name = f"oci-{unique()}"
    image = oci_registry.image(f"hostile/{case}", name)
    oci.push(image, data)
    message = refused(run(cluster, oci_spec(image, name), tmp_path), errors.ARTIFACT_REJECTED, image)
    assert says in message
    assert not (tmp_path / "escaped.yaml").exists() and not Path("/tmp/acm-lite-escaped.yaml").exists()
    assert not list((tmp_path / "cache" / "oci").glob("*/files"))  # nothing half-unpacked kept


# Helm charts from a Helm repository


def _publish(helm: Path, repo: HelmRepository, tmp_path: Path, chart: str, *versions: str) -> None:
    for version in versions:
        helmrepo.package(helm, helmrepo.make_chart(tmp_path / "charts", chart, version), repo.directory)
    helmrepo.index(helm, repo.directory)


def test_a_chart_range_picks_the_newest_match_and_a_newer_release_at_the_next_poll(
    helm_binary: Path,
    helm_repository: HelmRepository,
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
) -> None:
    name = f"helm-{unique()}"
    _publish(helm_binary, helm_repository, tmp_path, "demo", "1.0.0", "1.1.0", "2.0.0")
    spec = helm_spec(helm_repository.url, "demo", "^1.0", name, namespace)

    first = run(cluster, spec, tmp_path)
    assert first.ok, [p.render() for p in first.problems]
    assert configmap(cluster, namespace, "release-name-settings") == {"version": "1.1.0", "greeting": "hello"}
    assert first.status.commit is not None and first.status.commit.startswith("1.1.0@sha256:")

    again = run(cluster, spec, tmp_path)
    assert again.status.commit == first.status.commit and again.applied == 0

    _publish(helm_binary, helm_repository, tmp_path, "demo", "1.2.0")
    newer = run(cluster, spec, tmp_path)
    assert newer.ok and newer.status.commit is not None and newer.status.commit.startswith("1.2.0@sha256:")
    assert configmap(cluster, namespace, "release-name-settings") == {"version": "1.2.0", "greeting": "hello"}


def test_a_helm_repository_answering_404_is_not_found(
    helm_repository: HelmRepository, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    missing = helm_repository.url + "/no-such-repo"
    result = run(cluster, helm_spec(missing, "demo", "1.0.0", f"helm-{unique()}", namespace), tmp_path)
    refused(result, errors.ARTIFACT_NOT_FOUND, missing)
    assert helm_repository.requests == ["/no-such-repo/index.yaml"]


def test_a_version_no_release_matches_is_not_found(
    helm_binary: Path, helm_repository: HelmRepository, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    _publish(helm_binary, helm_repository, tmp_path, "demo", "1.0.0")
    result = run(
        cluster, helm_spec(helm_repository.url, "demo", ">=3", f"helm-{unique()}", namespace), tmp_path
    )
    assert "versions: 1.0.0" in refused(result, errors.ARTIFACT_NOT_FOUND, "demo")


def test_a_chart_not_matching_the_index_digest_is_refused(
    helm_binary: Path, helm_repository: HelmRepository, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    _publish(helm_binary, helm_repository, tmp_path, "demo", "1.0.0")
    archive = helm_repository.directory / "demo-1.0.0.tgz"
    archive.write_bytes(archive.read_bytes() + b"\0")  # altered after indexing
    result = run(
        cluster, helm_spec(helm_repository.url, "demo", "1.0.0", f"helm-{unique()}", namespace), tmp_path
    )
    refused(result, errors.DIGEST_MISMATCH, "demo")
    assert configmap(cluster, namespace, "release-name-settings") is None


def _index_by_hand(repo: HelmRepository, chart: str, version: str, data: bytes) -> None:
    """Publish a .tgz made by hand (not by helm package), with an index.yaml naming it."""
    (repo.directory / f"{chart}-{version}.tgz").write_bytes(data)
    entry = {"name": chart, "version": version, "urls": [f"{chart}-{version}.tgz"]}
    entry["digest"] = hashlib.sha256(data).hexdigest()
    (repo.directory / "index.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "entries": {chart: [entry]}})
    )


def test_a_chart_holding_a_link_is_refused_and_a_failing_template_is_helms_error(
    helm_binary: Path, helm_repository: HelmRepository, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        chart_yaml = b"apiVersion: v2\nname: linked\nversion: 1.0.0\n"
        info = tarfile.TarInfo("linked/Chart.yaml")
        info.size = len(chart_yaml)
        tar.addfile(info, io.BytesIO(chart_yaml))
        link = tarfile.TarInfo("linked/templates/secrets.yaml")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    _index_by_hand(helm_repository, "linked", "1.0.0", buf.getvalue())
    result = run(
        cluster, helm_spec(helm_repository.url, "linked", "1.0.0", f"helm-{unique()}", namespace), tmp_path
    )
    assert "symbolic link" in refused(result, errors.ARTIFACT_REJECTED, "linked")

    failing = helmrepo.make_chart(
        tmp_path / "charts", "failing", "1.0.0", {"fail.yaml": '{{ fail "the chart says no" }}\n'}
    )
    helmrepo.package(helm_binary, failing, helm_repository.directory)
    helmrepo.index(helm_binary, helm_repository.directory)
    result = run(
        cluster, helm_spec(helm_repository.url, "failing", "1.0.0", f"helm-{unique()}", namespace), tmp_path
    )
    assert "the chart says no" in refused(result, errors.RENDER_FAILED, "failing")


def test_wrong_or_missing_credentials_for_a_helm_repository(
    helm_binary: Path, cluster: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "private"
    served.mkdir()
    repo = HelmRepository(served, credentials=("reader", "right-password"))
    try:
        _publish(helm_binary, repo, tmp_path, "demo", "1.0.0")
        spec = helm_spec(repo.url, "demo", "1.0.0", f"helm-{unique()}", namespace)
        refused(run(cluster, spec, tmp_path), errors.SOURCE_AUTH_FAILED, repo.url)
        monkeypatch.setenv("ACM_LITE_SOURCE_ALLOW_HTTP", "1")
        monkeypatch.setenv("ACM_LITE_HELM_USERNAME", "reader")
        monkeypatch.setenv("ACM_LITE_HELM_PASSWORD", "wrong-password")
        message = refused(run(cluster, spec, tmp_path), errors.SOURCE_AUTH_FAILED, repo.url)
        assert "wrong-password" not in message
        assert configmap(cluster, namespace, "release-name-settings") is None
        monkeypatch.setenv("ACM_LITE_HELM_PASSWORD", "right-password")
        assert run(cluster, spec, tmp_path).ok
        assert configmap(cluster, namespace, "release-name-settings") == {
            "version": "1.0.0",
            "greeting": "hello",
        }
    finally:
        repo.close()


# Helm charts from an OCI registry, through the command line


def _cli(
    control_plane: APIServer, helm: Path, cache: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ACM_LITE_HELM_", "ACM_LITE_OCI_"))},
        "KUBECONFIG": control_plane.kubeconfig,
        "ACM_LITE_CACHE": str(cache),
        "KUBEBUILDER_ASSETS": str(helm.parent),  # helm from where the tests found it
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def test_a_chart_pushed_with_helm_push_is_synced_from_oci(
    helm_binary: Path,
    *,
    oci_registry: Registry,
    control_plane: APIServer,
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
) -> None:
    chart = f"chart{unique()}"
    for version in ("0.1.0", "0.2.0", "1.0.0"):
        packaged = helmrepo.package(
            helm_binary, helmrepo.make_chart(tmp_path / "charts", chart, version), tmp_path / "packaged"
        )
        subprocess.run(
            [str(helm_binary), "push", str(packaged), f"oci://{oci_registry.host}/charts", "--plain-http"],
            check=True,
            capture_output=True,
            env={**os.environ, "HOME": str(tmp_path)},
        )
    values = tmp_path / "values.yaml"
    values.write_text(f"namespace: {namespace}\ngreeting: from-values\n")
    name = f"helm-{unique()}"
    common = [
        "--source-type", "helm",
        "--helm-repo", f"oci://{oci_registry.host}/charts",
        "--helm-chart", chart,
        "--helm-version", ">=0.1.0 <1.0.0",
        "--helm-release", "web",
        "--helm-values", str(values),
        "--name", name,
    ]  # fmt: skip
    done = _cli(control_plane, helm_binary, tmp_path / "cache", "sync", "--once", *common, "-o", "json")
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["commit"].startswith("0.2.0@sha256:") and result["state"] == "SYNCED"
    assert configmap(cluster, namespace, "web-settings") == {"version": "0.2.0", "greeting": "from-values"}

    status = get(cluster, f"/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs/{name}")
    assert status is not None
    assert status["spec"]["sourceType"] == "helm"
    assert status["spec"]["helm"]["chart"] == chart and status["spec"]["helm"]["version"] == ">=0.1.0 <1.0.0"

    missing = _cli(
        control_plane, helm_binary, tmp_path / "cache", "sync", "--once", *common[:5], "no-such-chart",
        "--name", f"helm-{unique()}", "-o", "json",
    )  # fmt: skip
    assert missing.returncode == 1, missing.stderr + missing.stdout
    problems = json.loads(missing.stdout)["errors"]
    assert [p["code"] for p in problems] == [errors.ARTIFACT_NOT_FOUND.id]
    assert "no-such-chart" in problems[0]["message"]


def test_a_chart_in_a_registry_behind_basic_auth_and_tls(
    helm_binary: Path, secure_registry: Registry, cluster: Cluster, *, namespace: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    chart = f"chart{unique()}"
    packaged = helmrepo.package(
        helm_binary, helmrepo.make_chart(tmp_path / "charts", chart, "3.1.4"), tmp_path
    )
    subprocess.run(
        [
            str(helm_binary), "push", str(packaged), f"oci://{secure_registry.host}/charts",
            "--ca-file", str(secure_registry.ca_file),
            "--username", secure_registry.username or "", "--password", secure_registry.password or "",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    source = HelmSpec(
        repo=f"oci://{secure_registry.host}/charts",
        chart=chart,
        version="3.1.4",
        values=f"namespace: {namespace}\n",
        ca_file=secure_registry.ca_file,
    )
    spec = SyncSpec(
        repo=source.display,
        name=f"helm-{unique()}",
        source_format="unstructured",
        source_type="helm",
        helm=source,
    )
    refused(run(cluster, spec, tmp_path), errors.SOURCE_AUTH_FAILED, chart)
    monkeypatch.setenv("ACM_LITE_HELM_USERNAME", secure_registry.username or "")
    monkeypatch.setenv("ACM_LITE_HELM_PASSWORD", secure_registry.password or "")
    synced = run(cluster, spec, tmp_path)
    assert synced.ok, [p.render() for p in synced.problems]
    assert configmap(cluster, namespace, "release-name-settings") == {"version": "3.1.4", "greeting": "hello"}
