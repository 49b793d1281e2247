"""RepoSyncs against real API servers (RBAC authorization) with the daemon following the cluster's
RootSyncs and RepoSyncs: each RepoSync runs as a ServiceAccount in its namespace, so its
repository can do only what the bindings there allow. A cluster-scoped object and another
namespace are refused when read (KNV1058); a kind its role does not permit is refused by the API
server (KNV2013, naming the object) while the rest of the sync and the root sync go on; a
RepoSync without roleRefs can do nothing until someone binds rights to its ServiceAccount; one
declared in the root repository is followed, and deleting it with Foreground deletes its objects
and the ServiceAccount and RoleBindings acm-lite made for it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from acm_lite import metadata
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import finalizer, reposyncs, rootsyncs
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions
from tests.support.following import following
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns, obj

GROUP = "/apis/acm-lite.io/v1alpha1"
ROOTSYNCS = f"{GROUP}/namespaces/acm-lite-system/rootsyncs"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def reposync_body(
    namespace: str,
    repo: GitRepo,
    *,
    role_refs: list[dict[str, str]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "repo-sync", "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"sourceFormat": "unstructured", "git": {"repo": repo.url, "revision": "main"}}
    if role_refs:
        spec["override"] = {"roleRefs": role_refs}
    return {"apiVersion": "acm-lite.io/v1alpha1", "kind": "RepoSync", "metadata": meta, "spec": spec}


def reposync_path(namespace: str) -> str:
    return f"{GROUP}/namespaces/{namespace}/reposyncs/repo-sync"


def status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    found = get(cluster, reposync_path(namespace))
    return (found or {}).get("status") or {}


def codes(cluster: Cluster, namespace: str, part: str) -> list[str]:
    """The codes of the RepoSync's Config Sync-shaped ``status.<part>.errors``."""
    return [e.get("code") for e in (status(cluster, namespace).get(part) or {}).get("errors") or []]


def eventually_get(cluster: Cluster, path: str, timeout: float = 30) -> dict[str, Any]:
    """The object at ``path`` once it exists (made a moment after what the test waited for)."""
    eventually(lambda: get(cluster, path) is not None, timeout)
    found = get(cluster, path)
    assert found is not None
    return found


def create_namespace(cluster: Cluster, name: str) -> None:
    cluster.request("POST", "/api/v1/namespaces", body=ns(name))


def deployment(name: str, namespace: str) -> dict[str, Any]:
    labels = {"app": name}
    return obj(
        "apps/v1",
        "Deployment",
        name,
        metadata={"name": name, "namespace": namespace},
        spec={
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
            },
        },
    )


def role(name: str, namespace: str) -> dict[str, Any]:
    return obj(
        "rbac.authorization.k8s.io/v1",
        "Role",
        name,
        metadata={"name": name, "namespace": namespace},
        rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    )


