"""`acm-lite preview` against a fleet of real control planes: a base revision synced, a head that
creates, changes, prunes and breaks policy on one cluster, a member that cannot be reached, and
the offline mode against the recorded inventory; the Markdown compared with a golden file."""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from acm_lite import api
from acm_lite.cli.main import main
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster import controlplane
from acm_lite.fleet import fanout, preview, registry
from acm_lite.policy.library import PolicySources
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support import gitserver
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns, obj

MEMBERS = {"eks-prod": {"env": "prod"}, "aks-staging": {"env": "staging"}, "baremetal-edge": {"env": "prod"}}
GOLDEN = Path(__file__).parent.parent / "golden" / "preview"
HOSTILE = "</details><script>alert(1)</script> ``` | `x`"


def secret(password: str) -> dict[str, object]:
    return obj("v1", "Secret", "creds", metadata={"namespace": "apps"}, stringData={"password": password})


def privileged_pod(name: str = "root-shell", cluster: str = "baremetal-edge") -> dict[str, object]:
    return obj(
        "v1",
        "Pod",
        name,
        metadata={"namespace": "apps", "annotations": {"configsync.gke.io/cluster-name-selector": cluster}},
        spec={
            "containers": [
                {"name": "sh", "image": "registry.acme.io/sh:1", "securityContext": {"privileged": True}}
            ]
        },
    )


@pytest.fixture
def env(control_plane_binaries: dict[str, Path]) -> controlplane.Environment:
    environment = controlplane.start(
        list(MEMBERS),
        etcd_binary=str(control_plane_binaries["etcd"]),
        apiserver_binary=str(control_plane_binaries["kube-apiserver"]),
    )
    yield environment  # type: ignore[misc]
    controlplane.stop(environment)


