"""The chart's values as a team sets them, with the real helm binary: the image reference, the
schema (unknown keys refused everywhere, ``replicaCount: 0``, ``sync.period`` a duration string as
in the RootSync CRD, a tenant scope without namespaces refused), every documented combination
linted, rendered, parsed by ``acm-lite serve``'s own parser and validated by a real API server
(server-side dry run), and an install into another namespace than ``acm-lite-system`` run with the
chart's RBAC: the daemon keeps its RootSync, inventory, Lease and Events there and nothing in
``acm-lite-system``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite import api
from acm_lite.apply import inventory
from acm_lite.cli import clusterargs, serve
from acm_lite.cli.main import build_parser
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import binaries
from acm_lite.devcluster.controlplane import APIServer
from tests.integration import test_chart as chart
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

CHART = chart.CHART
REPO_URL = chart.REPO_URL
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
DIGEST = "sha256:" + "0123456789abcdef" * 4


def template(
    values: dict[str, Any], tmp_path: Path, *, namespace: str = "acm-lite-system", release: str = "acm"
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"values-{abs(hash(repr(values)))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return chart.helm("template", release, str(CHART), "--namespace", namespace, "-f", str(path))


def rendered(values: dict[str, Any], tmp_path: Path, **kw: Any) -> list[dict[str, Any]]:
    run = template(values, tmp_path, **kw)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def refused(values: dict[str, Any], tmp_path: Path) -> str:
    run = template(values, tmp_path)
    assert run.returncode != 0, run.stdout
    return run.stderr


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Deployment")


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    return found


GIT = {"sync": {"repo": REPO_URL}}


def test_the_image_reference_is_one_full_path(tmp_path: Path) -> None:
    def image(**values: Any) -> str:
        ref: str = container(rendered({**GIT, "image": values}, tmp_path))["image"]
        return ref

    assert image() == f"localhost/acm-lite:{APP_VERSION}"  # what `make image` names it
    assert image(registry="registry.example.com:5000", repository="platform/acm-lite", tag="1.2.3") == (
        "registry.example.com:5000/platform/acm-lite:1.2.3"
    )
    # the whole path in one value, as a team pushed it
    assert image(repository="registry.example.com/platform/acm-lite") == (
        f"registry.example.com/platform/acm-lite:{APP_VERSION}"
    )
    # a digest names exactly one image: the tag is then left out
    assert image(registry="r.example.com", repository="acm-lite", tag="1.2.3", digest=DIGEST) == (
        f"r.example.com/acm-lite@{DIGEST}"
    )
    pull = container(rendered({**GIT, "image": {"pullPolicy": "Always"}}, tmp_path))["imagePullPolicy"]
    assert pull == "Always"
    assert "/image/digest" in refused({**GIT, "image": {"digest": "sha256:short"}}, tmp_path)
    assert "/image/tag" in refused({**GIT, "image": {"tag": "a b"}}, tmp_path)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicas": 2}, "replicas"),
        ({"image": {"name": "x"}}, "name"),
        ({"sync": {"interval": "1m"}}, "interval"),
        ({"source": {"git": {}}}, "git"),
        ({"render": {"remote": True}}, "remote"),
        ({"rbac": {"scope": "cluster", "roles": []}}, "roles"),
        ({"metrics": {"serviceMonitor": {"labels": {}}}}, "labels"),
        ({"webhook": {"secret": "x"}}, "secret"),
        ({"serviceAccount": {"automount": True}}, "automount"),
        ({"podDisruptionBudget": {"maxUnavailable": 1}}, "maxUnavailable"),
        ({"leaderElection": {"lease": "x"}}, "lease"),
        ({"resources": {"requsts": {}}}, "requsts"),
        ({"git": {"token": "x"}}, "token"),
        ({"imagePullSecrets": [{"name": "a", "namespace": "b"}]}, "namespace"),
    ],
)
def test_the_schema_refuses_unknown_keys_everywhere(
    values: dict[str, Any], where: str, tmp_path: Path
) -> None:
    merged = {**GIT, **values, "sync": {**GIT["sync"], **values.get("sync", {})}}
    assert f"'{where}' not allowed" in refused(merged, tmp_path)


def test_the_schemas_types(tmp_path: Path) -> None:
    docs = rendered({**GIT, "replicaCount": 0}, tmp_path)
    assert deployment(docs)["spec"]["replicas"] == 0
    assert not any(d["kind"] == "PodDisruptionBudget" for d in docs)  # it would block every drain
    assert not any(d["kind"] == "PodDisruptionBudget" for d in rendered({**GIT, "replicaCount": 1}, tmp_path))
    assert "/replicaCount" in refused({**GIT, "replicaCount": -1}, tmp_path)
    # sync.period is a duration string, as RootSync's spec.git.period
    for period, seconds in (("15s", "15"), ("1m", "60"), ("1m30s", "90"), ("1h30m", "5400"), ("0.5s", "0.5")):
        args = container(rendered({"sync": {"repo": REPO_URL, "period": period}}, tmp_path))["args"]
        assert f"--period={seconds}" in args
    for bad in (15, "15", "1d", "", "-1s", "1s1m"):
        assert "/sync/period" in refused({"sync": {"repo": REPO_URL, "period": bad}}, tmp_path)
    zero = refused({"sync": {"repo": REPO_URL, "period": "0s"}}, tmp_path)
    assert "sync.period 0s is not a positive duration" in zero
    args = container(rendered({"sync": {"repo": REPO_URL, "resyncPeriod": "30m"}}, tmp_path))["args"]
    assert "--resync=1800" in args
    # a tenant scope needs its namespaces, and the sync's namespace among them
    assert "/rbac/namespaces" in refused({**GIT, "rbac": {"scope": "namespace"}}, tmp_path)
    assert "/rbac/namespaces" in refused({**GIT, "rbac": {"scope": "namespace", "namespaces": []}}, tmp_path)
    outside = {
        "sync": {"repo": REPO_URL, "namespace": "c"},
        "rbac": {"scope": "namespace", "namespaces": ["a"]},
    }
    assert "sync.namespace c is not one of rbac.namespaces" in refused(outside, tmp_path)
    assert "/systemNamespace" in refused({**GIT, "systemNamespace": "Not_Valid"}, tmp_path)
    assert "/logFormat" in refused({**GIT, "logFormat": "xml"}, tmp_path)
    assert "/admissionWebhook/failurePolicy" in refused(
        {**GIT, "admissionWebhook": {"enabled": True, "failurePolicy": "Deny"}}, tmp_path
    )
    hook = container(rendered({**GIT, "admissionWebhook": {"enabled": True}}, tmp_path))
    assert "--admission-webhook-failure-policy=Ignore" in hook["args"]  # Config Sync's default
    assert {"name": "admission", "containerPort": 10250} in hook["ports"]


def test_tenant_mode_passes_the_namespace_and_labels_its_roles(tmp_path: Path) -> None:
    values = {**GIT, "rbac": {"scope": "namespace", "namespaces": ["tenant-a", "tenant-b"]}}
    docs = rendered(values, tmp_path)
    assert serve_spec(container(docs)).namespace == "tenant-a"  # the first, by default
    tenant_objects = [d for d in docs if d["metadata"]["name"] == "acm-tenant"]
    assert sorted((d["kind"], d["metadata"]["namespace"]) for d in tenant_objects) == [
        ("Role", "tenant-a"),
        ("Role", "tenant-b"),
        ("RoleBinding", "tenant-a"),
        ("RoleBinding", "tenant-b"),
    ]
    for d in tenant_objects:
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == "acm"
        assert d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    chosen = rendered({**values, "sync": {"repo": REPO_URL, "namespace": "tenant-b"}}, tmp_path)
    assert serve_spec(container(chosen)).namespace == "tenant-b"
    assert not any("--namespace" in a for a in container(rendered(GIT, tmp_path))["args"])


def test_the_system_namespace_is_the_release_namespace_or_the_value(tmp_path: Path) -> None:
    def where(docs: list[dict[str, Any]]) -> tuple[str, str, str, str]:
        args = container(docs)["args"]
        flag = next(a for a in args if a.startswith("--system-namespace=")).split("=", 1)[1]
        lease = next(a for a in args if a.startswith("--lease-namespace=")).split("=", 1)[1]
        role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "acm-self")
        binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "acm-self")
        assert binding["subjects"][0]["namespace"] == deployment(docs)["metadata"]["namespace"]
        return flag, lease, role["metadata"]["namespace"], binding["metadata"]["namespace"]

    assert where(rendered(GIT, tmp_path, namespace="platform-sync")) == ("platform-sync",) * 4
    other = rendered({**GIT, "systemNamespace": "acm-records"}, tmp_path, namespace="platform-sync")
    assert where(other) == ("acm-records",) * 4
    assert deployment(other)["metadata"]["namespace"] == "platform-sync"


def serve_spec(box: dict[str, Any]) -> Any:
    """What ``acm-lite serve`` makes of the container's arguments, with acm-lite's own parser."""
    args = build_parser().parse_args(box["args"])
    assert args.command == "serve"
    return clusterargs.spec(args)


# Every combination README documents; each is linted, rendered, parsed by the daemon's parser and
# validated by a real API server.
COMBINATIONS: dict[str, dict[str, Any]] = {
    "git": {"sync": {"repo": REPO_URL}, "git": {"secretName": "git-creds"}},
    "helm": {
        "source": {
            "type": "helm",
            "helm": {"repo": "oci://registry.example.com/charts", "chart": "platform", "version": "^2"},
            "secretName": "chart-creds",
        }
    },
    "oci": {"source": {"type": "oci", "oci": {"image": "registry.example.com/configs/prod:v3"}}},
    "tenant": {
        "sync": {"repo": REPO_URL, "sourceFormat": "unstructured"},
        "rbac": {"scope": "namespace", "namespaces": ["team-a", "team-b"]},
    },
    "from-cluster": {"sync": {"fromCluster": True}},
    "system-namespace": {"sync": {"repo": REPO_URL}, "systemNamespace": "acm-records"},
    "admission-webhook": {
        "sync": {"repo": REPO_URL},
        "admissionWebhook": {"enabled": True, "failurePolicy": "Fail", "secretName": "webhook-tls"},
    },
    "team": {
        "image": {
            "registry": "registry.example.com",
            "repository": "platform/acm-lite",
            "digest": DIGEST,
            "pullPolicy": "Always",
        },
        "imagePullSecrets": [{"name": "regcred"}],
        "replicaCount": 3,
        "logFormat": "text",
        "sync": {"repo": REPO_URL, "period": "1m", "resyncPeriod": "2h", "clusterName": "eks-prod"},
        "webhook": {"enabled": True},
        "serviceAccount": {
            "annotations": {
                "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/acm-lite",
                "iam.gke.io/gcp-service-account": "acm-lite@project.iam.gserviceaccount.com",
                "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000",
            }
        },
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"azure.workload.identity/use": "true"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}
        ],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "acm-lite"}},
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ],
        "priorityClassName": "system-cluster-critical",
        "podSecurityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
        "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
        "extraArgs": ["--no-drift-repair", "--unready-after=120"],
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"}],
        "extraVolumes": [{"name": "ca", "configMap": {"name": "corporate-ca"}}],
        "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": True}],
    },
    "webhook-existing-secret": {
        "sync": {"repo": REPO_URL},
        "webhook": {"enabled": True, "secretName": "hook"},
    },
}


def test_every_documented_combination_is_valid(control_plane: APIServer, tmp_path: Path) -> None:
    admin = Cluster.connect(control_plane.kubeconfig)
    for name in ("acm-lite-system", "acm-records", "team-a", "team-b"):
        try:
            admin.request("POST", "/api/v1/namespaces", body=ns(name))
        except ApiError as e:
            assert e.status == 409
    crds = [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").iterdir())]
    apply(control_plane, crds, tmp_path / "crds.yaml")
    for name, values in COMBINATIONS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(values))
        lint = chart.helm("lint", "--strict", str(CHART), "-f", str(path))
        assert lint.returncode == 0, f"{name}: {lint.stdout}{lint.stderr}"
        docs = rendered(values, tmp_path, release=f"c-{name}")
        args = build_parser().parse_args(container(docs)["args"])  # the daemon's own parser
        workers = serve._workers(args)  # what serve would sync
        if args.from_cluster:
            assert workers == [] and not any(a.startswith("--repo") for a in container(docs)["args"])
        else:
            assert [w[0].name for w in workers] == ["root-sync"], name
        apply(control_plane, docs, tmp_path / f"{name}-out.yaml", dry_run=True)
    _team_values_reach_the_pod(rendered(COMBINATIONS["team"], tmp_path, release="team"))
    existing = rendered(COMBINATIONS["webhook-existing-secret"], tmp_path)
    assert not any(d["kind"] == "Secret" for d in existing)  # the team's own Secret is used
    hook = {v["name"]: v for v in deployment(existing)["spec"]["template"]["spec"]["volumes"]}[
        "webhook-secret"
    ]
    assert hook["secret"]["secretName"] == "hook"


def _team_values_reach_the_pod(team: list[dict[str, Any]]) -> None:
    pod = deployment(team)["spec"]["template"]["spec"]
    box = container(team)
    assert box["image"] == f"registry.example.com/platform/acm-lite@{DIGEST}"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]
    assert pod["topologySpreadConstraints"][0]["labelSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "acm-lite", "app.kubernetes.io/instance": "team"}
    }
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["runAsNonRoot"] is True
    assert box["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    meta = deployment(team)["spec"]["template"]["metadata"]
    assert meta["annotations"] == {"example.com/team": "platform"}
    assert meta["labels"]["azure.workload.identity/use"] == "true"
    sa = next(d for d in team if d["kind"] == "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    args = box["args"]
    assert {
        "--log-format=text",
        "--period=60",
        "--resync=7200",
        "--no-drift-repair",
        "--unready-after=120",
    } <= set(args)
    assert "--webhook-secret-file=/etc/acm-lite/webhook/secret" in args
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"} in box["env"]
    mounts = {m["name"]: m["mountPath"] for m in box["volumeMounts"]}
    assert mounts["ca"] == "/etc/ssl/corporate" and mounts["webhook-secret"] == "/etc/acm-lite/webhook"
    secret = next(d for d in team if d["kind"] == "Secret")
    assert secret["metadata"]["name"] == "team-webhook" and len(secret["data"]["secret"]) >= 40
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["webhook-secret"]["secret"]["secretName"] == "team-webhook"


def apply(server: APIServer, docs: list[dict[str, Any]], path: Path, *, dry_run: bool = False) -> None:
    path.write_text(yaml.safe_dump_all(docs))
    run = subprocess.run(
        [
            str(binaries.ensure("kubectl")),
            "--kubeconfig",
            server.kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            *(["--dry-run=server"] if dry_run else []),
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{path.name}: {run.stdout}{run.stderr}"


def _container_env(box: dict[str, Any], namespace: str, tmp_path: Path) -> dict[str, str]:
    """The container's environment as the kubelet would give it (a fieldRef to the pod's
    namespace resolved; the cache under tmp_path instead of the emptyDir)."""
    env: dict[str, str] = {}
    for item in box["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
    env["ACM_LITE_CACHE"] = str(tmp_path / "cache")
    env["HOME"] = str(tmp_path)
    return env


def _install(server: APIServer, namespace: str, release: str, values: dict[str, Any], tmp_path: Path) -> str:
    """``helm install`` as README documents it, against the real API server; its NOTES."""
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    run = chart.helm(
        "install",
        release,
        str(CHART),
        "--kubeconfig",
        server.kubeconfig,
        "-n",
        namespace,
        "--create-namespace",
        "-f",
        str(path),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _in_cluster(server: APIServer, admin: Cluster, namespace: str, sa: str, tmp_path: Path) -> dict[str, str]:
    token = admin.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    (tmp_path / "token").write_text(token)
    return {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": server.url.rsplit(":", 1)[1],
        "ACM_LITE_SERVICEACCOUNT_TOKEN": str(tmp_path / "token"),
        "ACM_LITE_SERVICEACCOUNT_CA": server.file("ca.crt"),
    }


def _wait_synced(admin: Cluster, path: str, daemon: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 120
    state, errors = None, None
    while time.monotonic() < deadline and state != "SYNCED" and daemon.poll() is None:
        time.sleep(0.5)
        try:
            status = admin.request("GET", path).get("status") or {}
            state, errors = status.get("state"), status.get("errors")
        except ApiError:
            continue
    assert state == "SYNCED", f"{errors}: {log.read_text()[-3000:]}"


def _nothing_in_acm_lite_system(admin: Cluster, sync: str, release: str) -> None:
    assert inventory.read(admin, sync, api.SYSTEM_NAMESPACE) == set()
    for path in (
        f"/apis/acm-lite.io/v1alpha1/namespaces/{api.SYSTEM_NAMESPACE}/rootsyncs/{sync}",
        f"/apis/coordination.k8s.io/v1/namespaces/{api.SYSTEM_NAMESPACE}/leases/{release}",
    ):
        with pytest.raises(ApiError) as absent:
            admin.request("GET", path)
        assert absent.value.status == 404
    try:
        there = admin.request("GET", f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}/events").get("items") or []
    except ApiError as e:
        assert e.status == 404
        there = []
    assert not [e for e in there if e["metadata"]["name"].startswith(f"{sync}.")]


def test_an_install_into_another_namespace_keeps_every_record_there(
    control_plane: APIServer, tmp_path: Path
) -> None:
    namespace, release, sync = "platform-sync", "platform", "platform-root"
    admin = Cluster.connect(control_plane.kubeconfig)
    repo = GitRepo(tmp_path / "git")
    # objects of this test only: the control plane is shared with the other chart tests
    repo.commit({"ns.yaml": ns("platform-apps"), "cm.yaml": cm("hello", "platform-apps")})
    notes = _install(
        control_plane,
        namespace,
        release,
        {"sync": {"repo": repo.url, "name": sync, "sourceFormat": "unstructured", "period": "1s"}},
        tmp_path,
    )
    assert f"kubectl -n {namespace} get rootsyncs.acm-lite.io" in notes
    assert f"--system-namespace {namespace}" in notes
    installed = admin.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{release}")
    box = installed["spec"]["template"]["spec"]["containers"][0]
    assert f"--system-namespace={namespace}" in box["args"]
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", api.SYSTEM_NAMESPACE_ENV)}
    env.update(_container_env(box, namespace, tmp_path))
    env.update(_in_cluster(control_plane, admin, namespace, release, tmp_path))
    # the installed container's own arguments; only the listening address is moved off the port
    daemon = subprocess.Popen(
        [sys.executable, "-m", "acm_lite", *box["args"], "--metrics-address", "off"],
        env=env,
        stderr=(tmp_path / "serve.log").open("w"),
        text=True,
    )
    try:
        _wait_synced(
            admin,
            f"/apis/acm-lite.io/v1alpha1/namespaces/{namespace}/rootsyncs/{sync}",
            daemon,
            tmp_path / "serve.log",
        )
        hello = admin.request("GET", "/api/v1/namespaces/platform-apps/configmaps/hello")
        assert hello["metadata"]["labels"]["acm-lite.io/sync"] == sync
        recorded = inventory.read(admin, sync, namespace)
        assert {(o.kind, o.name) for o in recorded} == {
            ("Namespace", "platform-apps"),
            ("ConfigMap", "hello"),
        }
        lease = admin.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{release}")
        assert lease["spec"]["holderIdentity"]
        events = admin.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        assert any(e["metadata"]["name"].startswith(f"{sync}.") for e in events)
        _nothing_in_acm_lite_system(admin, sync, release)
        _status_reads_the_system_namespace(control_plane, namespace, sync, tmp_path)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0


def _status_reads_the_system_namespace(server: APIServer, namespace: str, sync: str, tmp_path: Path) -> None:
    """``acm-lite status`` finds the sync with ``--system-namespace`` or its environment variable,
    and not in ``acm-lite-system``."""

    def names(*flags: str, **env: str) -> list[str]:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "acm_lite",
                "status",
                "--kubeconfig",
                server.kubeconfig,
                "-o",
                "json",
                *flags,
            ],
            env={**{k: v for k, v in os.environ.items() if k != api.SYSTEM_NAMESPACE_ENV}, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return [s["name"] for s in yaml.safe_load(run.stdout)["syncs"]]

    assert names("--system-namespace", namespace) == [sync]
    assert names(**{api.SYSTEM_NAMESPACE_ENV: namespace}) == [sync]
    assert sync not in names()


def test_the_webhook_secret_the_chart_makes_is_kept_across_upgrades(
    control_plane: APIServer, tmp_path: Path
) -> None:
    namespace, release = "hooked", "hooked"
    values = {"sync": {"repo": REPO_URL}, "webhook": {"enabled": True}, "replicaCount": 0}
    _install(control_plane, namespace, release, values, tmp_path)
    admin = Cluster.connect(control_plane.kubeconfig)
    path = f"/api/v1/namespaces/{namespace}/secrets/{release}-webhook"
    first = admin.request("GET", path)["data"]["secret"]
    assert len(first) >= 40
    upgrade = chart.helm(
        "upgrade",
        release,
        str(CHART),
        "--kubeconfig",
        control_plane.kubeconfig,
        "-n",
        namespace,
        "--reuse-values",
        "--set",
        "logFormat=text",
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert admin.request("GET", path)["data"]["secret"] == first
    installed = admin.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{release}")
    assert "--log-format=text" in installed["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_dashboard_values(tmp_path: Path) -> None:
    def read_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-read"))
        return list(role["rules"])

    review = {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    off = rendered(GIT, tmp_path)
    assert not any(a.startswith("--ui") for a in container(off)["args"])
    assert review not in read_rules(off)

    both = rendered({**GIT, "ui": {"enabled": True, "tokenSecretName": "dash-token"}}, tmp_path)
    box = container(both)
    assert {"--ui", "--ui-token-review", "--ui-token-file=/etc/acm-lite/ui/token"} <= set(box["args"])
    assert {m["name"]: m["mountPath"] for m in box["volumeMounts"]}["ui-token"] == "/etc/acm-lite/ui"
    volumes = {v["name"]: v for v in deployment(both)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["ui-token"]["secret"]["secretName"] == "dash-token"
    assert review in read_rules(both)

    file_only = rendered(
        {**GIT, "ui": {"enabled": True, "tokenReview": False, "tokenSecretName": "t"}}, tmp_path
    )
    assert "--ui-token-review" not in container(file_only)["args"] and review not in read_rules(file_only)
    assert "ui.tokenReview or ui.tokenSecretName" in refused(
        {**GIT, "ui": {"enabled": True, "tokenReview": False}}, tmp_path
    )
    assert "tokenSecretName" in refused(
        {**GIT, "ui": {"enabled": True, "tokenSecretName": "Not A Name"}}, tmp_path
    )
