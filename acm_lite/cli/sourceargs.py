"""Flags naming a Helm chart or an OCI image as the source (Config Sync's ``sourceType: helm``
and ``sourceType: oci``), a group of their own beside the Git flags. Credentials never come as
flags: ``ACM_LITE_HELM_USERNAME`` / ``ACM_LITE_HELM_PASSWORD`` (or ``_PASSWORD_FILE``, or
``ACM_LITE_HELM_TOKEN``), and the same with ``OCI``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acm_lite import api
from acm_lite.api import AUTH_NONE, DEFAULT_VALUES_KEY, HELM_AUTH, OCI_AUTH

if TYPE_CHECKING:  # the fetchers load only when a command runs (fast --help)
    from acm_lite.reconcile.pipeline import SyncSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Helm and OCI sources",
        "sync a Helm chart (rendered with helm template) or an OCI image of manifests instead of Git; "
        "credentials from ACM_LITE_HELM_USERNAME/_PASSWORD (or _PASSWORD_FILE, _TOKEN) and "
        "ACM_LITE_OCI_USERNAME/_PASSWORD",
    )
    group.add_argument(
        "--source-type",
        choices=api.SOURCE_TYPES,
        default=api.GIT,
        help="the kind of source (default: git)",
    )
    group.add_argument("--helm-repo", metavar="URL", help="Helm repository: https://... or oci://host/path")
    group.add_argument("--helm-chart", metavar="NAME", help="chart name")
    group.add_argument(
        "--helm-version",
        default="",
        metavar="VERSION|RANGE",
        help="chart version, or a constraint such as ^1.2 or '>=1.0 <2' (newest match; default: newest)",
    )
    group.add_argument(
        "--helm-release", default="", metavar="NAME", help="release name (default: the chart's)"
    )
    group.add_argument(
        "--helm-namespace", default="", metavar="NS", help="the release namespace (default: default)"
    )
    group.add_argument(
        "--helm-values",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="values file (repeatable)",
    )
    group.add_argument("--helm-include-crds", action="store_true", help="render the chart's CRDs too")
    group.add_argument(
        "--oci-image", metavar="REF", help="image: host[:port]/path[:tag][@sha256:...]; --dir applies"
    )
    group.add_argument(
        "--source-ca-file",
        type=Path,
        metavar="FILE",
        help="CA certificate of the Helm repository or registry",
    )


def spec(args: argparse.Namespace, usage_error: type[Exception], *, fleet: bool = False) -> SyncSpec | None:
    """The spec of a Helm or OCI source; None for Git (the flags above unused). With ``fleet``,
    the source for every member (``source_fields`` of it replace theirs)."""
    from acm_lite.reconcile.pipeline import SyncSpec
    from acm_lite.source.helm import HelmSpec
    from acm_lite.source.oci import OciSpec

    kind = getattr(args, "source_type", api.GIT)
    if kind == api.GIT:
        return None
    if args.cluster and len(args.cluster) > 1 and not fleet:
        raise usage_error("--cluster may be given once without --fleet")
    common = {
        "name": args.name,
        "cluster_name": args.cluster[0] if args.cluster else None,
        "namespace": args.namespace,
    }
    if kind == api.HELM:
        if not (args.helm_repo and args.helm_chart):
            raise usage_error("--source-type helm needs --helm-repo and --helm-chart")
        chart = HelmSpec(
            repo=args.helm_repo,
            chart=args.helm_chart,
            version=args.helm_version,
            release_name=args.helm_release,
            namespace=args.helm_namespace,
            values_files=tuple(args.helm_values),
            include_crds=args.helm_include_crds,
            ca_file=args.source_ca_file,
        )
        # a chart renders to plain manifests: read unstructured, as Config Sync does
        return SyncSpec(
            repo=chart.display, source_format=api.UNSTRUCTURED, source_type=kind, helm=chart, **common
        )
    if not args.oci_image:
        raise usage_error("--source-type oci needs --oci-image")
    image = OciSpec(image=args.oci_image, dir=args.dir, ca_file=args.source_ca_file)
    return SyncSpec(
        repo=image.image,
        dir=args.dir,
        source_format=args.source_format,
        source_type=kind,
        oci=image,
        **common,
    )


def source_fields(spec: SyncSpec) -> dict[str, Any]:
    """What names the source in ``spec`` (a fleet member keeps its cluster and labels)."""
    return {
        "repo": spec.repo,
        "dir": spec.dir,
        "source_format": spec.source_format,
        "source_type": spec.source_type,
        "helm": spec.helm,
        "oci": spec.oci,
    }


def add_offline_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags above for the commands that read a source offline (vet, hydrate), with the
    image's directory that ``sync`` takes from its Git flags."""
    add_arguments(parser)
    parser.add_argument(
        "--dir",
        default=".",
        metavar="DIR",
        help="with --source-type oci: the directory of the image to read (default: its root)",
    )


