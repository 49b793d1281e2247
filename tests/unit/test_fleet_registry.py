from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acm_lite.errors import AcmError
from acm_lite.fleet import fanout, registry
from acm_lite.plan.ignorefields import IgnoreRule

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
        (
            "spec:\n  clusters:\n  - name: Bad_Name\n",
            "spec.clusters[0] (cluster 'Bad_Name').name: 'Bad_Name' does not match",
        ),
        ("spec:\n  clusters:\n  - name: a\n  - name: a\n", "cluster names repeat: a"),
        (
            "spec:\n  clusters:\n  - name: a\n    labels: {env: 3}\n",
            "spec.clusters[0] (cluster 'a').labels.env: 3 is not of type 'string'",
        ),
        ("spec:\n  clusters:\n  - just-a-string\n", "spec.clusters[0]: 'just-a-string' is not of type"),
        ("spec:\n  clusters:\n  - name: a\n    kubeconfg: x\n", "spec.clusters[0] (cluster 'a'): Additional"),
        (
            "spec:\n  clusters:\n  - name: a\n    sync: {sourceFormat: flat}\n",
            "spec.clusters[0] (cluster 'a').sync.sourceFormat: 'flat' is not one of",
        ),
        (
            "spec:\n  clusters:\n  - name: a\n    kubeconfig: k\n    kubeconfigSecretRef: {name: s}\n",
            "spec.clusters[0] (cluster 'a'):",
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


HELM_AND_OCI = """spec:
  sync: {repo: https://git.example.com/c.git, revision: main}
  clusters:
  - name: git-one
  - name: charted
    sync:
      sourceType: helm
      name: web
      helm:
        repo: https://charts.example.com/stable
        chart: web
        version: ^1.2
        releaseName: front
        namespace: shop
        values: {replicas: 3, image: {tag: v2}}
        valuesFiles: [values/prod.yaml, /abs/extra.yaml]
        includeCRDs: true
        auth: token
        secretRef: {name: charts-credentials}
        valuesFileRefs: [{name: web-values}, {name: web-prod, dataKey: prod.yaml}]
  - name: imaged
    sync:
      sourceType: oci
      sourceFormat: unstructured
      oci: {image: "reg.example.com/configs/prod:v3", dir: prod, auth: none, caFile: ca.pem}
"""


def test_helm_and_oci_entries_become_their_sources(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(HEAD + HELM_AND_OCI)
    git_one, charted, imaged = registry.load(path).clusters
    assert git_one.sync.source_type == "git" and git_one.sync.helm is None and git_one.sync.oci is None
    helm = charted.sync.helm
    assert charted.sync.source_type == "helm" and helm is not None
    assert (helm.auth, helm.secret_ref) == ("token", "charts-credentials")
    assert [(r.name, r.data_key) for r in helm.values_file_refs] == [
        ("web-values", "values.yaml"),
        ("web-prod", "prod.yaml"),
    ]
    assert (helm.repo, helm.chart, helm.version, helm.release_name, helm.namespace, helm.include_crds) == (
        "https://charts.example.com/stable",
        "web",
        "^1.2",
        "front",
        "shop",
        True,
    )
    assert yaml.safe_load(helm.values) == {"replicas": 3, "image": {"tag": "v2"}}
    # relative values files are relative to the fleet file, as kubeconfigs are
    assert helm.values_files == (tmp_path / "values" / "prod.yaml", Path("/abs/extra.yaml"))
    assert imaged.sync.oci is not None and imaged.sync.oci.dir == "prod"
    assert imaged.sync.oci.ca_file == tmp_path / "ca.pem" and imaged.sync.oci.auth == "none"

    web = fanout.spec_for(charted)
    assert (web.name, web.source_type, web.source_format, web.cluster_name) == (
        "web",
        "helm",
        "unstructured",
        "charted",
    )
    assert web.repo == "https://charts.example.com/stable/web"
    assert web.to_spec()["helm"]["auth"] == "token" and web.to_spec()["helm"]["releaseName"] == "front"
    assert web.to_spec()["helm"]["secretRef"] == {"name": "charts-credentials"}
    image = fanout.spec_for(imaged)
    assert (image.repo, image.dir, image.source_type) == ("reg.example.com/configs/prod:v3", "prod", "oci")
    assert fanout.spec_for(git_one).to_spec()["git"]["repo"] == "https://git.example.com/c.git"


def test_a_cluster_inherits_the_default_chart_and_a_repo_switches_it_back_to_git(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        HEAD + "spec:\n  sync:\n    sourceType: helm\n"
        "    helm: {repo: 'oci://reg.example.com/charts', chart: web, auth: token, secretRef: {name: s}}\n"
        "  clusters:\n  - name: a\n  - name: b\n    sync: {repo: https://git.example.com/b.git}\n"
    )
    a, b = registry.load(path).clusters
    assert a.sync.source_type == "helm" and a.sync.helm is not None and a.sync.helm.auth == "token"
    assert b.sync.source_type == "git" and fanout.spec_for(b).helm is None


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ("{sourceType: helm, helm: {repo: 'https://c.example.com'}}", "'chart' is a required property"),
        ("{sourceType: helm}", "sourceType helm needs helm: {repo, chart}"),
        ("{sourceType: oci}", "sourceType oci needs oci: {image}"),
        ("{sourceType: svn}", "'svn' is not one of"),
        (
            "{helm: {repo: 'https://c.example.com', chart: web, valueFiles: [a.yaml]}}",
            "'valueFiles' was unexpected",
        ),
        ("{helm: {repo: 'ftp://c.example.com', chart: web}}", "does not match"),
        ("{helm: {repo: 'https://c.example.com', chart: ../web}}", "does not match"),
        ("{helm: {repo: 'https://c.example.com', chart: web, values: [1]}}", "is not of type 'object'"),
        ("{helm: {repo: 'https://c.example.com', chart: web, auth: password}}", "'password' is not one of"),
        ("{helm: {repo: 'https://c.example.com', chart: web, auth: token}}", "'secretRef' is a required"),
        (
            "{helm: {repo: 'https://c.example.com', chart: web, secretRef: {name: s}}}",
            "should not be valid",
        ),
        ("{oci: {image: r.example.com/a, auth: token}}", "'token' is not one of"),
        (
            "{helm: {repo: 'https://c.example.com', chart: web, valuesFileRefs: [{name: ../x}]}}",
            "does not match",
        ),
        ("{oci: {image: r.example.com/a, password: hunter2}}", "'password' was unexpected"),
        ("{helm: {repo: 'ftp://robot:hunter2@c.example.com', chart: web}}", "'ftp://c.example.com' does not"),
    ],
)
def test_helm_and_oci_mistakes_name_the_fleet_file_and_the_cluster(
    tmp_path: Path, sync: str, message: str
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(HEAD + f"spec:\n  clusters:\n  - name: good\n  - name: edge\n    sync: {sync}\n")
    with pytest.raises(AcmError) as failed:
        registry.load(path)
    assert failed.value.code.id == "ACM4001"
    assert failed.value.path == str(path)
    assert "spec.clusters[1] (cluster" in failed.value.message and "edge" in failed.value.message
    assert message in failed.value.message, failed.value.message
    assert "hunter2" not in failed.value.render()


def test_ignore_fields_are_inherited_or_replaced_per_cluster(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        HEAD + "spec:\n  sync:\n    repo: https://git.example.com/c.git\n    ignoreFields:\n"
        "    - {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}\n"
        "  clusters:\n  - name: one\n    kubeconfig: k.yaml\n"
        "  - name: two\n    kubeconfig: k.yaml\n    sync: {ignoreFields: []}\n"
        "  - name: three\n    kubeconfig: k.yaml\n    sync: {ignoreFields: [{kind: Deployment}]}\n"
    )
    one, two, three = registry.load(path).clusters
    assert fanout.spec_for(one).ignore_fields == (IgnoreRule("apps", "Deployment", ("/spec/replicas",)),)
    assert fanout.spec_for(two).ignore_fields == ()
    assert fanout.spec_for(three).ignore_fields[0].problem  # refused, naming the sync, by its passes