def fleet_file(path: Path, kubeconfig: str, repo: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "acm-lite.io/v1alpha1",
                "kind": "Fleet",
                "metadata": {"name": "preview"},
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


def normalised(markdown: str, commits: dict[str, str]) -> str:
    for label, sha in commits.items():
        markdown = markdown.replace(sha, label).replace(sha[:12], label)
    return markdown


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def compare_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ACM_LITE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_preview_of_a_fleet_live_unreachable_and_offline(
    env: controlplane.Environment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACM_LITE_CACHE", str(tmp_path / "cache"))
    repo = GitRepo(tmp_path / "git")
    base = repo.commit(
        {
            "ns.yaml": ns("apps"),
            "keep.yaml": cm("keep", "apps"),
            "change.yaml": cm("change", "apps", data={"level": "1"}),
            "gone.yaml": cm("gone", "apps"),
            "secret.yaml": secret("hunter2-old"),
            "aks-pod.yaml": privileged_pod("aks-shell", "aks-staging"),  # the head fixes this one
        }
    )
    fleet = fleet_file(tmp_path / "fleet.yaml", env.merged_kubeconfig, repo.url)
    baseline = PolicySources(("pod-security-baseline",))
    outcomes = fanout.sync_all(
        list(registry.load(fleet).clusters),
        SyncOptions(git_cache=tmp_path / "cache", policies=baseline),
        parallel=3,
    )
    assert [o.ok for o in outcomes] == [True, False, True], [p.render() for o in outcomes for p in o.problems]
    head = repo.commit(
        {
            "change.yaml": cm("change", "apps", data={"level": "2", "note": HOSTILE}),
            "gone.yaml": None,
            "new.yaml": cm("new", "apps"),
            "secret.yaml": secret("hunter2-new"),
            "pod.yaml": privileged_pod(),
            "aks-pod.yaml": None,
        }
    )
    controlplane.stop_apiserver(env, "aks-staging")
    json_out = tmp_path / "report.json"
    common = [
        "preview",
        "--fleet",
        str(fleet),
        "--base",
        base,
        "--head",
        head,
        "--policy-bundle",
        "pod-security-baseline",
    ]

    code, markdown = run(capsys, *common, "--json-out", str(json_out))
    assert code == 1  # the privileged Pod on baremetal-edge is a deny violation the head introduces
    assert "hunter2" not in markdown and "hunter2" not in json_out.read_text()
    assert "<script>" not in markdown.replace(HOSTILE, "")  # only inside the fenced diff
    compare_golden("fleet.md", normalised(markdown, {"BASE": base, "HEAD": head}))

    report = json.loads(json_out.read_text())
    clusters = {c["name"]: c for c in report["clusters"]}
    eks = clusters["eks-prod"]
    assert (eks["reachable"], eks["mode"]) == (True, "live")
    assert eks["create"] == ["ConfigMap apps/new"] and eks["prune"] == ["ConfigMap apps/gone"]
    assert [c["object"] for c in eks["change"]] == ["ConfigMap apps/change", "Secret apps/creds"]
    assert "+  level: '2'" in eks["change"][0]["diff"] and "*** (after)" in eks["change"][1]["diff"]
    assert eks["leave"] == 2 and eks["introduced"] == [] and eks["blocking"] is False
    aks = clusters["aks-staging"]
    assert (aks["reachable"], aks["mode"], aks["against"]) == (False, "offline", "base")
    assert aks["create"] == ["ConfigMap apps/new"]
    assert aks["prune"] == ["ConfigMap apps/gone", "Pod apps/aks-shell"]
    assert [(p["code"], p["object"]["name"]) for p in aks["fixed"]] == [("ACM3100", "aks-shell")]
    assert aks["changesKnown"] is False and all(c["diff"] == "" for c in aks["change"])
    edge = clusters["baremetal-edge"]
    assert edge["blocking"] is True and [(p["code"], p["object"]["name"]) for p in edge["introduced"]] == [
        ("ACM3100", "root-shell")
    ]
    assert edge["create"] == [] and edge["notes"][0].startswith("no plan: ACM3100")
    assert report["blocking"] is True and report["version"] == 1

    # offline: the recorded inventory of the reachable clusters, changes unknown
    code, out = run(capsys, *common, "--cluster", "eks-prod", "--offline", "-o", "json")
    offline = json.loads(out)["clusters"][0]
    assert code == 0
    assert (offline["reachable"], offline["mode"], offline["against"]) == (True, "offline", "inventory")
    assert offline["create"] == ["ConfigMap apps/new"] and offline["prune"] == ["ConfigMap apps/gone"]
    assert {c["object"] for c in offline["change"]} >= {"ConfigMap apps/change", "Secret apps/creds"}

    # the size limit: sections cut, the full report pointed to
    code, small = run(capsys, *common, "--max-bytes", "1500", "--report-url", "https://ci.example.com/run/1")
    assert len(small.encode()) <= 1500
    assert re.search(r"2 cluster section\(s\) left out .*\(<https://ci.example.com/run/1>\)", small), small
    assert "<summary>⛔ baremetal-edge" in small  # the cluster with a blocking problem keeps its section
    assert "| eks-prod | yes | live | 1 | 2 | 1 |" in small


def test_one_sync_previewed_with_its_blocked_head_planned(
    control_plane: controlplane.APIServer, tmp_path: Path
) -> None:
    """The dashboard's preview of one sync: a head the policies block is still planned (what it
    would create), its violation introduced; without ``plan_blocked``, as ``acm-lite preview``,
    no plan. Nothing is written to the cluster."""
    repo = GitRepo(tmp_path / "git")
    base = repo.commit({"ns.yaml": ns("preview-one"), "a.yaml": cm("a", "preview-one")})
    pod = privileged_pod()
    pod["metadata"] = {"name": "root-shell", "namespace": "preview-one"}  # type: ignore[index]
    head = repo.commit({"pod.yaml": pod, "b.yaml": cm("b", "preview-one")})
    spec = SyncSpec(repo=repo.url, name="preview-one", revision="main", source_format="unstructured")
    options = SyncOptions(git_cache=tmp_path / "cache", policies=PolicySources(("pod-security-baseline",)))
    cluster = Cluster.connect(control_plane.kubeconfig)

    def run(plan_blocked: bool) -> preview.ClusterPreview:
        request = preview.Request(base, head, options=replace(options, plan_blocked=plan_blocked))
        return preview.preview_sync("one", spec, request, lambda: cluster)

    planned = run(True)
    assert planned.error is None and planned.reachable and planned.mode == preview.LIVE
    assert [(p.code.id, p.obj["name"]) for p in planned.introduced] == [("ACM3100", "root-shell")]  # type: ignore[index]
    assert sorted(planned.create) == [
        "ConfigMap preview-one/a",
        "ConfigMap preview-one/b",
        "Namespace preview-one",
        "Pod preview-one/root-shell",
    ]
    unplanned = run(False)
    assert unplanned.create == [] and unplanned.notes[0].startswith("no plan: ACM3100"), unplanned.notes
    assert (
        cluster.request("GET", "/api/v1/namespaces", query={"fieldSelector": "metadata.name=preview-one"})[
            "items"
        ]
        == []
    )


def test_a_sync_whose_git_credentials_are_in_its_secret_ref_is_previewed_with_them(
    control_plane: controlplane.APIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As its passes fetch: the token comes from the Secret spec.git.secretRef names, read from
    the sync's cluster (none in the environment)."""
    suffix = uuid.uuid4().hex[:6]
    secret_name, token = f"git-creds-{suffix}", f"tok-{suffix}-7c1e"
    monkeypatch.setenv("ACM_LITE_GIT_ALLOW_HTTP", "1")
    for var in ("ACM_LITE_GIT_TOKEN", "ACM_LITE_GIT_USERNAME"):
        monkeypatch.delenv(var, raising=False)
    cluster = Cluster.connect(control_plane.kubeconfig)
    try:
        cluster.request("POST", "/api/v1/namespaces", body={"metadata": {"name": api.SYSTEM_NAMESPACE}})
    except ApiError as e:
        assert e.status == 409
    data = {"username": "alice", "token": token}
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{api.SYSTEM_NAMESPACE}/secrets",
        body={
            "metadata": {"name": secret_name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        },
    )
    repo = GitRepo(tmp_path / "git")
    base = repo.commit({"a.yaml": cm("a", "default")})
    head = repo.commit({"b.yaml": cm("b", "default")})
    options = SyncOptions(git_cache=tmp_path / "cache")
    with gitserver.serve(repo.bare.parent, credentials=("alice", token)) as server:
        host, port = server.server_address[:2]
        url = f"http://{host!s}:{port}/{repo.bare.name}"
        spec = SyncSpec(repo=url, name=f"p-{suffix}", revision="main", source_format="unstructured")
        with_secret = replace(spec, git_auth="token", git_secret_ref=secret_name)
        found = preview.preview_sync(
            "one", with_secret, preview.Request(base, head, options=options), lambda: cluster
        )
        assert found.error is None, found.error.render()
        assert (found.base_commit, found.head_commit) == (base, head)
        assert sorted(found.create) == ["ConfigMap default/a", "ConfigMap default/b"]  # nothing applied
        without = preview.preview_sync(
            "one", spec, preview.Request(base, head, options=options), lambda: cluster
        )
        assert without.error is not None and token not in without.error.render()
