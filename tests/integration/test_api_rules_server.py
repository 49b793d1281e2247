"""The offline checks of what the API server rejects, held against a real API server: every
object a rule rejects, the server rejects too (the rule is not stricter than Kubernetes), and
every edge case the rules accept, the server accepts. Server-side apply as acm-lite applies,
as a dry run except for the object-size cases, whose limit only storing reaches."""

from __future__ import annotations

import pytest

from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from tests.support.api_cases import Case, all_cases

RESOURCES = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Pod": "pods",
    "Deployment": "deployments",
    "CronJob": "cronjobs",
    "Job": "jobs",
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "StatefulSet": "statefulsets",
    "PodTemplate": "podtemplates",
}
# What the server's refusal says for each code: the same rule, not some other one.
REASONS = {
    "ACM1040": "labels",
    "ACM1041": "annotations",
    "ACM1042": "quantit",
    "ACM1043": "data[",
    "ACM1044": "base64",
    "ACM1045": "Too long",
    "ACM1046": "too large",
}


def _apply(cluster: Cluster, case: Case, namespace: str) -> None:
    body = case.in_namespace(namespace)
    api_version, kind = body["apiVersion"], body["kind"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{RESOURCES[kind]}/{body['metadata']['name']}"
    query = {"fieldManager": "acm-lite", "force": "true"}
    if not case.stored:
        query["dryRun"] = "All"
    cluster.request("PATCH", path, query=query, body=body, content_type="application/apply-patch+yaml")


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_api_server_agrees(control_plane: APIServer, namespace: str, case: Case) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    if case.code is None:
        _apply(cluster, case, namespace)  # accepted: no error
        return
    with pytest.raises(ApiError) as refused:
        _apply(cluster, case, namespace)
    assert refused.value.status in (400, 413, 422, 500), refused.value
    assert REASONS[case.code] in str(refused.value), refused.value
