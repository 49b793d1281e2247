"""Flags shared by commands that talk to a cluster or sync a repository to one."""

from __future__ import annotations

import argparse

from acm_lite import api
from acm_lite.cli import output, rendering
from acm_lite.cluster.client import Cluster
from acm_lite.parse import declare
from acm_lite.reconcile.pipeline import SyncSpec


def add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context to use")


def add_sync_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", required=True, metavar="URL|PATH",
                        help="Git URL, local Git repository, or plain directory")
    parser.add_argument("--revision", default="HEAD", help="branch, tag or commit (default: HEAD)")
    parser.add_argument("--dir", default=".", help="sub-directory of the repository to sync")
    parser.add_argument("--source-format", choices=declare.SOURCE_FORMATS, default=declare.HIERARCHY,
                        help="repository format (default: hierarchy)")
    parser.add_argument("--cluster", metavar="NAME",
                        help="this cluster's name, for cluster selectors (labels from "
                             "clusterregistry/)")
    parser.add_argument("--name", default=api.DEFAULT_SYNC,
                        help=f"name of the sync and its inventory (default: {api.DEFAULT_SYNC})")
    parser.add_argument("--no-schema", action="store_true", help="skip OpenAPI schema checks")
    rendering.add_policy_arguments(parser)
    add_connection(parser)
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="text")


def connect(args: argparse.Namespace) -> Cluster:
    return Cluster.connect(args.kubeconfig, args.context)


def spec(args: argparse.Namespace) -> SyncSpec:
    return SyncSpec(repo=args.repo, name=args.name, revision=args.revision, dir=args.dir,
                    source_format=args.source_format, cluster_name=args.cluster)
