from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.errors import AcmError
from acm_lite.fleet import registry

HEAD = "apiVersion: acm-lite.io/v1alpha1\nkind: Fleet\nmetadata:\n  name: prod\n"


def test_clusters_labels_kubeconfigs_and_syncs(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        HEAD + "spec:\n  sync: {repo: https://git.example.com/c.git, revision: main}\n"
        "  clusters:\n  - name: eks-prod\n    labels:\n      provider: eks\n"
        "    kubeconfig: kube/eks.yaml\n    context: prod\n"
        "  - name: aks-staging\n    sync: {dir: clusters/staging}\n"
        "    kubeconfigSecretRef: {name: aks, namespace: acm-lite-system}\n"
    )
    fleet = registry.load(path)
    assert fleet.name == "prod"
    eks, aks = fleet.clusters
    assert (eks.name, eks.provider, eks.context) == ("eks-prod", "eks", "prod")
    assert eks.kubeconfig == str(tmp_path / "kube" / "eks.yaml")  # relative to the fleet file
    assert eks.sync == registry.FleetSync("https://git.example.com/c.git", "main", ".")
    assert aks.sync.dir == "clusters/staging" and aks.sync.repo == eks.sync.repo
    assert aks.secret_ref == {"name": "aks", "namespace": "acm-lite-system"}
    assert [c.name for c in fleet.select(["aks-staging"])] == ["aks-staging"]
    with pytest.raises(AcmError, match="no cluster named nope"):
        fleet.select(["nope"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("spec:\n  clusters: []\n", "spec.clusters: [] should be non-empty"),
        ("spec:\n  clusters:\n  - name: Bad_Name\n", "spec.clusters[0].name: 'Bad_Name' does not match"),
        ("spec:\n  clusters:\n  - name: a\n  - name: a\n", "cluster names repeat: a"),
        (
            "spec:\n  clusters:\n  - name: a\n    labels: {env: 3}\n",
            "spec.clusters[0].labels.env: 3 is not of type 'string'",
        ),
        ("spec:\n  clusters:\n  - just-a-string\n", "spec.clusters[0]: 'just-a-string' is not of type"),
        ("spec:\n  clusters:\n  - name: a\n    kubeconfg: x\n", "spec.clusters[0]: Additional"),
        (
            "spec:\n  clusters:\n  - name: a\n    sync: {sourceFormat: flat}\n",
            "spec.clusters[0].sync.sourceFormat: 'flat' is not one of",
        ),
        (
            "spec:\n  clusters:\n  - name: a\n    kubeconfig: k\n    kubeconfigSecretRef: {name: s}\n",
            "spec.clusters[0]:",
        ),
        ("spec: [unclosed\n", "cannot read fleet file"),
    ],
)
def test_mistakes_are_coded_and_point_at_the_entry(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(AcmError) as failed:
        registry.load(path)
    assert failed.value.code.id == "ACM4001"
    assert message in failed.value.message
    assert failed.value.path == str(path)


def test_other_kinds_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nspec: {clusters: [{name: a}]}\n")
    with pytest.raises(AcmError, match="kind: 'Fleet' was expected"):
        registry.load(path)


def test_the_sample_fleet_loads() -> None:
    sample = Path(__file__).resolve().parents[2] / "sample-repo" / "fleet.yaml"
    fleet = registry.load(sample)
    assert [(c.name, c.provider) for c in fleet.clusters] == [
        ("eks-prod", "eks"),
        ("aks-staging", "aks"),
        ("baremetal-edge", "baremetal"),
    ]
