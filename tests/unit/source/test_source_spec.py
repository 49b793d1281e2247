"""Naming a Helm or OCI source: the flags, the spec written to the RootSync, and the RootSync read
back (no network)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from acm_lite import errors
from acm_lite.cli import clusterargs
from acm_lite.errors import AcmError
from acm_lite.reconcile import pipeline, rootsyncs
from acm_lite.reconcile.pipeline import SyncSpec
from acm_lite.source.helm import HelmSpec
from acm_lite.source.oci import OciSpec


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    clusterargs.add_sync_source(parser)
    return parser.parse_args(list(argv))


def test_git_stays_the_default_and_its_spec_is_unchanged() -> None:
    spec = clusterargs.spec(parse("--repo", "https://u:p@git.example/r.git", "--revision", "main"))
    assert spec.source_type == "git" and spec.helm is None and spec.oci is None
    assert spec.to_spec() == {
        "sourceFormat": "hierarchy",
        "sourceType": "git",
        "git": {"repo": "https://git.example/r.git", "revision": "main", "dir": "."},
    }


def test_helm_flags_make_a_helm_spec_read_unstructured(tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    args = parse(
        "--source-type", "helm", "--helm-repo", "oci://reg.example/charts", "--helm-chart", "web",
        "--helm-version", "^1.2", "--helm-release", "site", "--helm-namespace", "team",
        "--helm-values", str(values), "--helm-include-crds", "--name", "web-sync",
    )  # fmt: skip
    spec = clusterargs.spec(args)
    assert (spec.source_type, spec.source_format, spec.repo) == (
        "helm",
        "unstructured",
        "oci://reg.example/charts/web",
    )
    assert spec.helm is not None and spec.helm.values_files == (values,) and spec.helm.include_crds
    written = spec.to_spec()
    assert written["sourceType"] == "helm" and "git" not in written
    assert written["helm"] == {
        "repo": "oci://reg.example/charts",
        "chart": "web",
        "version": "^1.2",
        "releaseName": "site",
        "namespace": "team",
        "includeCRDs": True,
        "auth": "none",
    }


def test_oci_flags_make_an_oci_spec_with_its_dir() -> None:
    spec = clusterargs.spec(
        parse(
            "--source-type",
            "oci",
            "--oci-image",
            "reg.example/c:v1",
            "--dir",
            "prod",
            "--source-format",
            "unstructured",
        )
    )
    assert spec.oci is not None and (spec.oci.image, spec.oci.dir, spec.repo) == (
        "reg.example/c:v1",
        "prod",
        "reg.example/c:v1",
    )
    assert spec.to_spec() == {
        "sourceFormat": "unstructured",
        "sourceType": "oci",
        "oci": {"image": "reg.example/c:v1", "dir": "prod", "auth": "none"},
    }


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--source-type", "helm", "--helm-chart", "web"], "--helm-repo"),
        (["--source-type", "helm", "--helm-repo", "https://c.example"], "--helm-chart"),
        (["--source-type", "oci"], "--oci-image"),
    ],
)
def test_missing_source_flags_are_usage_errors(argv: list[str], says: str) -> None:
    with pytest.raises(clusterargs.UsageError, match=says):
        clusterargs.spec(parse(*argv))


def test_secrets_are_not_flags() -> None:
    parser = argparse.ArgumentParser()
    clusterargs.add_sync_source(parser)
    flags = {o for a in parser._actions for o in a.option_strings}
    assert not {f for f in flags if "password" in f or "token" in f}


@pytest.mark.parametrize(
    "spec",
    [
        SyncSpec(
            repo="https://c.example/web",
            name="a",
            source_format="unstructured",
            source_type="helm",
            helm=HelmSpec(repo="https://c.example", chart="web", version="1.0.0", values="replicas: 2\n"),
        ),
        SyncSpec(
            repo="reg.example/c:v1",
            name="b",
            source_format="unstructured",
            source_type="oci",
            oci=OciSpec(image="reg.example/c:v1", dir="x"),
        ),
    ],
)
def test_a_rootsync_written_from_a_spec_reads_back_as_that_spec(spec: SyncSpec) -> None:
    item = {"metadata": {"name": spec.name}, "spec": spec.to_spec()}
    back = rootsyncs.spec_of(item)
    assert back is not None and back.to_spec() == spec.to_spec()
    assert (back.source_type, back.repo) == (spec.source_type, spec.repo)


def test_fleet_members_take_the_artifact_source_of_the_flags_and_keep_their_cluster() -> None:
    member = SyncSpec(
        repo="https://git.example/r.git",
        name="root-sync",
        cluster_name="eks-prod",
        cluster_labels={"env": "prod"},
    )
    override = clusterargs.fleet_override(
        parse("--fleet", "f.yaml", "--cluster", "eks-prod", "--cluster", "aks", "--source-type", "oci",
              "--oci-image", "reg.example/c:v1", "--source-format", "unstructured")
    )  # fmt: skip
    spec = override(member)
    assert (spec.source_type, spec.repo, spec.source_format) == ("oci", "reg.example/c:v1", "unstructured")
    assert spec.oci is not None and spec.oci.image == "reg.example/c:v1"
    assert (spec.cluster_name, spec.cluster_labels) == ("eks-prod", {"env": "prod"})
    assert clusterargs.fleet_override(parse("--fleet", "f.yaml"))(member) == member


def test_a_repo_flag_turns_a_chart_member_of_a_fleet_back_to_git() -> None:
    member = SyncSpec(
        repo="https://charts.example/web",
        source_format="unstructured",
        source_type="helm",
        helm=HelmSpec(repo="https://charts.example", chart="web"),
        source_auth="token",
        cluster_name="edge",
    )
    spec = clusterargs.fleet_override(parse("--fleet", "f.yaml", "--repo", "https://git.example/r.git"))(
        member
    )
    assert (spec.source_type, spec.repo, spec.helm, spec.source_auth) == (
        "git",
        "https://git.example/r.git",
        None,
        "",
    )
    assert spec.to_spec()["git"]["repo"] == "https://git.example/r.git" and "helm" not in spec.to_spec()
    assert spec.cluster_name == "edge"
    image = clusterargs.fleet_override(
        parse("--fleet", "f.yaml", "--source-type", "oci", "--oci-image", "reg.example/c:v1")
    )(member)
    assert (image.source_type, image.helm, image.source_auth) == ("oci", None, "")


def test_the_auth_of_a_chart_or_image_decides_which_credentials_are_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("USERNAME", "PASSWORD", "PASSWORD_FILE", "TOKEN", "TOKEN_FILE"):
        monkeypatch.delenv(f"ACM_LITE_OCI_{var}", raising=False)
    image = SyncSpec(repo="reg.example/c:v1", source_type="oci", oci=OciSpec(image="reg.example/c:v1"))
    with pytest.raises(AcmError) as missing:
        pipeline._credentials(replace(image, source_auth="token"), "OCI")
    assert (
        missing.value.code is errors.SOURCE_AUTH_FAILED and "ACM_LITE_OCI_PASSWORD" in missing.value.message
    )
    assert pipeline._credentials(image, "OCI") is None
    monkeypatch.setenv("ACM_LITE_OCI_USERNAME", "robot")
    monkeypatch.setenv("ACM_LITE_OCI_PASSWORD", "s3cret")
    found = pipeline._credentials(image, "OCI")
    assert found is not None and (found.username, found.password) == ("robot", "s3cret")
    token = pipeline._credentials(replace(image, source_auth="token"), "OCI")
    assert token is not None and token.password == "s3cret"
    assert pipeline._credentials(replace(image, source_auth="none"), "OCI") is None
    assert replace(image, source_auth="none").to_spec()["oci"]["auth"] == "none"
    assert replace(image, source_auth="token").to_spec()["oci"]["auth"] == "token"
