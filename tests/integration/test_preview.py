"""`acm-lite preview` against a fleet of real control planes: a base revision synced, a head that
creates, changes, prunes and breaks policy on one cluster, a member that cannot be reached, and
the offline mode against the recorded inventory; the Markdown compared with a golden file."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from acm_lite.cli.main import main
from acm_lite.devcluster import controlplane
from acm_lite.fleet import fanout, registry
from acm_lite.policy.library import PolicySources
from acm_lite.reconcile.pipeline import SyncOptions
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
