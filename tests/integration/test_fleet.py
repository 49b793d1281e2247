"""A fleet of three real control planes: selection per cluster, an unreachable member, catch-up,
and credentials from an exec plugin as EKS and AKS kubeconfigs use them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import controlplane
from acm_lite.fleet import fanout, registry
from acm_lite.reconcile.pipeline import SyncOptions
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

MEMBERS = {
    "eks-prod": {"provider": "eks", "env": "prod"},
    "aks-staging": {"provider": "aks", "env": "staging"},
    "baremetal-edge": {"provider": "baremetal", "env": "prod"},
}


def fleet_file(path: Path, kubeconfig: str, repo: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "test"},
                "spec": {
                    "sync": {"repo": repo, "revision": "main", "sourceFormat": "unstructured"},
                    "clusters": [
                        {"name": n, "kubeconfig": kubeconfig, "context": n, "labels": labels}
                        for n, labels in MEMBERS.items()
                    ],
                },
            }
        )
    )
    return path


def selector(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "configmanagement.gke.io/v1",
        "kind": "ClusterSelector",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}},
    }


def names_in(cluster: Cluster, namespace: str) -> set[str]:
    try:
        items = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
    except ApiError:
        return set()
    return {i["metadata"]["name"] for i in items if i["metadata"]["name"] != "kube-root-ca.crt"}


@pytest.fixture
def env(control_plane_binaries: dict[str, Path]) -> controlplane.Environment:
    environment = controlplane.start(
        list(MEMBERS),
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    yield environment  # type: ignore[misc]
    controlplane.stop(environment)


def test_fleet_fans_out_survives_a_dead_member_and_catches_up(
    env: controlplane.Environment, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "selectors.yaml": [selector("prod", {"env": "prod"}), selector("aks", {"provider": "aks"})],
            "ns.yaml": ns("apps"),
            "everywhere.yaml": cm("everywhere", "apps"),
            "prod-only.yaml": cm(
                "prod-only", "apps", annotations={"configmanagement.gke.io/cluster-selector": "prod"}
            ),
            "aks-only.yaml": cm(
                "aks-only", "apps", annotations={"configmanagement.gke.io/cluster-selector": "aks"}
            ),
            "edge-only.yaml": cm(
                "edge-only", "apps", annotations={"configsync.gke.io/cluster-name-selector": "baremetal-edge"}
            ),
        }
    )
    fleet = registry.load(fleet_file(tmp_path / "fleet.yaml", env.merged_kubeconfig, repo.url))
    options = SyncOptions(git_cache=tmp_path / "cache")
    outcomes = fanout.sync_all(list(fleet.clusters), options, parallel=3)
    assert [(o.cluster.name, o.ok) for o in outcomes] == [(n, True) for n in MEMBERS], [
        p.render() for o in outcomes for p in o.problems
    ]
    clusters = {c.name: Cluster.connect(env.merged_kubeconfig, c.name) for c in fleet.clusters}
    assert {n: names_in(c, "apps") for n, c in clusters.items()} == {
        "eks-prod": {"everywhere", "prod-only"},
        "aks-staging": {"everywhere", "aks-only"},
        "baremetal-edge": {"everywhere", "prod-only", "edge-only"},
    }

    controlplane.stop_apiserver(env, "aks-staging")
    repo.commit({"later.yaml": cm("later", "apps")})
    outcomes = fanout.sync_all(list(fleet.clusters), options, parallel=3)
    assert [(o.cluster.name, o.ok) for o in outcomes] == [
        ("eks-prod", True),
        ("aks-staging", False),
        ("baremetal-edge", True),
    ]
    dead = outcomes[1]
    assert {p.code.id for p in dead.problems} == {"KNV2002"}
    states = {s.cluster.name: s.to_dict() for s in fanout.states(list(fleet.clusters))}
    assert states["aks-staging"]["reachable"] is False
    assert states["aks-staging"]["state"] == "ERROR" and states["aks-staging"]["errors"] == 1
    assert states["eks-prod"]["state"] == "SYNCED" and states["eks-prod"]["version"] == "v1.37.2"
    assert "later" in names_in(clusters["eks-prod"], "apps")

    controlplane.restart_apiserver(env, "aks-staging")
    outcomes = fanout.sync_all(list(fleet.clusters), options, parallel=3)
    assert all(o.ok for o in outcomes)
    aks = Cluster.connect(env.merged_kubeconfig, "aks-staging")
    assert names_in(aks, "apps") == {"everywhere", "aks-only", "later"}
    assert outcomes[0].result is not None and outcomes[0].result.counts["unchanged"] == 4


PLUGIN = """#!/usr/bin/env python3
import json, pathlib, sys
token = pathlib.Path(sys.argv[1]).read_text().strip()
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token}}))
"""


def test_exec_credential_plugins_and_a_failing_one(env: controlplane.Environment, tmp_path: Path) -> None:
    server = env.cluster("eks-prod")
    assert server is not None
    admin = Cluster.connect(server.kubeconfig)
    admin.request(
        "POST",
        "/api/v1/namespaces/kube-system/serviceaccounts",
        body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "fleet-reader"}},
    )
    admin.request(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "fleet-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "fleet-reader", "namespace": "kube-system"}],
        },
    )
    token = admin.request(
        "POST",
        "/api/v1/namespaces/kube-system/serviceaccounts/fleet-reader/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    (tmp_path / "token").write_text(token)
    plugin = tmp_path / "get-token"
    plugin.write_text(PLUGIN)
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    ca = Path(server.file("ca.crt")).read_bytes()
    import base64

    def kubeconfig(command: str, args: list[str]) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "eks",
            "clusters": [
                {
                    "name": "eks",
                    "cluster": {
                        "server": server.url,
                        "certificate-authority-data": base64.b64encode(ca).decode(),
                    },
                }
            ],
            "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
            "users": [
                {
                    "name": "eks",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1",
                            "command": command,
                            "args": args,
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(json.dumps(kubeconfig(str(plugin), [str(tmp_path / "token")])))
    bad.write_text(json.dumps(kubeconfig("/bin/false", [])))
    (tmp_path / "fleet.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "spec": {
                    "clusters": [
                        {"name": "via-plugin", "kubeconfig": "good.yaml"},
                        {"name": "broken-plugin", "kubeconfig": "bad.yaml"},
                    ]
                },
            }
        )
    )
    fleet = registry.load(tmp_path / "fleet.yaml")
    good_state, bad_state = (s.to_dict() for s in fanout.states(list(fleet.clusters)))
    assert (good_state["reachable"], good_state["version"]) == (True, "v1.37.2")
    assert good_state["message"] == ""  # authenticated: reading CRDs and syncs was allowed
    via_plugin = fanout.connect(fleet.clusters[0])
    review = via_plugin.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review["status"]["userInfo"]["username"] == ("system:serviceaccount:kube-system:fleet-reader")
    assert bad_state["reachable"] is False
    assert "ACM2001" not in bad_state["message"]  # message is the text; the code is below
    assert fanout.states(list(fleet.clusters))[1].problem.code.id == "ACM2001"  # type: ignore[union-attr]
