"""`acm-lite vet` and `acm-lite hydrate` of a Helm chart or an OCI image, as a user runs them: the
chart from a Helm repository on loopback (packaged and indexed by the real helm) or pushed with
`helm push` to distribution's registry, the image pushed to the registry with basic auth over
TLS, credentials in the environment. No API server: both commands are offline but for the
source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from acm_lite.devcluster import binaries
from acm_lite.source import oci
from acm_lite.source.transfer import Credentials
from tests.integration.test_artifact_sources import layer
from tests.support import helmrepo
from tests.support.helmrepo import HelmRepository
from tests.support.registry import Registry
from tests.unit.repo_builder import cm, ns

PRIVILEGED_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-root
  namespace: {{ .Values.namespace }}
spec:
  containers:
  - name: main
    image: busybox
    securityContext:
      privileged: true
"""
BAD_LABEL = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-labelled
  namespace: {{ .Values.namespace }}
  labels:
    "not a label": x
"""


@pytest.fixture
def cache(helm_binary: Path, tmp_path: Path) -> Path:
    """acm-lite's cache for the commands, with helm where `acm-lite dev build` leaves it."""
    root = tmp_path / "cache"
    helm = binaries.components()["helm"].cached_path(root)
    helm.parent.mkdir(parents=True)
    helm.symlink_to(helm_binary)
    return root


def cli(*args: str, cache: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBEBUILDER_ASSETS" and not k.startswith(("ACM_LITE_HELM_", "ACM_LITE_OCI_", "KUBECONFIG"))
    }
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args],
        capture_output=True,
        text=True,
        env={**base, "ACM_LITE_CACHE": str(cache), "KUBECONFIG": "/nonexistent", **(env or {})},
        timeout=300,
    )


def publish(
    helm: Path, repo: HelmRepository, tmp_path: Path, chart: str, version: str, *, extra: dict[str, str]
) -> None:
    templates = {"configmap.yaml": helmrepo.CONFIGMAP, **extra}
    made = helmrepo.make_chart(tmp_path / "charts", chart, version, templates)
    helmrepo.package(helm, made, repo.directory)
    helmrepo.index(helm, repo.directory)


def helm_flags(repo: str, chart: str, *more: str) -> list[str]:
    return ["--source-type", "helm", "--helm-repo", repo, "--helm-chart", chart, *more]


def test_vet_of_a_helm_chart_is_clean_and_names_the_chart(
    helm_binary: Path, helm_repository: HelmRepository, tmp_path: Path, cache: Path
) -> None:
    publish(helm_binary, helm_repository, tmp_path, "web", "1.0.0", extra={})
    publish(helm_binary, helm_repository, tmp_path, "web", "1.1.0", extra={})
    run = cli("vet", *helm_flags(helm_repository.url, "web", "--helm-version", "^1.0"), cache=cache)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No validation issues found (defaultcluster)." in run.stdout
    assert helm_repository.requests[0] == "/index.yaml"
    assert "/web-1.1.0.tgz" in helm_repository.requests  # the newest match was rendered
    assert "/web-1.0.0.tgz" not in helm_repository.requests
    clusters = cli(
        "vet", *helm_flags(helm_repository.url, "web"), "--clusters", "a,b", "-o", "json", cache=cache
    )
    assert clusters.returncode == 0, clusters.stderr
    data = json.loads(clusters.stdout)
    assert data["clusters"] == ["a", "b"]
    # a chart declares no cluster: the names are a warning naming the chart, not a failure
    assert [(e["code"], e["blocking"]) for e in data["errors"]] == [("ACM1047", False)]
    assert f"{helm_repository.url}/web" in data["errors"][0]["message"]


def test_vet_of_a_chart_with_an_invalid_object_or_a_policy_violation_fails_naming_it(
    helm_binary: Path, helm_repository: HelmRepository, tmp_path: Path, cache: Path
) -> None:
    publish(
        helm_binary,
        helm_repository,
        tmp_path,
        "bad",
        "0.1.0",
        extra={"pod.yaml": PRIVILEGED_POD, "labelled.yaml": BAD_LABEL},
    )
    flags = helm_flags(helm_repository.url, "bad", "--helm-release", "shop", "--helm-values")
    values = tmp_path / "values.yaml"
    values.write_text("namespace: shop\n")
    run = cli("vet", *flags, str(values), "-o", "json", cache=cache)
    assert run.returncode == 1, run.stdout + run.stderr
    found = json.loads(run.stdout)["errors"]
    label = next(e for e in found if e["object"] and e["object"]["name"] == "shop-labelled")
    assert label["code"] == "ACM1040" and label["blocking"]
    assert label["object"]["namespace"] == "shop" and label["object"]["kind"] == "ConfigMap"

    # the objects themselves are valid, the shipped policy refuses one
    publish(helm_binary, helm_repository, tmp_path, "privileged", "0.1.0", extra={"pod.yaml": PRIVILEGED_POD})
    flags = helm_flags(helm_repository.url, "privileged", "--helm-release", "shop", "--helm-values")
    clean = cli("vet", *flags, str(values), cache=cache)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    policed = cli("vet", *flags, str(values), "--policy-bundle", "pod-security-baseline", cache=cache)
    assert policed.returncode == 1, policed.stdout + policed.stderr
    assert "ACM3100 PolicyViolation" in policed.stdout, policed.stdout
    assert "pss-baseline-privileged" in policed.stdout and "Kind=Pod shop/shop-root" in policed.stdout


