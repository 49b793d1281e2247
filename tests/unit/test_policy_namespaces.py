"""The live Namespaces the policy stage reads for constraints' namespaceSelectors: only when a
constraint selects namespaces, only those declared objects sit in without declaring them, a GET
each for a few and one LIST for many; one the daemon may not read or that is gone is left out."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite.cluster.client import ApiError
from acm_lite.errors import AcmError
from acm_lite.objects import Manifest
from acm_lite.reconcile import policydata
from tests.unit.repo_builder import cm, ns


class Namespaces:
    """A client answering GET of Namespaces from a table; ``status`` per name raises instead."""

    def __init__(self, names: list[str], status: dict[str, int] | None = None, list_status: int = 0) -> None:
        self.names, self.status, self.list_status = names, status or {}, list_status
        self.calls: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> Any:
        assert method == "GET"
        self.calls.append(path)
        if path == "/api/v1/namespaces":
            if self.list_status:
                raise ApiError(self.list_status, "Forbidden", "refused")
            return {"items": [self._body(n) for n in self.names]}
        name = path.rsplit("/", 1)[1]
        if name in self.status:
            raise ApiError(self.status[name], "Refused", "refused")
        if name not in self.names:
            raise ApiError(404, "NotFound", "not found")
        return self._body(name)

    @staticmethod
    def _body(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"env": name}}}


def manifests(*bodies: dict[str, Any]) -> list[Manifest]:
    return [Manifest(body, f"{i}.yaml") for i, body in enumerate(bodies)]


def constraint(selector: dict[str, Any] | None) -> Manifest:
    match: dict[str, Any] = {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]}
    if selector is not None:
        match["namespaceSelector"] = selector
    body = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "NoConfigMaps",
        "metadata": {"name": "c"},
        "spec": {"match": match},
    }
    return Manifest(body, "policy/c.yaml")


SELECTS = [constraint({"matchLabels": {"env": "prod"}})]


def test_nothing_is_read_without_a_namespace_selector() -> None:
    client = Namespaces(["prod"])
    objs = manifests(cm("a", "prod"))
    assert policydata.live_namespaces(client, objs, [constraint(None)]) == {}
    assert client.calls == []


def test_only_undeclared_namespaces_of_declared_objects_are_read_one_by_one() -> None:
    client = Namespaces(["prod", "dev", "other"])
    objs = manifests(cm("a", "prod"), cm("b", "dev"), ns("dev"), cm("c", "gone"))
    found = policydata.live_namespaces(client, objs, SELECTS)
    assert sorted(found) == ["prod"] and found["prod"]["metadata"]["labels"] == {"env": "prod"}
    assert client.calls == ["/api/v1/namespaces/gone", "/api/v1/namespaces/prod"]


def test_a_forbidden_namespace_is_left_out_and_other_errors_are_coded() -> None:
    client = Namespaces(["prod", "secret"], status={"secret": 403})
    found = policydata.live_namespaces(client, manifests(cm("a", "prod"), cm("b", "secret")), SELECTS)
    assert sorted(found) == ["prod"]
    broken = Namespaces(["prod"], status={"prod": 500})
    with pytest.raises(AcmError) as raised:
        policydata.live_namespaces(broken, manifests(cm("a", "prod")), SELECTS)
    assert raised.value.code.id == "KNV2002" and "namespaceSelector" in (raised.value.subject or "")


def test_many_namespaces_are_one_list() -> None:
    names = [f"ns-{i:02}" for i in range(20)]
    client = Namespaces([*names, "unrelated"])
    found = policydata.live_namespaces(client, manifests(*(cm("a", n) for n in names)), SELECTS)
    assert sorted(found) == names
    assert client.calls == ["/api/v1/namespaces"]
    refused = Namespaces(names, list_status=403)
    assert policydata.live_namespaces(refused, manifests(*(cm("a", n) for n in names)), SELECTS) == {}
