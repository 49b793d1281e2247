"""The hostile ResourceInventories of tests/hostile/inventory, stored in a real API server: each is
read into the expected union or refused with a coded error, and a write afterwards leaves only its
own parts (see that directory's README.md)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite import api
from acm_lite.apply import inventory
from acm_lite.cluster.client import ApiError, Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.errors import AcmError
from acm_lite.status import store

CASES = Path(__file__).parents[1] / "hostile" / "inventory"
COLLECTION = f"/apis/{api.GROUP}/{api.VERSION}/namespaces/{api.SYSTEM_NAMESPACE}/resourceinventories"


@pytest.fixture(scope="module")
def cluster(control_plane: APIServer) -> Cluster:
    connected = Cluster.connect(control_plane.kubeconfig)
    store.install(connected)
    return connected


def _case(name: str, sync: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CASES / name / "case.yaml").read_text().replace("SYNC", sync))
    return loaded


def _names(cluster: Cluster, sync: str) -> set[str]:
    items = cluster.request("GET", COLLECTION)["items"]
    return {i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith(sync)}


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_hostile_inventory(cluster: Cluster, name: str) -> None:
    sync = f"h-{uuid.uuid4().hex[:8]}"
    case = _case(name, sync)
    for obj in case["objects"]:
        cluster.request(
            "POST", COLLECTION, body={"apiVersion": api.API_VERSION, "kind": "ResourceInventory", **obj}
        )

    if "code" in case:
        with pytest.raises(AcmError) as raised:
            inventory.read(cluster, sync)
        assert raised.value.code.id == case["code"]
        assert all(n in raised.value.message for n in case["names"])
        return
    assert inventory.read(cluster, sync) == set(map(inventory.decode, case["read"]))
    if "write" not in case:
        return

    written = set(map(inventory.decode, case["write"]))
    inventory.write(cluster, sync, written)
    assert inventory.read(cluster, sync) == written
    ours = {n for n in _names(cluster, sync) if n not in case.get("kept", [])}
    assert len(ours) == 1 and ours != {sync}, ours  # one part of the new generation, nothing else
    assert set(case.get("kept", [])) <= _names(cluster, sync)
    with pytest.raises(ApiError):
        cluster.request("GET", f"{COLLECTION}/{sync}")