def offline_spec(args: argparse.Namespace, usage_error: type[Exception]) -> SyncSpec | None:
    """The Helm chart or OCI image ``vet`` and ``hydrate`` read instead of a directory; None for
    a directory (``args.path``, which a Helm or OCI source does not take)."""
    kind = getattr(args, "source_type", api.GIT)
    if kind == api.GIT:
        if args.dir != ".":
            raise usage_error("--dir is for --source-type oci; give the directory as the path")
        return None
    if args.path is not None:
        raise usage_error(f"--source-type {kind} reads no directory: drop the path {args.path}")
    fields = {**vars(args), "name": api.DEFAULT_SYNC, "cluster": None, "namespace": None}
    return spec(argparse.Namespace(**fields), usage_error)


def add_config_sync_arguments(parser: argparse.ArgumentParser) -> None:
    """Config Sync's remaining ``spec.helm`` and ``spec.oci`` fields, a group of their own: the
    deploy namespace, values from ConfigMaps, and the auth modes."""
    group = parser.add_argument_group(
        "Helm and OCI sources: Config Sync's deployNamespace, valuesFileRefs and auth",
        "ConfigMaps and Secrets are read from the target cluster, in the namespace of the RootSyncs",
    )
    group.add_argument(
        "--helm-deploy-namespace",
        default="",
        metavar="NS",
        help="put every namespaced object of the chart in NS (not with --helm-namespace)",
    )
    group.add_argument(
        "--helm-values-configmap",
        action="append",
        default=[],
        metavar="NAME[:KEY]",
        help="an immutable ConfigMap holding a values file under KEY (default values.yaml); repeatable, "
        "later ones win, inline values win over all",
    )
    group.add_argument(
        "--helm-auth",
        choices=HELM_AUTH,
        default=AUTH_NONE,
        help="how to authenticate to the Helm repository (token needs --helm-secret; the cloud "
        "identities are refused)",
    )
    group.add_argument(
        "--helm-secret", default="", metavar="NAME", help="the Secret with username and password (auth token)"
    )
    group.add_argument(
        "--oci-auth", choices=OCI_AUTH, default=AUTH_NONE, help="how to authenticate to the registry"
    )


def with_config_sync_fields(args: argparse.Namespace, spec: SyncSpec | None) -> SyncSpec | None:
    """``spec`` with the fields of ``add_config_sync_arguments`` set."""
    if spec is None:
        return None
    from acm_lite.source.helm import ValuesFileRef

    if spec.helm is not None:
        refs = []
        for given in getattr(args, "helm_values_configmap", []):
            name, _, key = given.partition(":")
            refs.append(ValuesFileRef(name, key or DEFAULT_VALUES_KEY))
        chart = dataclasses.replace(
            spec.helm,
            deploy_namespace=getattr(args, "helm_deploy_namespace", ""),
            values_file_refs=tuple(refs),
            auth=getattr(args, "helm_auth", AUTH_NONE),
            secret_ref=getattr(args, "helm_secret", ""),
        )
        return dataclasses.replace(spec, helm=chart)
    if spec.oci is not None:
        return dataclasses.replace(
            spec, oci=dataclasses.replace(spec.oci, auth=getattr(args, "oci_auth", AUTH_NONE))
        )
    return spec
