"""Every repository rule, tripped by the smallest repository that breaks it (table-driven)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acm_lite import declare
from acm_lite.parse.clusters import ClusterTarget
from tests.unit.repo_builder import REPO, cm, hierarchy, ns, obj, write

H, U = declare.HIERARCHY, declare.UNSTRUCTURED
TEAM = {"namespaces/team/ns.yaml": ns("team")}
CLUSTER_SEL = obj(
    "configmanagement.gke.io/v1",
    "ClusterSelector",
    "prod",
    spec={"selector": {"matchLabels": {"env": "prod"}}},
)
NS_SEL = obj(
    "configmanagement.gke.io/v1",
    "NamespaceSelector",
    "prod",
    spec={"selector": {"matchLabels": {"env": "prod"}}},
)
CRD = obj(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "widgets.acme.io",
    spec={
        "group": "acme.io",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                        },
                    }
                },
            }
        ],
    },
)

CASES: list[tuple[str, str, dict[str, Any], str | None, list[str]]] = [
    ("clean hierarchy", H, {**TEAM, "namespaces/team/cm.yaml": cm("a")}, None, []),
    ("missing Repo", H, {"_no_repo": True, **TEAM}, None, ["KNV1017"]),
    (
        "two Repos",
        H,
        {"system/other.yaml": {**REPO, "metadata": {"name": "other"}}, **TEAM},
        None,
        ["KNV2012", "KNV2012"],
    ),
    (
        "unsupported Repo version",
        H,
        {"system/repo.yaml": {**REPO, "spec": {"version": "2.0.0"}}},
        None,
        ["KNV1027"],
    ),
    (
        "reserved annotation",
        H,
        {
            **TEAM,
            "namespaces/team/cm.yaml": cm("a", annotations={"configmanagement.gke.io/source-path": "x"}),
        },
        None,
        ["KNV1010"],
    ),
    (
        "reserved label",
        H,
        {
            **TEAM,
            "namespaces/team/cm.yaml": {
                **cm("a"),
                "metadata": {"name": "a", "labels": {"configsync.gke.io/x": "y"}},
            },
        },
        None,
        ["KNV1011"],
    ),
    (
        "non-string annotation",
        H,
        {**TEAM, "namespaces/team/cm.yaml": cm("a", annotations={"replicas": 3})},
        None,
        ["KNV1054"],
    ),
    (
        "bad management value",
        H,
        {
            **TEAM,
            "namespaces/team/cm.yaml": cm("a", annotations={"configmanagement.gke.io/managed": "enabled"}),
        },
        None,
        ["KNV1005"],
    ),
    (
        "missing name",
        H,
        {
            **TEAM,
            "namespaces/team/cm.yaml": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"labels": {"a": "b"}},
            },
        },
        None,
        ["KNV1031"],
    ),
    ("invalid name", H, {**TEAM, "namespaces/team/cm.yaml": cm("Not_Valid")}, None, ["KNV1036"]),
    (
        "rbac names may use colons",
        H,
        {
            "cluster/cr.yaml": obj(
                "rbac.authorization.k8s.io/v1", "ClusterRole", "system:acme:viewer", rules=[]
            )
        },
        None,
        [],
    ),
    ("invalid namespace name", U, {"cm.yaml": cm("a", namespace="Bad_NS")}, None, ["KNV1055"]),
    ("reserved namespace", U, {"ns.yaml": ns("config-management-system")}, None, ["KNV1034"]),
    ("acm-lite's namespace", U, {"ns.yaml": ns("acm-lite-system")}, None, ["KNV1034"]),
    (
        "acm-lite's namespace in a hierarchy",
        H,
        {"namespaces/acm-lite-system/ns.yaml": ns("acm-lite-system")},
        None,
        ["KNV1034"],
    ),
    (
        "an object in acm-lite's namespace",
        U,
        {"cm.yaml": cm("a", namespace="acm-lite-system")},
        None,
        ["KNV1034"],
    ),
    (
        "a RootSync",
        U,
        {
            "rs.yaml": obj(
                "acm-lite.io/v1alpha1",
                "RootSync",
                "root-sync",
                metadata={"namespace": "team"},
                spec={"git": {"repo": "https://example.com/x.git"}},
            )
        },
        None,
        ["KNV1043"],
    ),
    (
        "a ResourceInventory",
        U,
        {"inv.yaml": obj("acm-lite.io/v1alpha1", "ResourceInventory", "x", metadata={"namespace": "team"})},
        None,
        ["KNV1043"],
    ),
    (
        "a CRD of acm-lite's group",
        H,
        {
            "cluster/crd.yaml": obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "rootsyncs.acm-lite.io",
                spec={"group": "acm-lite.io", "names": {"plural": "rootsyncs", "kind": "RootSync"}},
            )
        },
        None,
        ["KNV1043"],
    ),
    (
        "kube-system and default may be declared",
        U,
        {"a.yaml": ns("kube-system"), "b.yaml": ns("default")},
        None,
        [],
    ),
    ("namespace directly in namespaces/", H, {"namespaces/ns.yaml": ns("team")}, None, ["KNV1019"]),
    ("namespace named unlike its directory", H, {"namespaces/team/ns.yaml": ns("other")}, None, ["KNV1020"]),
    (
        "metadata.namespace unlike directory",
        H,
        {**TEAM, "namespaces/team/cm.yaml": cm("a", namespace="other")},
        None,
        ["KNV1009"],
    ),
    (
        "server-owned fields",
        H,
        {
            **TEAM,
            "namespaces/team/cm.yaml": {
                **cm("a"),
                "status": {"phase": "x"},
                "metadata": {"name": "a", "uid": "1234", "resourceVersion": "9"},
            },
        },
        None,
        ["KNV1045"],
    ),
    (
        "deprecated group",
        H,
        {**TEAM, "namespaces/team/d.yaml": obj("extensions/v1beta1", "Deployment", "d")},
        None,
        ["KNV1050"],
    ),
    ("Sync kind", U, {"s.yaml": obj("configmanagement.gke.io/v1", "Sync", "s")}, None, ["KNV1043"]),
    (
        "CRD of a reserved group",
        H,
        {
            "cluster/crd.yaml": obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "repos.configmanagement.gke.io",
                spec={"group": "configmanagement.gke.io", "names": {"plural": "repos", "kind": "Repo"}},
            )
        },
        None,
        ["KNV1043"],
    ),
    ("CRD name", H, {"cluster/crd.yaml": {**CRD, "metadata": {"name": "widget.acme.io"}}}, None, ["KNV1048"]),
    ("Repo in unstructured", U, {"repo.yaml": REPO}, None, ["KNV1032"]),
    ("ClusterSelector outside clusterregistry", H, {"cluster/sel.yaml": CLUSTER_SEL}, None, ["KNV1039"]),
    (
        "selector annotation on a selector",
        H,
        {
            "clusterregistry/sel.yaml": {
                **CLUSTER_SEL,
                "metadata": {"name": "prod", "annotations": {"configsync.gke.io/cluster-name-selector": "a"}},
            }
        },
        None,
        ["KNV1004"],
    ),
    (
        "ClusterSelectors sharing a name",
        H,
        {"clusterregistry/a.yaml": CLUSTER_SEL, "clusterregistry/b.yaml": CLUSTER_SEL},
        None,
        ["KNV1029", "KNV1029"],
    ),
    (
        "unknown cluster selector",
        H,
        {
            **TEAM,
            "namespaces/team/cm.yaml": cm(
                "a", annotations={"configmanagement.gke.io/cluster-selector": "nope"}
            ),
        },
        None,
        ["KNV1013"],
    ),
    (
        "both cluster selectors",
        H,
        {
            "clusterregistry/s.yaml": CLUSTER_SEL,
            **TEAM,
            "namespaces/team/cm.yaml": cm(
                "a",
                annotations={
                    "configmanagement.gke.io/cluster-selector": "prod",
                    "configsync.gke.io/cluster-name-selector": "x",
                },
            ),
        },
        "x",
        ["KNV1066"],
    ),
    ("empty cluster selector", H, {"clusterregistry/s.yaml": {**CLUSTER_SEL, "spec": {}}}, None, ["KNV1014"]),
    (
        "invalid cluster selector operator",
        H,
        {
            "clusterregistry/s.yaml": {
                **CLUSTER_SEL,
                "spec": {
                    "selector": {"matchExpressions": [{"key": "env", "operator": "Like", "values": ["x"]}]}
                },
            }
        },
        None,
        ["KNV1014"],
    ),
    (
        "namespace on a cluster-scoped object",
        U,
        {
            "cr.yaml": obj(
                "rbac.authorization.k8s.io/v1", "ClusterRole", "r", rules=[], metadata={"namespace": "x"}
            )
        },
        None,
        ["KNV1052"],
    ),
    (
        "namespace-selector on a cluster-scoped object",
        U,
        {
            "ns-sel.yaml": NS_SEL,
            "cr.yaml": obj(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                "r",
                rules=[],
                metadata={"annotations": {"configmanagement.gke.io/namespace-selector": "prod"}},
            ),
        },
        None,
        ["KNV1004"],
    ),
    (
        "namespace and namespace-selector",
        U,
        {
            "ns-sel.yaml": NS_SEL,
            "cm.yaml": cm(
                "a", namespace="x", annotations={"configmanagement.gke.io/namespace-selector": "prod"}
            ),
        },
        None,
        ["KNV1053"],
    ),
    (
        "NamespaceSelectors sharing a name",
        U,
        {"a.yaml": NS_SEL, "b.yaml": NS_SEL},
        None,
        ["KNV1029", "KNV1029"],
    ),
    (
        "unknown kind is only a warning",
        U,
        {"w.yaml": obj("acme.io/v1", "Widget", "w", metadata={"namespace": "x"})},
        None,
        ["KNV1021"],
    ),
    (
        "cluster-scoped object in a namespace directory",
        H,
        {
            **TEAM,
            "namespaces/team/cr.yaml": obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r", rules=[]),
        },
        None,
        ["KNV1052"],
    ),
    (
        "cluster-scoped object in an abstract directory",
        H,
        {
            "namespaces/teams/team/ns.yaml": ns("team"),
            "namespaces/teams/cr.yaml": obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r", rules=[]),
        },
        None,
        ["KNV1039"],
    ),
    ("namespaced object in cluster/", H, {"cluster/cm.yaml": cm("a")}, None, ["KNV1039"]),
    ("Namespace in cluster/", H, {"cluster/ns.yaml": ns("team")}, None, ["KNV1039"]),
    (
        "subdirectory of a namespace directory",
        H,
        {**TEAM, "namespaces/team/sub/cm.yaml": cm("a")},
        None,
        ["KNV1003"],
    ),
    ("abstract directory without namespaces", H, {"namespaces/empty/cm.yaml": cm("a")}, None, ["KNV1044"]),
    (
        "abstract directory with subdirectories but no namespace",
        H,
        {"namespaces/a/cm.yaml": cm("a"), "namespaces/a/b/cm.yaml": cm("b")},
        None,
        ["KNV1044", "KNV1044"],
    ),
    (
        "two Namespaces in one directory",
        H,
        {"namespaces/team/a.yaml": ns("team"), "namespaces/team/b.yaml": ns("team")},
        None,
        ["KNV2012", "KNV2012"],
    ),
    (
        "kind with hierarchyMode none in an abstract directory",
        H,
        {
            "system/hc.yaml": obj(
                "configmanagement.gke.io/v1",
                "HierarchyConfig",
                "hc",
                spec={"resources": [{"group": "", "kinds": ["ConfigMap"], "hierarchyMode": "none"}]},
            ),
            "namespaces/teams/cm.yaml": cm("a"),
            "namespaces/teams/team/ns.yaml": ns("team"),
        },
        None,
        ["KNV1007"],
    ),
    (
        "HierarchyConfig with an unknown mode",
        H,
        {
            "system/hc.yaml": obj(
                "configmanagement.gke.io/v1",
                "HierarchyConfig",
                "hc",
                spec={"resources": [{"group": "", "kinds": ["ConfigMap"], "hierarchyMode": "copy"}]},
            )
        },
        None,
        ["KNV1042"],
    ),
    (
        "HierarchyConfig for Namespaces",
        H,
        {
            "system/hc.yaml": obj(
                "configmanagement.gke.io/v1",
                "HierarchyConfig",
                "hc",
                spec={"resources": [{"group": "", "kinds": ["Namespace"]}]},
            )
        },
        None,
        ["KNV1041"],
    ),
    (
        "HierarchyConfig for a cluster-scoped kind",
        H,
        {
            "system/hc.yaml": obj(
                "configmanagement.gke.io/v1",
                "HierarchyConfig",
                "hc",
                spec={"resources": [{"group": "rbac.authorization.k8s.io", "kinds": ["ClusterRole"]}]},
            )
        },
        None,
        ["KNV1046"],
    ),
    (
        "unknown namespace selector",
        H,
        {
            "namespaces/teams/cm.yaml": cm(
                "a", annotations={"configmanagement.gke.io/namespace-selector": "nope"}
            ),
            "namespaces/teams/team/ns.yaml": ns("team"),
        },
        None,
        ["KNV1013"],
    ),
    (
        "namespace selector in a namespace directory",
        H,
        {**TEAM, "namespaces/team/sel.yaml": NS_SEL},
        None,
        ["KNV1038"],
    ),
    (
        "namespace selector outside the object's ancestry",
        H,
        {
            "namespaces/a/sel.yaml": NS_SEL,
            "namespaces/a/x/ns.yaml": ns("x"),
            "namespaces/b/cm.yaml": cm(
                "c", annotations={"configmanagement.gke.io/namespace-selector": "prod"}
            ),
            "namespaces/b/y/ns.yaml": ns("y", {"env": "prod"}),
        },
        None,
        ["KNV1013"],
    ),
    (
        "invalid namespace selector",
        U,
        {"sel.yaml": {**NS_SEL, "spec": {"selector": {"matchLabels": {"env": 1}}}}},
        None,
        ["KNV1014"],
    ),
    (
        "duplicate objects",
        H,
        {**TEAM, "namespaces/team/a.yaml": cm("a"), "namespaces/team/b.yaml": cm("a")},
        None,
        ["KNV1029", "KNV1029"],
    ),
    (
        "inherited object clashing with a local one",
        H,
        {
            "namespaces/teams/cm.yaml": cm("a"),
            "namespaces/teams/team/ns.yaml": ns("team"),
            "namespaces/teams/team/cm.yaml": cm("a"),
        },
        None,
        ["KNV1029", "KNV1029"],
    ),
    (
        "managed object in unmanaged namespace",
        U,
        {
            "ns.yaml": ns("x", annotations={"configmanagement.gke.io/managed": "disabled"}),
            "cm.yaml": cm("a", namespace="x"),
        },
        None,
        ["KNV1056"],
    ),
    (
        "depends-on a missing object",
        U,
        {
            "cm.yaml": cm(
                "a",
                namespace="x",
                annotations={"config.kubernetes.io/depends-on": "/namespaces/x/ConfigMap/missing"},
            )
        },
        None,
        ["ACM1005"],
    ),
    (
        "malformed depends-on",
        U,
        {
            "cm.yaml": cm(
                "a", namespace="x", annotations={"config.kubernetes.io/depends-on": "ConfigMap/x/y/z"}
            )
        },
        None,
        ["ACM1005"],
    ),
    (
        "depends-on a declared object",
        U,
        {
            "cm.yaml": [
                cm(
                    "a",
                    namespace="x",
                    annotations={"config.kubernetes.io/depends-on": "/namespaces/x/ConfigMap/b"},
                ),
                cm("b", namespace="x"),
            ]
        },
        None,
        [],
    ),
    (
        "schema: wrong type and unknown field",
        U,
        {
            "d.yaml": obj(
                "apps/v1",
                "Deployment",
                "d",
                metadata={"namespace": "x"},
                spec={"replicas": "three", "selector": {}, "template": {}, "paused": True, "surge": 1},
            )
        },
        None,
        ["ACM1006"],
    ),
    (
        "schema: version not served",
        U,
        {"d.yaml": obj("apps/v1beta1", "Deployment", "d", metadata={"namespace": "x"})},
        None,
        ["ACM1006"],
    ),
    (
        "schema: custom resource against its CRD",
        U,
        {
            "crd.yaml": CRD,
            "w.yaml": obj("acme.io/v1", "Widget", "w", metadata={"namespace": "x"}, spec={"size": "big"}),
        },
        None,
        ["ACM1006"],
    ),
    (
        "schema: custom resource version not in its CRD",
        U,
        {"crd.yaml": CRD, "w.yaml": obj("acme.io/v2", "Widget", "w", metadata={"namespace": "x"})},
        None,
        ["ACM1006"],
    ),
    ("YAML syntax error", U, {"bad.yaml": "apiVersion: v1\nkind: [ConfigMap\n"}, None, ["KNV1006"]),
    ("document without kind", U, {"bad.yaml": "apiVersion: v1\nmetadata: {name: a}\n"}, None, ["KNV1006"]),
    ("document that is not an object", U, {"bad.yaml": "- just\n- a list\n"}, None, ["KNV1006"]),
    ("invalid JSON", U, {"bad.json": '{"apiVersion": "v1",'}, None, ["KNV1006"]),
]


@pytest.mark.parametrize(
    ("source_format", "files", "cluster", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(
    tmp_path: Path, source_format: str, files: dict[str, Any], cluster: str | None, expected: list[str]
) -> None:
    files = dict(files)
    with_repo = not files.pop("_no_repo", False)
    if source_format == H:
        hierarchy(tmp_path, files, with_repo=with_repo)
    else:
        write(tmp_path, files)
    source = declare.load(tmp_path, source_format)
    result = declare.declare(source, ClusterTarget(cluster), declare.Options(source_format=source_format))
    assert sorted(p.code.id for p in result.problems) == sorted(expected), [
        p.render() for p in result.problems
    ]
    for problem in result.problems:
        assert problem.source, problem.render()  # every problem names its file or directory
    blocking = any(lookup_blocking(code) for code in expected)
    assert result.blocking == blocking
    assert (result.objects == []) == blocking


def lookup_blocking(code: str) -> bool:
    from acm_lite.errors import lookup

    found = lookup(code)
    assert found is not None
    return found.blocking
