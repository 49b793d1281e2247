"""Naming a Helm or OCI source: the flags, the spec written to the RootSync, and the RootSync read
back (no network)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from acm_lite.cli import clusterargs
from acm_lite.reconcile import rootsyncs
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
        helm=HelmSpec(repo="https://charts.example", chart="web", auth="token", secret_ref="creds"),
        cluster_name="edge",
    )
    spec = clusterargs.fleet_override(parse("--fleet", "f.yaml", "--repo", "https://git.example/r.git"))(
        member
    )
    assert (spec.source_type, spec.repo, spec.helm) == ("git", "https://git.example/r.git", None)
    assert spec.to_spec()["git"]["repo"] == "https://git.example/r.git" and "helm" not in spec.to_spec()
    assert spec.cluster_name == "edge"
    image = clusterargs.fleet_override(
        parse("--fleet", "f.yaml", "--source-type", "oci", "--oci-image", "reg.example/c:v1")
    )(member)
    assert (image.source_type, image.helm) == ("oci", None)
    assert image.oci is not None and image.oci.auth == "none"


def test_config_sync_field_flags_reach_the_spec_and_the_rootsync_round_trips() -> None:
    args = parse(
        "--source-type", "helm", "--helm-repo", "https://charts.example", "--helm-chart", "web",
        "--helm-deploy-namespace", "apps", "--helm-values-configmap", "base",
        "--helm-values-configmap", "prod:prod.yaml", "--helm-auth", "token", "--helm-secret", "creds",
    )  # fmt: skip
    spec = clusterargs.spec(args)
    assert spec.helm is not None
    assert [(r.name, r.data_key) for r in spec.helm.values_file_refs] == [
        ("base", "values.yaml"),
        ("prod", "prod.yaml"),
    ]
    written = spec.to_spec()
    assert written["helm"]["deployNamespace"] == "apps" and "namespace" not in written["helm"]
    back = rootsyncs.spec_of({"metadata": {"name": spec.name}, "spec": written})
    assert back is not None and back.helm is not None
    assert (back.helm.deploy_namespace, back.helm.values_file_refs, back.helm.auth, back.helm.secret_ref) == (
        "apps",
        spec.helm.values_file_refs,
        "token",
        "creds",
    )
    image = clusterargs.spec(
        parse("--source-type", "oci", "--oci-image", "r.example/a:1", "--oci-auth", "gcenode")
    )
    assert image.oci is not None and image.to_spec()["oci"]["auth"] == "gcenode"
    with pytest.raises(SystemExit):
        parse("--source-type", "helm", "--helm-auth", "password")