def test_hydrate_of_a_helm_chart_writes_each_object_per_cluster(
    helm_binary: Path, helm_repository: HelmRepository, tmp_path: Path, cache: Path
) -> None:
    publish(helm_binary, helm_repository, tmp_path, "web", "2.0.0", extra={})
    out = tmp_path / "compiled"
    values = tmp_path / "values.yaml"
    values.write_text("namespace: shop\ngreeting: hi\n")
    flags = helm_flags(helm_repository.url, "web", "--helm-release", "front", "--helm-values", str(values))
    run = cli("hydrate", *flags, "--clusters", "east,west", "--output", str(out), cache=cache)
    assert run.returncode == 0, run.stdout + run.stderr
    for cluster in ("east", "west"):
        files = sorted(str(p.relative_to(out / cluster)) for p in (out / cluster).rglob("*.yaml"))
        assert files == ["shop/configmap_front-settings.yaml"]
        written = yaml.safe_load((out / cluster / files[0]).read_text())
        assert written["data"] == {"version": "2.0.0", "greeting": "hi"}


def test_a_missing_chart_or_version_is_a_coded_error(
    helm_binary: Path, helm_repository: HelmRepository, tmp_path: Path, cache: Path
) -> None:
    publish(helm_binary, helm_repository, tmp_path, "web", "1.0.0", extra={})
    missing = cli("vet", *helm_flags(helm_repository.url, "nope"), cache=cache)
    assert missing.returncode == 1
    assert "ACM1104" in missing.stderr and "nope" in missing.stderr, missing.stderr
    out = tmp_path / "compiled"
    version = cli(
        "hydrate",
        *helm_flags(helm_repository.url, "web", "--helm-version", "9.9.9"),
        "--output",
        str(out),
        cache=cache,
    )
    assert version.returncode == 1
    assert "ACM1104" in version.stderr and "9.9.9" in version.stderr, version.stderr
    assert not out.exists()


def test_a_directory_with_a_helm_source_is_a_usage_error(tmp_path: Path, cache: Path) -> None:
    run = cli("vet", str(tmp_path), *helm_flags("https://charts.example.com", "web"), cache=cache)
    assert run.returncode == 2 and "reads no directory" in run.stderr


def test_a_chart_pushed_to_a_registry_is_vetted(
    helm_binary: Path, oci_registry: Registry, tmp_path: Path, cache: Path
) -> None:
    chart = f"c{uuid.uuid4().hex[:8]}"
    packaged = helmrepo.package(
        helm_binary,
        helmrepo.make_chart(tmp_path / "charts", chart, "0.3.0", {"pod.yaml": PRIVILEGED_POD}),
        tmp_path / "packaged",
    )
    pushed = subprocess.run(
        [str(helm_binary), "push", str(packaged), f"oci://{oci_registry.host}/charts", "--plain-http"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path), "HELM_REGISTRY_CONFIG": str(tmp_path / "reg.json")},
    )
    assert pushed.returncode == 0, pushed.stderr
    flags = helm_flags(f"oci://{oci_registry.host}/charts", chart, "--helm-version", "0.3.0")
    assert cli("vet", *flags, cache=cache).returncode == 0
    policed = cli("vet", *flags, "--policy-bundle", "pod-security-baseline", "-o", "json", cache=cache)
    assert policed.returncode == 1
    assert any(e["object"]["kind"] == "Pod" for e in json.loads(policed.stdout)["errors"])


def test_an_oci_image_is_vetted_and_hydrated_with_credentials_from_the_environment(
    secure_registry: Registry, tmp_path: Path, cache: Path
) -> None:
    creds = Credentials(secure_registry.username or "", secure_registry.password or "")
    image = secure_registry.image(f"configs/{uuid.uuid4().hex[:8]}", "v1")
    oci.push(
        image,
        layer(
            {
                "base/ns.yaml": ns("shop"),
                "prod/ns.yaml": ns("shop"),
                "prod/cm.yaml": {**cm("settings", "shop"), "data": {"tier": "prod"}},
            }
        ),
        credentials=creds,
        ca_file=secure_registry.ca_file,
    )
    flags = [
        "--source-type",
        "oci",
        "--oci-image",
        image,
        "--dir",
        "prod",
        "--source-format",
        "unstructured",
        "--source-ca-file",
        str(secure_registry.ca_file),
    ]
    env = {"ACM_LITE_OCI_USERNAME": creds.username, "ACM_LITE_OCI_PASSWORD": creds.password}
    refused = cli("vet", *flags, cache=cache)
    assert refused.returncode == 1 and "ACM1103" in refused.stderr, refused.stderr
    vetted = cli("vet", *flags, cache=cache, env=env)
    assert vetted.returncode == 0, vetted.stdout + vetted.stderr
    assert creds.password not in vetted.stdout + vetted.stderr
    out = tmp_path / "compiled"
    hydrated = cli("hydrate", *flags, "--output", str(out), "--flat", cache=cache, env=env)
    assert hydrated.returncode == 0, hydrated.stdout + hydrated.stderr
    objects = list(yaml.safe_load_all((out / "defaultcluster.yaml").read_text()))
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects if o) == [
        ("ConfigMap", "settings"),
        ("Namespace", "shop"),
    ]
    missing = cli(
        "vet", *[f if f != image else image[: -len(":v1")] + ":v9" for f in flags], cache=cache, env=env
    )
    assert missing.returncode == 1 and "ACM1104" in missing.stderr and ":v9" in missing.stderr, missing.stderr
