"""The local control plane is a real Kubernetes API server: SSA, CRDs, RBAC, TokenRequest."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from acm_lite.devcluster import binaries, controlplane
from acm_lite.devcluster.controlplane import APIServer


def _configmap(name: str, namespace: str, data: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def test_version_reports_the_release_that_was_built(control_plane: APIServer) -> None:
    context = controlplane.admin_ssl_context(control_plane)
    with urllib.request.urlopen(f"{control_plane.url}/version", context=context) as resp:
        version = json.load(resp)
    assert version["gitVersion"] == binaries.components()["kube-apiserver"].version
    assert version["gitTreeState"] == "clean"


def test_server_side_apply_records_the_field_manager(api_client: client.ApiClient, namespace: str) -> None:
    configmaps = DynamicClient(api_client).resources.get(api_version="v1", kind="ConfigMap")
    applied = configmaps.server_side_apply(
        body=_configmap("settings", namespace, {"color": "blue"}),
        namespace=namespace,
        field_manager="acm-lite",
    )
    managers = {m.manager: m.operation for m in applied.metadata.managedFields}
    assert managers == {"acm-lite": "Apply"}
    assert applied.data.color == "blue"


def test_second_manager_changing_an_owned_field_conflicts(
    api_client: client.ApiClient, namespace: str
) -> None:
    configmaps = DynamicClient(api_client).resources.get(api_version="v1", kind="ConfigMap")
    configmaps.server_side_apply(
        body=_configmap("owned", namespace, {"color": "blue"}), namespace=namespace, field_manager="acm-lite"
    )
    with pytest.raises(ApiException) as conflict:
        configmaps.server_side_apply(
            body=_configmap("owned", namespace, {"color": "red"}),
            namespace=namespace,
            field_manager="someone-else",
        )
    assert conflict.value.status == 409
    assert "acm-lite" in conflict.value.body
    forced = configmaps.server_side_apply(
        body=_configmap("owned", namespace, {"color": "red"}),
        namespace=namespace,
        field_manager="someone-else",
        force_conflicts=True,
    )
    assert forced.data.color == "red"
    assert {m.manager for m in forced.metadata.managedFields} == {"someone-else"}


def _crd(group: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                            },
                        }
                    },
                }
            ],
        },
    }


def test_crd_becomes_established_and_serves_custom_resources(
    api_client: client.ApiClient, namespace: str
) -> None:
    group = f"{namespace}.example.com"
    dyn = DynamicClient(api_client)
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.server_side_apply(body=_crd(group), field_manager="acm-lite")
    deadline = time.monotonic() + 30
    established = False
    while time.monotonic() < deadline and not established:
        conditions = crds.get(name=f"widgets.{group}").status.conditions or []
        established = any(c.type == "Established" and c.status == "True" for c in conditions)
        time.sleep(0.2)
    assert established
    widgets = client.CustomObjectsApi(api_client)
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    deadline = time.monotonic() + 30
    while True:  # discovery of the new group reaches the handler chain a moment after Established
        try:
            widgets.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)
            break
        except ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    got = widgets.get_namespaced_custom_object(group, "v1", namespace, "widgets", "w1")
    assert got["spec"] == {"size": 3}
    with pytest.raises(ApiException) as invalid:
        widgets.create_namespaced_custom_object(
            group, "v1", namespace, "widgets", {**body, "metadata": {"name": "w2"}, "spec": {"size": "large"}}
        )
    assert invalid.value.status == 422


def _token_client(control_plane: APIServer, api_client: client.ApiClient, token: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = control_plane.url
    cfg.ssl_ca_cert = control_plane.file("ca.crt")
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


def test_service_account_token_is_denied_until_a_role_binding_exists(
    control_plane: APIServer, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[control_plane.url + "/"], expiration_seconds=600)
    )
    token = core.create_namespaced_service_account_token("reader", namespace, request).status.token
    as_reader = client.CoreV1Api(_token_client(control_plane, api_client, token))
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="visible"), data={"k": "v"})
    )

    with pytest.raises(ApiException) as denied:
        as_reader.list_namespaced_config_map(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in denied.value.body

    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-configmaps"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="read-configmaps"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
        ),
    )
    deadline = time.monotonic() + 10
    while True:  # the authorizer's informer sees the binding a moment after it is written
        try:
            listed = as_reader.list_namespaced_config_map(namespace)
            break
        except ApiException as e:
            if e.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert [cm.metadata.name for cm in listed.items] == ["visible"]
    with pytest.raises(ApiException) as still_denied:
        as_reader.list_namespaced_secret(namespace)
    assert still_denied.value.status == 403


def test_three_clusters_are_isolated_from_each_other(fleet: dict[str, APIServer]) -> None:
    from kubernetes import config

    clients = {
        name: client.CoreV1Api(config.new_client_from_config(config_file=s.kubeconfig))
        for name, s in fleet.items()
    }
    for name, core in clients.items():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=f"only-{name}")))
    for name, core in clients.items():
        names = {ns.metadata.name for ns in core.list_namespace().items}
        assert f"only-{name}" in names
        assert not any(f"only-{other}" in names for other in fleet if other != name)
