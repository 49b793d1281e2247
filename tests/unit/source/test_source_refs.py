"""What a Helm or OCI source reads from the cluster (ConfigMaps of valuesFileRefs, the Secret of
auth token), against an in-memory stand-in for the API: Config Sync's messages, the order, the
bounds, and the refusal of cloud identities."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from acm_lite import api, errors
from acm_lite.cluster.client import ApiError
from acm_lite.errors import AcmError
from acm_lite.reconcile import sourcerefs
from acm_lite.source.helm import HelmSpec, ValuesFileRef
from acm_lite.source.oci import OciSpec

NS = api.SYSTEM_NAMESPACE


class Objects:
    """GETs answered from a dict of paths; anything else is a 404."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects, self.asked = objects, []  # type: ignore[var-annotated]

    def request(self, method: str, path: str, **_kwargs: Any) -> Any:
        self.asked.append((method, path))
        if path not in self.objects:
            raise ApiError(404, "NotFound", "not found")
        return self.objects[path]

    def request_many(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("not used")


def configmap(name: str, data: dict[str, str], immutable: bool | None = True) -> dict[str, dict[str, Any]]:
    body: dict[str, Any] = {"metadata": {"name": name}, "data": data}
    if immutable is not None:
        body["immutable"] = immutable
    return {f"/api/v1/namespaces/{NS}/configmaps/{name}": body}


def chart(*refs: ValuesFileRef, **kwargs: Any) -> HelmSpec:
    return HelmSpec(repo="https://charts.example", chart="web", values_file_refs=refs, **kwargs)


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("USERNAME", "PASSWORD", "PASSWORD_FILE", "TOKEN", "TOKEN_FILE"):
        monkeypatch.delenv(f"ACM_LITE_HELM_{var}", raising=False)
        monkeypatch.delenv(f"ACM_LITE_OCI_{var}", raising=False)


def test_values_file_refs_are_read_in_order_with_the_default_key() -> None:
    client = Objects(
        {**configmap("base", {"values.yaml": "a: 1\n"}), **configmap("prod", {"p.yaml": "a: 2\n"})}
    )
    inputs = sourcerefs.helm_inputs(chart(ValuesFileRef("base"), ValuesFileRef("prod", "p.yaml")), client)
    assert [text for _, text in inputs.ref_values] == ["a: 1\n", "a: 2\n"]
    assert inputs.ref_values[1][0] == "ConfigMap acm-lite-system/prod key p.yaml"
    assert inputs.credentials is None


@pytest.mark.parametrize(
    ("objects", "says"),
    [
        ({}, 'configmaps "base" not found'),
        (configmap("base", {"values.yaml": "a: 1"}, immutable=None), 'ConfigMap "base" in namespace'),
        (configmap("base", {"other": "a: 1"}), 'does not have data key "values.yaml"'),
        (configmap("base", {"values.yaml": "x" * ((1 << 20) + 1)}), "larger than 1 MiB"),
    ],
)
def test_unusable_configmaps_are_knv1061_naming_them(objects: dict[str, Any], says: str) -> None:
    with pytest.raises(AcmError) as caught:
        sourcerefs.helm_inputs(chart(ValuesFileRef("base")), Objects(objects))
    assert caught.value.code is errors.INVALID_SYNC
    assert says in caught.value.message
    assert "RootSyncs must reference valid ConfigMaps in spec.helm.valuesFileRefs" in caught.value.message


def test_values_file_refs_need_a_cluster() -> None:
    with pytest.raises(AcmError) as caught:
        sourcerefs.helm_inputs(chart(ValuesFileRef("base")), None)
    assert caught.value.code is errors.INVALID_SYNC


def test_a_tenant_sync_has_no_deploy_namespace() -> None:
    with pytest.raises(AcmError) as caught:
        sourcerefs.helm_inputs(chart(deploy_namespace="apps"), Objects({}), tenant="team-a")
    assert caught.value.code is errors.INVALID_SYNC and "RepoSyncs" in caught.value.message


def test_auth_token_reads_the_secret_and_never_shows_it() -> None:
    encoded = {
        k: base64.b64encode(v.encode()).decode() for k, v in (("username", "u"), ("password", "pw-9x"))
    }
    client = Objects({f"/api/v1/namespaces/{NS}/secrets/creds": {"data": encoded}})
    inputs = sourcerefs.helm_inputs(chart(auth="token", secret_ref="creds"), client)
    assert inputs.credentials is not None
    assert (inputs.credentials.username, inputs.credentials.password) == ("u", "pw-9x")
    assert "pw-9x" not in repr(inputs.credentials)
    with pytest.raises(AcmError) as caught:
        sourcerefs.helm_inputs(chart(auth="token", secret_ref="gone"), client)
    assert caught.value.code is errors.INVALID_SYNC and f"Secret {NS}/gone" in caught.value.message
    broken = Objects({f"/api/v1/namespaces/{NS}/secrets/creds": {"data": {"username": encoded["username"]}}})
    with pytest.raises(AcmError) as caught:
        sourcerefs.helm_inputs(chart(auth="token", secret_ref="creds"), broken)
    assert "'password'" in caught.value.message


@pytest.mark.parametrize("mode", ["gcenode", "gcpserviceaccount", "k8sserviceaccount"])
def test_cloud_identities_are_refused_naming_the_mode(mode: str) -> None:
    with pytest.raises(AcmError) as caught:
        sourcerefs.helm_inputs(chart(auth=mode), Objects({}))
    assert caught.value.code is errors.SOURCE_AUTH_UNSUPPORTED and repr(mode) in caught.value.message
    with pytest.raises(AcmError) as caught:
        sourcerefs.oci_credentials(OciSpec("r.example/a:1", auth=mode))
    assert caught.value.code is errors.SOURCE_AUTH_UNSUPPORTED and "spec.oci.auth" in caught.value.message


def test_auth_none_keeps_the_environments_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACM_LITE_HELM_USERNAME", "robot")
    monkeypatch.setenv("ACM_LITE_HELM_PASSWORD", "from-env")
    inputs = sourcerefs.helm_inputs(chart(), None)
    assert inputs.credentials is not None and inputs.credentials.password == "from-env"
