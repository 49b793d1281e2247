"""The Helm chart with the real helm binary, and in-cluster mode proven on a real API server:
the chart's ServiceAccount and RBAC are enough to run the daemon and sync sample-repo; a tenant
install cannot write cluster-scoped objects or into another namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite.cli import clusterargs
from acm_lite.cli.main import build_parser
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile.pipeline import SyncSpec
from acm_lite.status import store
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "acm-lite"
REPO_URL = "https://git.example.com/platform/config.git"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binaries.ensure("helm")), *args], capture_output=True, text=True, timeout=120)


def render(release: str, *sets: str, crds: bool = False) -> list[dict[str, Any]]:
    run = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        "acm-lite-system",
        "--set",
        f"sync.repo={REPO_URL}",
        *(a for s in sets for a in ("--set", s)),
        *(["--include-crds"] if crds else []),
    )
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def test_lint_and_schema() -> None:
    lint = helm("lint", "--strict", str(CHART), "--set", f"sync.repo={REPO_URL}")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    bad = helm("template", "x", str(CHART), "--set", f"sync.repo={REPO_URL}", "--set", "replicaCount=none")
    assert bad.returncode != 0 and "replicaCount" in bad.stderr
    missing = helm("template", "x", str(CHART))
    assert missing.returncode != 0 and "sync.repo is required" in missing.stderr


def test_rendered_objects() -> None:
    docs = render("acm", "metrics.serviceMonitor.enabled=true", "git.secretName=git-creds")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deployment = by_kind["Deployment"][0]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "--leader-elect" in container["args"] and f"--repo={REPO_URL}" in container["args"]
    assert {e["name"] for e in container["env"]} >= {"ACM_LITE_GIT_TOKEN", "ACM_LITE_GIT_SSH_KEY"}
    assert {
        k: len(v)
        for k, v in by_kind.items()
        if k in ("ServiceAccount", "Service", "ServiceMonitor", "PodDisruptionBudget")
    } == {"ServiceAccount": 1, "Service": 1, "ServiceMonitor": 1, "PodDisruptionBudget": 1}
    bindings = {b["metadata"]["name"]: b["roleRef"]["name"] for b in by_kind["ClusterRoleBinding"]}
    assert bindings == {
        "acm-read": "acm-read",
        "acm-reposyncs": "acm-reposyncs",
        "acm-root-sync": "cluster-admin",
    }
    [reposyncs] = [r for r in by_kind["ClusterRole"] if r["metadata"]["name"] == "acm-reposyncs"]
    granted = {
        (g, r, v)
        for rule in reposyncs["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    assert {
        ("", "serviceaccounts", "impersonate"),
        ("rbac.authorization.k8s.io", "clusterroles", "bind"),
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
    } <= granted


def test_render_values_become_the_daemons_render_flags() -> None:
    def args(*sets: str) -> list[str]:
        deployment = next(d for d in render("acm", *sets) if d["kind"] == "Deployment")
        return [a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"] if "render" in a]

    assert args() == ["--render-timeout=300", "--render-max-output=64"]  # nothing reaching outside
    assert args(
        "render.network=true",
        "render.exec=true",
        "render.alphaPlugins=true",
        "render.timeoutSeconds=30",
        "render.maxOutputMiB=8",
    ) == [
        "--render-network",
        "--render-exec",
        "--render-alpha-plugins",
        "--render-timeout=30",
        "--render-max-output=8",
    ]
    bad = helm("template", "x", str(CHART), "--set", f"sync.repo={REPO_URL}", "--set", "render.network=yes")
    assert bad.returncode != 0 and "network" in bad.stderr


def _daemon(*sets: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The daemon's container and the pod's volumes, as the chart renders them with ``sets``."""
    deployment = next(d for d in render("acm", *sets) if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    return pod["containers"][0], pod.get("volumes") or []


def _spec_of(container: dict[str, Any]) -> SyncSpec:
    """What ``acm-lite serve`` makes of the container's arguments (parsed by acm-lite's own parser)."""
    args = build_parser().parse_args(container["args"])
    return clusterargs.spec(args)


def test_a_git_source_gets_the_git_flags_and_no_artifact_credentials() -> None:
    container, volumes = _daemon("git.secretName=git-creds", "source.secretName=ignored-for-git")
    spec = _spec_of(container)
    assert (spec.source_type, spec.repo, spec.revision) == ("git", REPO_URL, "main")
    assert not any(a.startswith(("--source-type", "--helm-", "--oci-")) for a in container["args"])
    env = {e["name"] for e in container["env"]}
    assert "ACM_LITE_GIT_TOKEN" in env and not any(
        e.startswith(("ACM_LITE_HELM", "ACM_LITE_OCI")) for e in env
    )
    assert {v["name"] for v in volumes} == {"cache", "tmp", "git-credentials"}


def test_a_helm_source_gets_its_flags_values_file_and_credentials_as_files() -> None:
    docs = render(
        "acm",
        "source.type=helm",
        "source.helm.repo=oci://registry.example.com/charts",
        "source.helm.chart=web",
        "source.helm.version=>=1.0 <2",
        "source.helm.releaseName=front",
        "source.helm.namespace=shop",
        "source.helm.includeCRDs=true",
        "source.helm.values.replicas=3",
        "source.secretName=chart-creds",
        "source.caSecretName=chart-ca",
    )
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    spec = _spec_of(container)
    assert spec.source_type == "helm" and spec.helm is not None
    assert (spec.helm.repo, spec.helm.chart, spec.helm.version) == (
        "oci://registry.example.com/charts",
        "web",
        ">=1.0 <2",
    )
    assert (spec.helm.release_name, spec.helm.namespace, spec.helm.include_crds) == ("front", "shop", True)
    assert spec.helm.values_files == (Path("/etc/acm-lite/helm-values/values.yaml"),)
    assert spec.helm.ca_file == Path("/etc/acm-lite/source-ca/ca.crt")
    assert not any("--repo=" in a for a in container["args"])
    values = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "acm-helm-values")
    assert yaml.safe_load(values["data"]["values.yaml"]) == {"replicas": 3}
    assert "checksum/helm-values" in deployment["spec"]["template"]["metadata"]["annotations"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ACM_LITE_HELM_USERNAME"]["valueFrom"]["secretKeyRef"] == {
        "name": "chart-creds",
        "key": "username",
        "optional": True,
    }
    assert env["ACM_LITE_HELM_PASSWORD_FILE"]["value"] == "/etc/acm-lite/source/password"
    assert "ACM_LITE_HELM_PASSWORD" not in env and not any("ACM_LITE_OCI" in e for e in env)
    assert not any("chart-creds" in a or "password" in a for a in container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["source-credentials"] == "/etc/acm-lite/source"
    assert mounts["source-ca"] == "/etc/acm-lite/source-ca"
    assert mounts["helm-values"] == "/etc/acm-lite/helm-values"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["source-credentials"]["secret"]["secretName"] == "chart-creds"
    assert volumes["source-credentials"]["secret"]["items"] == [{"key": "password", "path": "password"}]
    assert volumes["source-ca"]["secret"]["secretName"] == "chart-ca"
    assert volumes["helm-values"]["configMap"]["name"] == "acm-helm-values"


def test_an_oci_source_gets_its_flags_and_credentials() -> None:
    container, volumes = _daemon(
        "source.type=oci",
        "source.oci.image=registry.example.com/configs/prod:v3",
        "sync.dir=prod",
        "sync.sourceFormat=unstructured",
        "source.secretName=registry-creds",
    )
    spec = _spec_of(container)
    assert spec.source_type == "oci" and spec.oci is not None
    assert (spec.oci.image, spec.dir, spec.source_format) == (
        "registry.example.com/configs/prod:v3",
        "prod",
        "unstructured",
    )
    env = {e["name"]: e for e in container["env"]}
    assert env["ACM_LITE_OCI_PASSWORD_FILE"]["value"] == "/etc/acm-lite/source/password"
    assert env["ACM_LITE_OCI_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == "registry-creds"
    assert {v["name"] for v in volumes} == {"cache", "tmp", "source-credentials"}
    assert "helm-values" not in {m["name"] for m in container["volumeMounts"]}


def test_the_daemon_may_read_configmaps_and_secrets_of_its_own_namespace_in_either_scope() -> None:
    """A Helm source's valuesFileRefs and secretRef are read from the daemon's namespace, also when
    the chart grants no cluster-wide rights (rbac.scope=namespace)."""
    for sets in ((), ("rbac.scope=namespace", "rbac.namespaces={tenant-a}")):
        docs = render("acm", *sets)
        roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-self")]
        assert [r["metadata"]["namespace"] for r in roles] == ["acm-lite-system"]
        reads = [r for r in roles[0]["rules"] if r["apiGroups"] == [""] and "configmaps" in r["resources"]]
        assert reads == [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get"]}]


def test_a_helm_or_oci_source_without_what_it_names_is_refused() -> None:
    def refused(*sets: str) -> str:
        run = helm("template", "x", str(CHART), *(a for s in sets for a in ("--set", s)))
        assert run.returncode != 0, run.stdout
        return run.stderr

    assert "/source/helm/chart" in refused("source.type=helm", "source.helm.repo=https://charts.example.com")
    assert "/source/oci/image" in refused("source.type=oci")
    assert "/source/type" in refused("source.type=svn")
    assert "'password' not allowed" in refused(
        "source.type=oci", "source.oci.image=r.example.com/a:1", "source.password=x"
    )
    assert "/source/helm/repo" in refused(
        "source.type=helm", "source.helm.repo=ftp://c.example.com", "source.helm.chart=web"
    )
    lint = helm(
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "source.type=helm",
        "--set",
        "source.helm.repo=https://charts.example.com",
        "--set",
        "source.helm.chart=web",
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr  # no sync.repo needed for a chart


def test_chart_crds_are_the_ones_acm_lite_installs() -> None:
    for crd in (ROOT / "acm_lite" / "data" / "crds").iterdir():
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text()


def _install(server: APIServer, docs: list[dict[str, Any]], tmp_path: Path, name: str) -> None:
    """Apply rendered objects with kubectl (a source may not declare acm-lite's own namespace or
    kinds, so acm-lite cannot install itself); the namespace comes first, as helm's --namespace."""
    store.install(Cluster.connect(server.kubeconfig))
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    run = subprocess.run(
        [
            str(binaries.ensure("kubectl")),
            "--kubeconfig",
            server.kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _in_cluster_env(cluster: Cluster, server: APIServer, sa: str, tmp_path: Path) -> dict[str, str]:
    token = cluster.request(
        "POST",
        f"/api/v1/namespaces/acm-lite-system/serviceaccounts/{sa}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    (tmp_path / f"{sa}.token").write_text(token)
    port = server.url.rsplit(":", 1)[1]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return {
        **env,
        "HOME": str(tmp_path),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": port,
        "ACM_LITE_SERVICEACCOUNT_TOKEN": str(tmp_path / f"{sa}.token"),
        "ACM_LITE_SERVICEACCOUNT_CA": server.file("ca.crt"),
        "ACM_LITE_CACHE": str(tmp_path / "cache"),
    }


def test_in_cluster_daemon_with_the_charts_rbac_syncs_sample_repo(
    control_plane: APIServer, tmp_path: Path
) -> None:
    admin = Cluster.connect(control_plane.kubeconfig)
    docs = render("incluster", crds=True)
    _install(control_plane, [d for d in docs if d["kind"] != "Deployment"], tmp_path, "chart-root")
    env = _in_cluster_env(admin, control_plane, "incluster", tmp_path)
    repo = GitRepo(tmp_path / "git")
    repo.write(
        {
            p.relative_to(ROOT / "sample-repo").as_posix(): p.read_text()
            for p in (ROOT / "sample-repo").rglob("*.yaml")
        }
    )
    repo.commit({})
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acm_lite",
            "serve",
            "--repo",
            repo.url,
            "--revision",
            "main",
            "--cluster",
            "eks-prod",
            "--name",
            "in-cluster",
            "--period",
            "1",
            "--metrics-address",
            "off",
            "--leader-elect",
            "--lease-name",
            "incluster",
        ],
        env=env,
        stderr=(tmp_path / "serve.log").open("w"),
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        state, errors = None, None
        while time.monotonic() < deadline and state != "SYNCED" and daemon.poll() is None:
            time.sleep(0.5)
            try:
                found = admin.request(
                    "GET", "/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs/in-cluster"
                )
                state = (found.get("status") or {}).get("state")
                errors = (found.get("status") or {}).get("errors")
            except ApiError:
                continue
        if state != "SYNCED":
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            raise AssertionError(f"{errors}: {(tmp_path / 'serve.log').read_text()[-3000:]}")
        payments = admin.request("GET", "/apis/apps/v1/namespaces/payments/deployments/payments-api")
        assert payments["metadata"]["labels"]["acm-lite.io/sync"] == "in-cluster"
        lease = admin.request(
            "GET", "/apis/coordination.k8s.io/v1/namespaces/acm-lite-system/leases/incluster"
        )
        assert lease["spec"]["holderIdentity"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0


@pytest.mark.parametrize("as_tenant", [True], ids=["tenant"])
def test_a_tenant_install_writes_only_its_namespace(
    control_plane: APIServer, tmp_path: Path, as_tenant: bool
) -> None:
    admin = Cluster.connect(control_plane.kubeconfig)
    for name in ("tenant-a", "tenant-b"):
        try:
            admin.request("POST", "/api/v1/namespaces", body=ns(name))
        except ApiError as e:
            assert e.status == 409
    docs = render("tenant", "rbac.scope=namespace", "rbac.namespaces={tenant-a}", crds=True)
    assert not any(
        d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "cluster-admin" for d in docs
    )
    _install(control_plane, [d for d in docs if d["kind"] != "Deployment"], tmp_path, "chart-tenant")
    env = _in_cluster_env(admin, control_plane, "tenant", tmp_path)
    repo = GitRepo(tmp_path / "git")
    repo.commit(
        {
            "ok.yaml": cm("mine", "tenant-a"),
            "other.yaml": cm("theirs", "tenant-b"),
            "role.yaml": {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "tenant-grab"},
                "rules": [],
            },
        }
    )
    common = [
        "--repo",
        repo.url,
        "--revision",
        "main",
        "--source-format",
        "unstructured",
        "--name",
        "tenant-a-sync",
        "--namespace",
        "tenant-a",
        "-o",
        "json",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "acm_lite", "sync", "--once", *common],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    errors = json.loads(run.stdout)["errors"]
    assert sorted((e["code"], e["object"]["name"]) for e in errors) == [
        ("KNV1058", "tenant-grab"),
        ("KNV1058", "theirs"),
    ]
    for path in (
        "/api/v1/namespaces/tenant-a/configmaps/mine",
        "/api/v1/namespaces/tenant-b/configmaps/theirs",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/tenant-grab",
    ):
        with pytest.raises(ApiError) as gone:
            admin.request("GET", path)
        assert gone.value.status == 404  # nothing applied
    repo.commit({"other.yaml": None, "role.yaml": None})
    fine = subprocess.run(
        [sys.executable, "-m", "acm_lite", "sync", "--once", *common],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert admin.request("GET", "/api/v1/namespaces/tenant-a/configmaps/mine")["data"] == {"k": "v"}


def test_a_fleet_is_shared_by_the_replicas(tmp_path: Path) -> None:
    fleet = {
        "apiVersion": "acm-lite.io/v1alpha1",
        "kind": "Fleet",
        "spec": {
            "sync": {"repo": REPO_URL},
            "clusters": [{"name": "edge-1", "kubeconfigSecretRef": {"name": "edge-1-kubeconfig"}}],
        },
    }
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"replicaCount": 3, "fleet": {"file": fleet, "shards": 6}}))
    lint = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    run = helm("template", "acm", str(CHART), "-n", "acm-lite-system", "-f", str(values))
    assert run.returncode == 0, run.stderr
    docs = [d for d in yaml.safe_load_all(run.stdout) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--fleet=/etc/acm-lite/fleet/fleet.yaml" in args and "--shards=6" in args
    assert "--identity=$(POD_NAME)" in args and "--lease-namespace=acm-lite-system" in args
    assert "--leader-elect" not in args and not any(a.startswith("--repo=") for a in args)
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-fleet"))
    assert yaml.safe_load(configmap["data"]["fleet.yaml"]) == fleet
    role = next(
        d for d in docs if d["kind"] == "Role" and any("leases" in r["resources"] for r in d["rules"])
    )
    [leases] = [r for r in role["rules"] if "leases" in r["resources"]]
    assert {"list", "delete", "update"} <= set(leases["verbs"])
    values.write_text(yaml.safe_dump({"fleet": {"file": fleet}}))  # no shards: one writes
    run = helm("template", "acm", str(CHART), "-f", str(values))
    deployment = next(d for d in yaml.safe_load_all(run.stdout) if d and d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args and not any(a.startswith("--shards") for a in args)
    values.write_text(yaml.safe_dump({"fleet": {"file": fleet, "shards": -1}}))
    bad = helm("template", "acm", str(CHART), "-f", str(values))
    assert bad.returncode != 0 and "shards" in bad.stderr
