"""How the hierarchical and unstructured formats resolve objects, cluster by cluster."""

from __future__ import annotations

from pathlib import Path

from acm_lite import declare
from acm_lite.parse.clusters import ClusterTarget
from tests.unit.repo_builder import cm, hierarchy, ns, obj, write

SAMPLE = Path(__file__).resolve().parents[3] / "sample-repo"


def ids(result: declare.Declared) -> list[str]:
    return sorted(str(o.id) for o in result.objects)


def render(
    root: Path, cluster: str | None = None, fmt: str = declare.HIERARCHY, labels: dict[str, str] | None = None
) -> declare.Declared:
    result = declare.declare(
        declare.load(root, fmt), ClusterTarget(cluster, labels), declare.Options(source_format=fmt)
    )
    assert not result.blocking, [p.render() for p in result.problems]
    return result


def test_abstract_directories_are_inherited_by_every_namespace_below(tmp_path: Path) -> None:
    hierarchy(
        tmp_path,
        {
            "namespaces/root.yaml": cm("everywhere"),
            "namespaces/teams/quota.yaml": obj("v1", "ResourceQuota", "q", spec={"hard": {"pods": "5"}}),
            "namespaces/teams/a/ns.yaml": ns("a"),
            "namespaces/teams/b/ns.yaml": ns("b"),
            "namespaces/infra/ns.yaml": ns("infra"),
            "namespaces/infra/own.yaml": cm("own"),
            "README.md": "ignored",
            "docs/extra.yaml": cm("ignored-outside-top-dirs"),
        },
    )
    assert ids(render(tmp_path)) == [
        "ConfigMap a/everywhere",
        "ConfigMap b/everywhere",
        "ConfigMap infra/everywhere",
        "ConfigMap infra/own",
        "Namespace a",
        "Namespace b",
        "Namespace infra",
        "ResourceQuota a/q",
        "ResourceQuota b/q",
    ]


def test_inherited_copies_keep_their_source_file(tmp_path: Path) -> None:
    hierarchy(tmp_path, {"namespaces/teams/cm.yaml": cm("shared"), "namespaces/teams/a/ns.yaml": ns("a")})
    shared = next(o for o in render(tmp_path).objects if o.kind == "ConfigMap")
    assert (shared.namespace, shared.source) == ("a", "namespaces/teams/cm.yaml")


def test_namespace_selectors_pick_namespaces_by_label(tmp_path: Path) -> None:
    hierarchy(
        tmp_path,
        {
            "namespaces/sel.yaml": obj(
                "configmanagement.gke.io/v1",
                "NamespaceSelector",
                "prod",
                spec={"selector": {"matchLabels": {"env": "prod"}}},
            ),
            "namespaces/alert.yaml": cm(
                "pager", annotations={"configmanagement.gke.io/namespace-selector": "prod"}
            ),
            "namespaces/live/ns.yaml": ns("live", {"env": "prod"}),
            "namespaces/test/ns.yaml": ns("test", {"env": "dev"}),
        },
    )
    assert ids(render(tmp_path)) == ["ConfigMap live/pager", "Namespace live", "Namespace test"]


def test_cluster_selectors_and_cluster_name_selectors(tmp_path: Path) -> None:
    hierarchy(
        tmp_path,
        {
            "clusterregistry/c.yaml": [
                obj(
                    "clusterregistry.k8s.io/v1alpha1",
                    "Cluster",
                    "east",
                    metadata={"labels": {"region": "east"}},
                ),
                obj(
                    "configmanagement.gke.io/v1",
                    "ClusterSelector",
                    "east",
                    spec={"selector": {"matchLabels": {"region": "east"}}},
                ),
            ],
            "cluster/cr.yaml": obj(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "east-only",
                rules=[],
                metadata={"annotations": {"configmanagement.gke.io/cluster-selector": "east"}},
            ),
            "namespaces/web/ns.yaml": ns(
                "web", annotations={"configsync.gke.io/cluster-name-selector": "west, central"}
            ),
            "namespaces/web/cm.yaml": cm("web-config"),
            "namespaces/db/ns.yaml": ns("db"),
        },
    )
    assert ids(render(tmp_path, "east")) == [
        "Namespace db",
        "rbac.authorization.k8s.io/ClusterRole east-only",
    ]
    assert ids(render(tmp_path, "west")) == ["ConfigMap web/web-config", "Namespace db", "Namespace web"]
    assert ids(render(tmp_path, None)) == ["Namespace db"]
    # labels from a fleet win over the Cluster object
    assert "rbac.authorization.k8s.io/ClusterRole east-only" in ids(
        render(tmp_path, "central", labels={"region": "east"})
    )


