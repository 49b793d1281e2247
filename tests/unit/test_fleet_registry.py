from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.errors import AcmError
from acm_lite.fleet import registry

HEAD = "apiVersion: acm-lite.io/v1alpha1\nkind: Fleet\nmetadata:\n  name: prod\n"


def test_clusters_with_labels(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(HEAD + "spec:\n  clusters:\n  - name: eks-prod\n    labels:\n"
                    "      provider: eks\n    context: prod\n  - name: aks-staging\n")
    fleet = registry.load(path)
    assert fleet.name == "prod"
    assert fleet.clusters == (
        registry.FleetCluster("eks-prod", {"provider": "eks"}, None, "prod"),
        registry.FleetCluster("aks-staging", {}),
    )


@pytest.mark.parametrize(("body", "message"), [
    ("spec:\n  clusters: []\n", "at least one cluster"),
    ("spec:\n  clusters:\n  - name: Bad_Name\n", "spec.clusters[0].name 'Bad_Name'"),
    ("spec:\n  clusters:\n  - name: a\n  - name: a\n", "cluster names repeat: a"),
    ("spec:\n  clusters:\n  - name: a\n    labels: {env: 3}\n", "spec.clusters[0].labels"),
    ("spec:\n  clusters:\n  - just-a-string\n", "spec.clusters[0] must be a mapping"),
    ("spec: [unclosed\n", "cannot read fleet file"),
])
def test_mistakes_are_coded_and_point_at_the_entry(tmp_path: Path, body: str,
                                                   message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(HEAD + body)
    with pytest.raises(AcmError) as failed:
        registry.load(path)
    assert failed.value.code.id == "ACM4001"
    assert message in failed.value.message
    assert failed.value.path == str(path)


def test_other_kinds_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(AcmError, match="not a Fleet"):
        registry.load(path)