def test_a_tenant_syncs_what_its_roles_allow_and_nothing_else(
    live_cluster: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    tenant, root_ns, other = f"team-{suffix}", f"root-{suffix}", f"other-{suffix}"
    sa = f"ns-reconciler-{tenant}"
    root_repo = GitRepo(tmp_path / "root")
    root_repo.commit({"ns.yaml": ns(root_ns), "a.yaml": cm("a", root_ns)})
    repo = GitRepo(tmp_path / "tenant")
    repo.commit(
        {
            "web.yaml": deployment("web", tenant),
            "cfg.yaml": cm("cfg", tenant),
            "role.yaml": role("reader", tenant),  # `edit` may not write Roles
        }
    )
    with following(live_cluster, tmp_path) as cluster:
        create_namespace(cluster, tenant)
        create_namespace(cluster, other)
        root = f"root-{suffix}"
        cluster.request(
            "POST",
            ROOTSYNCS,
            body={
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "RootSync",
                "metadata": {"name": root, "namespace": "acm-lite-system"},
                "spec": {"sourceFormat": "unstructured", "git": {"repo": root_repo.url, "revision": "main"}},
            },
        )
        cluster.request(
            "POST",
            f"{GROUP}/namespaces/{tenant}/reposyncs",
            body=reposync_body(tenant, repo, role_refs=[{"kind": "ClusterRole", "name": "edit"}]),
        )
        # the ServiceAccount and the RoleBinding of its roleRefs, owned by the RepoSync
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{tenant}/serviceaccounts/{sa}") is not None, 60)
        binding = eventually_get(cluster, f"{RBAC}/namespaces/{tenant}/rolebindings/{sa}:clusterrole:edit")
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "edit",
        }
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": tenant}]
        assert [o["kind"] for o in binding["metadata"]["ownerReferences"]] == ["RepoSync"]
        assert binding["metadata"]["labels"][reposyncs.SYNC_KIND_LABEL] == "RepoSync"
        # what `edit` allows is synced, labelled with the reconciler's name
        eventually(lambda: get(cluster, f"/apis/apps/v1/namespaces/{tenant}/deployments/web") is not None, 90)
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg") is not None, 30)
        live = get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg")
        assert live is not None and live["metadata"]["labels"][metadata.SYNC_LABEL] == sa
        # the Role is refused by the API server, as the ServiceAccount: named, in Config Sync's shape
        eventually(lambda: "2013" in codes(cluster, tenant, "sync"), 60)
        got = status(cluster, tenant)
        [refused] = [e for e in got["sync"]["errors"] if e["code"] == "2013"]
        assert (
            "reader" in refused["errorMessage"]
            and f"system:serviceaccount:{tenant}:{sa}" in (refused["errorMessage"])
        )
        assert got["sync"]["errorSummary"]["totalCount"] >= 1
        assert got["sync"]["commit"] == got["commit"] and got["source"]["commit"] == got["commit"]
        assert get(cluster, f"{RBAC}/namespaces/{tenant}/roles/reader") is None
        # the root sync is not held back by the tenant's errors
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{root_ns}/configmaps/a") is not None, 30)
        root_status = (get(cluster, f"{ROOTSYNCS}/{root}") or {}).get("status") or {}
        assert root_status.get("errors") in (None, [])

        # a cluster-scoped object is refused when read, and nothing is applied
        repo.commit(
            {"role.yaml": None, "cr.yaml": obj("rbac.authorization.k8s.io/v1", "ClusterRole", f"x-{suffix}")}
        )
        eventually(lambda: "1058" in codes(cluster, tenant, "source"), 60)
        assert "cluster-scoped" in str(status(cluster, tenant)["source"]["errors"])
        assert get(cluster, f"{RBAC}/clusterroles/x-{suffix}") is None
        # another namespace likewise
        repo.commit({"cr.yaml": None, "elsewhere.yaml": cm("elsewhere", other)})
        eventually(lambda: "may not write into namespace" in str(status(cluster, tenant).get("source")), 60)
        assert get(cluster, f"/api/v1/namespaces/{other}/configmaps/elsewhere") is None
        assert get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg") is not None  # nothing lost

        # deleted without Foreground: the objects stay, unmarked; the ServiceAccount and its
        # RoleBindings go
        cluster.request("DELETE", reposync_path(tenant))
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{tenant}/serviceaccounts/{sa}") is None, 60)
        assert get(cluster, f"{RBAC}/namespaces/{tenant}/rolebindings/{sa}:clusterrole:edit") is None
        left = get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg")
        assert left is not None
        eventually(
            lambda: (
                metadata.SYNC_LABEL
                not in (get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg") or {})["metadata"].get(
                    "labels", {}
                )
            ),
            30,
        )
        cluster.request("DELETE", f"{ROOTSYNCS}/{root}")