def test_namespace_with_a_selector_per_cluster(tmp_path: Path) -> None:
    """Two Namespace files in one directory are fine when selectors keep one per cluster."""
    hierarchy(
        tmp_path,
        {
            "namespaces/app/a.yaml": ns(
                "app", {"size": "small"}, {"configsync.gke.io/cluster-name-selector": "a"}
            ),
            "namespaces/app/b.yaml": ns(
                "app", {"size": "large"}, {"configsync.gke.io/cluster-name-selector": "b"}
            ),
        },
    )
    assert [o.labels for o in render(tmp_path, "a").objects] == [{"size": "small"}]
    assert [o.labels for o in render(tmp_path, "b").objects] == [{"size": "large"}]


def test_unstructured_defaults_namespaces_and_expands_selectors(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "anywhere/deep/cm.yaml": cm("defaulted"),
            "x.yaml": [
                ns("a", {"team": "x"}),
                ns("b", {"team": "x"}),
                ns("c"),
                obj(
                    "configmanagement.gke.io/v1",
                    "NamespaceSelector",
                    "team-x",
                    spec={"selector": {"matchLabels": {"team": "x"}}},
                ),
                cm("per-team", annotations={"configmanagement.gke.io/namespace-selector": "team-x"}),
            ],
            "cr.yaml": obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r", rules=[]),
        },
    )
    assert ids(render(tmp_path, fmt=declare.UNSTRUCTURED)) == [
        "ConfigMap a/per-team",
        "ConfigMap b/per-team",
        "ConfigMap default/defaulted",
        "Namespace a",
        "Namespace b",
        "Namespace c",
        "rbac.authorization.k8s.io/ClusterRole r",
    ]


def test_managed_disabled_objects_stay_declared(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"cm.yaml": cm("legacy", namespace="x", annotations={"configmanagement.gke.io/managed": "disabled"})},
    )
    objects = render(tmp_path, fmt=declare.UNSTRUCTURED).objects
    assert [o.annotations for o in objects] == [{"configmanagement.gke.io/managed": "disabled"}]


def test_sample_repo_vets_clean_and_fans_out_per_provider() -> None:
    source = declare.load(SAMPLE, declare.HIERARCHY)
    per_cluster = {}
    for cluster in ("eks-prod", "aks-staging", "baremetal-edge"):
        result = declare.declare(source, ClusterTarget(cluster), declare.Options())
        assert result.problems == [], [p.render() for p in result.problems]
        per_cluster[cluster] = {str(o.id): o for o in result.objects}
    storage = {
        c: objs["storage.k8s.io/StorageClass standard"].body["provisioner"] for c, objs in per_cluster.items()
    }
    assert storage == {
        "eks-prod": "ebs.csi.aws.com",
        "aks-staging": "disk.csi.azure.com",
        "baremetal-edge": "rancher.io/local-path",
    }
    has = {c: {i for i in objs if i.startswith("Namespace ")} for c, objs in per_cluster.items()}
    assert "Namespace store-gateway" in has["baremetal-edge"]
    assert "Namespace store-gateway" not in has["eks-prod"] | has["aks-staging"]
    assert "Namespace ingress" in has["eks-prod"] & has["aks-staging"]
    assert "Namespace ingress" not in has["baremetal-edge"]
    assert "Namespace sandbox" in has["aks-staging"]
    assert "Namespace sandbox" not in has["eks-prod"] | has["baremetal-edge"]
    eks = per_cluster["eks-prod"]
    assert "ops.acme.io/BackupSchedule payments/nightly" in eks
    assert "ops.acme.io/BackupSchedule checkout/nightly" in eks
    assert "rbac.authorization.k8s.io/RoleBinding payments/sre-view" in eks
    assert "networking.k8s.io/NetworkPolicy checkout/allow-from-ingress" in eks
    assert "networking.k8s.io/NetworkPolicy monitoring/allow-from-ingress" not in eks
    sandbox = per_cluster["aks-staging"]
    assert "ops.acme.io/BackupSchedule sandbox/nightly" not in sandbox
