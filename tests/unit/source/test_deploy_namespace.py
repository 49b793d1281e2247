"""``spec.helm.deployNamespace``: the rendered chart moved into one namespace as Config Sync's
helm-sync moves it (kpt's set-namespace without a matcher), and the spec checks Config Sync
makes of it, of valuesFileRefs and of the auth modes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source.deploynamespace import deploy_to
from acm_lite.source.helm import HelmSpec, ValuesFileRef
from acm_lite.source.oci import OciSpec


def moved(*docs: dict[str, Any], namespace: str = "apps") -> list[dict[str, Any]]:
    out = deploy_to(yaml.safe_dump_all(docs).encode(), namespace, "helm template of chart")
    return list(yaml.safe_load_all(out))


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, **rest: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}


def test_namespaced_objects_go_to_the_deploy_namespace_whatever_they_carried() -> None:
    out = moved(
        obj("v1", "ConfigMap", "none"),
        obj("v1", "ConfigMap", "default", "default"),
        obj("apps/v1", "Deployment", "elsewhere", "kube-system"),
    )
    assert [o["metadata"]["namespace"] for o in out] == ["apps", "apps", "apps"]


def test_cluster_scoped_objects_keep_their_shape_and_namespaces_are_renamed() -> None:
    role = obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", rules=[])
    namespace = obj("v1", "Namespace", "chart-ns")
    out = moved(role, namespace)
    assert out[0] == role
    assert out[1]["metadata"] == {"name": "apps"}


def test_unknown_kinds_are_namespaced_only_when_they_carry_a_namespace() -> None:
    out = moved(obj("example.com/v1", "Widget", "a", "x"), obj("example.com/v1", "Gadget", "b"))
    assert out[0]["metadata"]["namespace"] == "apps"
    assert "namespace" not in out[1]["metadata"]


def test_namespace_fields_of_bindings_webhooks_and_api_services_follow_only_where_present() -> None:
    binding = obj(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "b",
        subjects=[
            {"kind": "ServiceAccount", "name": "sa", "namespace": "old"},
            {"kind": "Group", "name": "devs"},
        ],
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
    )
    webhook = {"webhook": {"clientConfig": {"service": {"name": "conv", "namespace": "old"}}}}
    crd = obj(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "ws.example.com", spec={"conversion": webhook}
    )
    plain_crd = obj(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "gs.example.com", spec={"group": "g"}
    )
    service = obj(
        "apiregistration.k8s.io/v1", "APIService", "v1.example.com", spec={"service": {"namespace": "x"}}
    )
    out = moved(binding, crd, plain_crd, service)
    assert [s.get("namespace") for s in out[0]["subjects"]] == ["apps", None]
    assert out[1]["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["namespace"] == "apps"
    assert out[2]["spec"] == {"group": "g"}
    assert out[3]["spec"]["service"]["namespace"] == "apps"


def test_depends_on_follows_a_moved_object_of_the_chart_only() -> None:
    first = obj("v1", "ConfigMap", "first", "old")
    inside = obj("v1", "ConfigMap", "second", "old")
    inside["metadata"]["annotations"] = {"config.kubernetes.io/depends-on": "/namespaces/old/ConfigMap/first"}
    outside = obj("v1", "ConfigMap", "third", "old")
    outside["metadata"]["annotations"] = {"config.kubernetes.io/depends-on": "/namespaces/old/ConfigMap/gone"}
    out = moved(first, inside, outside)
    annotations = [o["metadata"].get("annotations", {}).get("config.kubernetes.io/depends-on") for o in out]
    assert annotations == [None, "/namespaces/apps/ConfigMap/first", "/namespaces/old/ConfigMap/gone"]


def test_local_config_objects_are_left_alone() -> None:
    local = obj("v1", "ConfigMap", "local", "old")
    local["metadata"]["annotations"] = {"config.kubernetes.io/local-config": "true"}
    assert moved(local)[0]["metadata"]["namespace"] == "old"


def test_aliases_and_unreadable_output_are_coded() -> None:
    with pytest.raises(AcmError) as caught:
        deploy_to(b"a: &x [1]\nb: *x\n", "apps", "helm template of chart")
    assert caught.value.code is errors.RENDER_FAILED and "chart" in caught.value.message
    with pytest.raises(AcmError) as caught:
        deploy_to(b"a: [\n", "apps", "helm template of chart")
    assert caught.value.code is errors.RENDER_FAILED


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            HelmSpec(repo="https://c", chart="c", namespace="a", deploy_namespace="b"),
            "only one of 'spec.helm.namespace' or 'spec.helm.deployNamespace'",
        ),
        (HelmSpec(repo="https://c", chart="c", deploy_namespace="Not_A_Name"), "not a namespace name"),
        (HelmSpec(repo="https://c", chart="c", auth="password"), "spec.helm.auth to be one of"),
        (HelmSpec(repo="https://c", chart="c", auth="token"), "secretRef.name"),
        (HelmSpec(repo="https://c", chart="c", secret_ref="creds"), "must not specify spec.helm.secretRef"),
        (HelmSpec(repo="https://c", chart="c", values_file_refs=(ValuesFileRef(""),)), "valuesFileRefs.name"),
        (
            HelmSpec(repo="https://c", chart="c", values_file_refs=(ValuesFileRef("../secrets/creds"),)),
            "is not an object name",
        ),
        (HelmSpec(repo="https://c", chart="c", auth="token", secret_ref="a/b"), "is not an object name"),
    ],
)
def test_invalid_helm_specs_are_config_syncs_knv1061(spec: HelmSpec, says: str) -> None:
    with pytest.raises(AcmError) as caught:
        spec.check()
    assert caught.value.code is errors.INVALID_SYNC
    assert says in caught.value.message


def test_oci_auth_is_one_of_config_syncs_modes() -> None:
    OciSpec("r.example/a:1", auth="gcenode").check()
    with pytest.raises(AcmError) as caught:
        OciSpec("r.example/a:1", auth="token").check()
    assert caught.value.code is errors.INVALID_SYNC and "spec.oci.auth" in caught.value.message


def test_the_spec_written_back_carries_the_new_fields() -> None:
    spec = HelmSpec(
        repo="https://c",
        chart="c",
        deploy_namespace="apps",
        values_file_refs=(ValuesFileRef("vals"), ValuesFileRef("more", "prod.yaml")),
        auth="token",
        secret_ref="creds",
    ).to_spec()
    assert spec["deployNamespace"] == "apps" and "namespace" not in spec
    assert spec["valuesFileRefs"] == [
        {"name": "vals", "dataKey": "values.yaml"},
        {"name": "more", "dataKey": "prod.yaml"},
    ]
    assert (spec["auth"], spec["secretRef"]) == ("token", {"name": "creds"})
