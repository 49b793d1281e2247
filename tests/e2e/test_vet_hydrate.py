"""`acm-lite vet` and `acm-lite hydrate` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.repo_builder import REPO, cm, hierarchy, ns, write

SAMPLE = Path(__file__).resolve().parents[2] / "sample-repo"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acm_lite", *args], capture_output=True, text=True, timeout=120
    )


def test_sample_repo_vets_clean_for_every_cluster() -> None:
    text = cli("vet", str(SAMPLE))
    assert text.returncode == 0, text.stdout + text.stderr
    assert "No validation issues found" in text.stdout
    data = json.loads(cli("vet", str(SAMPLE), "-o", "json").stdout)
    assert data == {"clusters": ["defaultcluster", "eks-prod", "aks-staging", "baremetal-edge"], "errors": []}
    fleet = json.loads(cli("vet", str(SAMPLE), "--fleet", str(SAMPLE / "fleet.yaml"), "-o", "json").stdout)
    assert fleet["clusters"] == ["eks-prod", "aks-staging", "baremetal-edge"]


def test_vet_reports_every_problem_with_code_file_and_object(tmp_path: Path) -> None:
    hierarchy(
        tmp_path,
        {
            "namespaces/team/ns.yaml": ns("wrong-name"),
            "namespaces/team/cm.yaml": cm("Bad_Name"),
            "cluster/cm.yaml": cm("misplaced"),
        },
    )
    run = cli("vet", str(tmp_path), "-o", "json")
    assert run.returncode == 1
    errors = json.loads(run.stdout)["errors"]
    assert sorted(e["code"] for e in errors) == ["KNV1020", "KNV1036"]
    bad_name = next(e for e in errors if e["code"] == "KNV1036")
    assert bad_name == {
        "code": "KNV1036",
        "name": "InvalidMetadataName",
        "blocking": True,
        "message": bad_name["message"],
        "source": "namespaces/team/cm.yaml",
        "object": {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "", "name": "Bad_Name"},
        "clusters": ["defaultcluster"],
    }
    text = cli("vet", str(tmp_path))
    assert text.returncode == 1
    assert text.stdout.startswith("Found issues: 2 error(s), 0 warning(s)")
    assert "[1] KNV1036 InvalidMetadataName" in text.stdout
    assert "[2] KNV1020 InvalidNamespaceName" in text.stdout
    assert "source: namespaces/team/cm.yaml" in text.stdout


def test_warnings_do_not_fail_vet(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "w.yaml": {
                "apiVersion": "acme.io/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "namespace": "x"},
            }
        },
    )
    run = cli("vet", str(tmp_path), "--source-format", "unstructured")
    assert run.returncode == 0
    assert "(warning) KNV1021 UnknownObjectKind" in run.stdout


@pytest.mark.parametrize(
    "content",
    [
        "{{{{",
        "\x00\x01binary",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [1, 2]\n",
        "apiVersion: 7\nkind: {a: b}\nmetadata: {name: x}\n",
        "- - - -\n",
        'kind: ""\n',
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, annotations: [a]}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: 5}\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: 12\n",
    ],
)
def test_malformed_input_is_a_coded_error_never_a_traceback(tmp_path: Path, content: str) -> None:
    hierarchy(tmp_path, {"namespaces/team/ns.yaml": ns("team"), "namespaces/team/bad.yaml": content})
    run = cli("vet", str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert "namespaces/team/bad.yaml" in run.stdout
    assert "KNV" in run.stdout or "ACM" in run.stdout


def test_hydrate_writes_per_cluster_and_refuses_blocked_clusters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = cli("hydrate", str(SAMPLE), "--output", str(out), "-o", "json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert [c["cluster"] for c in summary["clusters"]] == [
        "defaultcluster",
        "eks-prod",
        "aks-staging",
        "baremetal-edge",
    ]
    assert (out / "baremetal-edge" / "store-gateway" / "daemonset_pos-gateway.yaml").is_file()
    assert not (out / "eks-prod" / "store-gateway").exists()
    assert (out / "aks-staging" / "storageclass_standard.yaml").read_text().count("disk.csi.azure.com") == 1

    broken = hierarchy(tmp_path / "broken", {"namespaces/x/ns.yaml": ns("y")})
    failed = cli("hydrate", str(broken), "--output", str(tmp_path / "out2"))
    assert failed.returncode == 1
    assert "KNV1020" in failed.stderr
    assert not (tmp_path / "out2" / "defaultcluster").exists()


def test_hydrate_one_cluster_only(tmp_path: Path) -> None:
    run = cli("hydrate", str(SAMPLE), "--cluster", "eks-prod", "--output", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eks-prod"]


def test_missing_repo_object_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path, {"namespaces/a/ns.yaml": ns("a"), "system/other.yaml": {**REPO, "kind": "X"}})
    run = cli("vet", str(tmp_path), "-o", "json")
    assert [e["code"] for e in json.loads(run.stdout)["errors"]] == ["KNV1017"]


def test_a_missing_directory_is_a_coded_error(tmp_path: Path) -> None:
    run = cli("vet", str(tmp_path / "nope"))
    assert run.returncode == 1
    assert "ACM1101 SourceDirNotFound" in run.stderr