def test_without_role_refs_a_reposync_can_do_nothing_until_rights_are_bound(
    control_plane: APIServer, namespace: str, tmp_path: Path
) -> None:
    sa = f"ns-reconciler-{namespace}"
    repo = GitRepo(tmp_path / "tenant")
    repo.commit({"cfg.yaml": cm("cfg", namespace)})
    with following(control_plane, tmp_path) as cluster:
        cluster.request(
            "POST", f"{GROUP}/namespaces/{namespace}/reposyncs", body=reposync_body(namespace, repo)
        )
        eventually(lambda: "2013" in codes(cluster, namespace, "sync"), 60)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/cfg") is None
        rolebindings = cluster.request("GET", f"{RBAC}/namespaces/{namespace}/rolebindings")["items"]
        assert rolebindings == []  # acm-lite binds nothing on its own
        # the team binds rights to the ServiceAccount, as with Config Sync: the next pass syncs
        cluster.request(
            "POST",
            f"{RBAC}/namespaces/{namespace}/roles",
            body=obj(
                "rbac.authorization.k8s.io/v1",
                "Role",
                "configmaps",
                metadata={"name": "configmaps", "namespace": namespace},
                rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
            ),
        )
        cluster.request(
            "POST",
            f"{RBAC}/namespaces/{namespace}/rolebindings",
            body=obj(
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                "configmaps",
                metadata={"name": "configmaps", "namespace": namespace},
                roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmaps"},
                subjects=[{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
            ),
        )
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/cfg") is not None, 60)
        eventually(lambda: status(cluster, namespace).get("state") == "SYNCED", 30)
        # `acm-lite status` lists it as NAMESPACE/NAME, with its objects' health
        shown = subprocess.run(
            [
                *(sys.executable, "-m", "acm_lite", "status", "--kubeconfig", control_plane.kubeconfig),
                *("--name", f"{namespace}/repo-sync", "--resources", "-o", "json"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        listed = json.loads(shown.stdout)
        assert [(s["name"], s["kind"], s["sync"], s["state"]) for s in listed["syncs"]] == [
            (f"{namespace}/repo-sync", "RepoSync", sa, "SYNCED")
        ]
        assert [(r["kind"], r["name"]) for r in listed["resources"]] == [("ConfigMap", "cfg")]
        cluster.request("DELETE", reposync_path(namespace))
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}") is None, 60)


def test_a_reposync_declared_in_the_root_repo_is_followed_and_deleted_with_its_objects(
    live_cluster: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    tenant, root = f"decl-{suffix}", f"root-{suffix}"
    sa = f"ns-reconciler-{tenant}"
    repo = GitRepo(tmp_path / "tenant")
    repo.commit({"cfg.yaml": cm("cfg", tenant), "web.yaml": deployment("web", tenant)})
    declared = reposync_body(
        tenant,
        repo,
        role_refs=[{"kind": "ClusterRole", "name": "edit"}],
        annotations={metadata.DELETION_PROPAGATION_POLICY: "Foreground"},
    )
    root_repo = GitRepo(tmp_path / "root")
    root_repo.commit({"ns.yaml": ns(tenant), "reposync.yaml": declared})
    with following(live_cluster, tmp_path) as cluster:
        cluster.request(
            "POST",
            ROOTSYNCS,
            body={
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "RootSync",
                "metadata": {"name": root, "namespace": "acm-lite-system"},
                "spec": {"sourceFormat": "unstructured", "git": {"repo": root_repo.url, "revision": "main"}},
            },
        )
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg") is not None, 90)
        live = get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg")
        assert live is not None and live["metadata"]["labels"][metadata.SYNC_LABEL] == sa
        reposync = get(cluster, reposync_path(tenant))
        assert reposync is not None
        assert reposync["metadata"]["labels"][metadata.SYNC_LABEL] == root  # the root sync manages it
        eventually(
            lambda: (
                finalizer.FINALIZER
                in ((get(cluster, reposync_path(tenant)) or {})["metadata"].get("finalizers") or [])
            ),
            30,
        )
        eventually(lambda: status(cluster, tenant).get("state") == "SYNCED", 60)
        # removed from the root repository: pruned, and Foreground deletes what it synced
        root_repo.commit({"reposync.yaml": None})
        eventually(lambda: get(cluster, reposync_path(tenant)) is None, 120)
        assert get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/cfg") is None
        assert get(cluster, f"/apis/apps/v1/namespaces/{tenant}/deployments/web") is None
        assert get(cluster, f"/api/v1/namespaces/{tenant}/serviceaccounts/{sa}") is None
        assert get(cluster, f"{RBAC}/namespaces/{tenant}/rolebindings/{sa}:clusterrole:edit") is None
        cluster.request("DELETE", f"{ROOTSYNCS}/{root}")


def test_serve_config_runs_config_syncs_reposync_as_its_service_account(
    control_plane: APIServer, namespace: str, tmp_path: Path
) -> None:
    sa = f"ns-reconciler-{namespace}-web-3"
    cluster = Cluster.connect(control_plane.kubeconfig)
    cluster.request(
        "POST",
        f"{RBAC}/namespaces/{namespace}/roles",
        body=obj(
            "rbac.authorization.k8s.io/v1",
            "Role",
            "configmaps",
            metadata={"name": "configmaps", "namespace": namespace},
            rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
        ),
    )
    repo = GitRepo(tmp_path / "tenant")
    repo.commit(
        {
            "cfg.yaml": cm("cfg", namespace),
            "secret.yaml": obj("v1", "Secret", "s", metadata={"namespace": namespace}),
        }
    )
    config = tmp_path / "syncs.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "configsync.gke.io/v1beta1",
                "kind": "RepoSync",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "git": {"repo": repo.url, "branch": "main"},
                    "override": {"roleRefs": [{"kind": "Role", "name": "configmaps"}]},
                },
            }
        )
    )
    [spec] = rootsyncs.from_config(config)
    daemon = Daemon(
        [(spec, lambda: Cluster.connect(control_plane.kubeconfig))],
        SyncOptions(git_cache=tmp_path / "cache"),
        DaemonOptions(period=0.3, backoff_max=1.0),
    )
    daemon.start()
    try:
        eventually(lambda: get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/cfg") is not None, 60)
        # the Role allows ConfigMaps only: the Secret is refused by the API server, named
        eventually(lambda: "2013" in codes_of(cluster, namespace, "web"), 30)
        assert get(cluster, f"/api/v1/namespaces/{namespace}/secrets/s") is None
        binding = get(cluster, f"{RBAC}/namespaces/{namespace}/rolebindings/{sa}:role:configmaps")
        assert binding is not None and binding["subjects"][0]["name"] == sa
    finally:
        daemon.stop()


def codes_of(cluster: Cluster, namespace: str, name: str) -> list[str]:
    found = get(cluster, f"{GROUP}/namespaces/{namespace}/reposyncs/{name}") or {}
    return [e.get("code") for e in ((found.get("status") or {}).get("sync") or {}).get("errors") or []]


def test_with_the_admission_webhook_a_tenant_writes_its_own_objects_and_a_person_is_denied(
    live_cluster: APIServer, tmp_path: Path
) -> None:
    """A RepoSync's passes reach the webhook as its ServiceAccount: creating, changing and pruning
    its own objects goes through; a person changing them is denied."""
    from acm_lite import api
    from acm_lite.devcluster import binaries
    from acm_lite.reconcile.admission import GENERATED_SECRET, AdmissionOptions, AdmissionWebhook

    suffix = uuid.uuid4().hex[:6]
    tenant = f"aw-{suffix}"
    sa = f"ns-reconciler-{tenant}"
    repo = GitRepo(tmp_path / "tenant")
    repo.commit({"cfg.yaml": cm("cfg", tenant, data={"k": "1"}), "gone.yaml": cm("gone", tenant)})
    admin = Cluster.connect(live_cluster.kubeconfig)
    hook = AdmissionWebhook(admin, AdmissionOptions(address=("127.0.0.1", 0)))
    hook.start()
    cfg = f"/api/v1/namespaces/{tenant}/configmaps/cfg"
    try:
        with following(live_cluster, tmp_path) as cluster:
            create_namespace(cluster, tenant)
            cluster.request(
                "POST",
                f"{GROUP}/namespaces/{tenant}/reposyncs",
                body=reposync_body(tenant, repo, role_refs=[{"kind": "ClusterRole", "name": "edit"}]),
            )
            eventually(lambda: get(cluster, cfg) is not None, 90)
            assert (get(cluster, cfg) or {})["metadata"]["labels"][metadata.SYNC_LABEL] == sa
            kubectl = binaries.ensure_all(["kubectl"])["kubectl"]
            as_alice = ["--as", "alice", "--as-group", "system:masters"]
            patch = ["-n", tenant, "patch", "configmap", "cfg", "--type", "merge", "-p", '{"data":{"k":"9"}}']
            person = subprocess.run(
                [str(kubectl), "--kubeconfig", live_cluster.kubeconfig, *as_alice, *patch],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert person.returncode != 0 and "ACM2016" in person.stderr, person.stderr
            assert sa in person.stderr
            # the tenant's own change and prune pass the webhook
            repo.commit({"cfg.yaml": cm("cfg", tenant, data={"k": "2"}), "gone.yaml": None})
            eventually(lambda: (get(cluster, cfg) or {}).get("data") == {"k": "2"}, 60)
            eventually(lambda: get(cluster, f"/api/v1/namespaces/{tenant}/configmaps/gone") is None, 60)
            assert "2016" not in codes(cluster, tenant, "sync")
    finally:
        hook.stop()
        for path in (
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{api.ADMISSION_WEBHOOK}",
            f"/api/v1/namespaces/{api.system_namespace()}/secrets/{GENERATED_SECRET}",
        ):
            if get(admin, path) is not None:
                admin.request("DELETE", path)
