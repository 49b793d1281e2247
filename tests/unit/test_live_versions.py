"""Live state is read at each object's declared version: one LIST per kind and version, each
object's body taken from the LIST at its own version. Pure: a fake API server."""

from __future__ import annotations

from typing import Any, cast

from acm_lite.cluster import live
from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.objects import ObjectId

GROUPS = [
    {
        "metadata": {"name": "acme.io"},
        "versions": [
            {
                "version": v,
                "resources": [
                    {"resource": "widgets", "responseKind": {"kind": "Widget"}, "scope": "Namespaced"}
                ],
            }
            for v in ("v2", "v1")
        ],
    }
]


class ApiServer:
    """Two labelled widgets, w1 and w2, served at v2 (preferred) and v1; records each LIST."""

    def __init__(self) -> None:
        self.lists: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        if path in ("/api", "/apis"):
            return {"kind": "APIGroupDiscoveryList", "items": GROUPS if path == "/apis" else []}
        self.lists.append(path)
        version = path.split("/")[3]
        return {
            "items": [
                {
                    "apiVersion": f"acme.io/{version}",
                    "kind": "Widget",
                    "metadata": {"name": n, "namespace": "a"},
                }
                for n in ("w1", "w2")
            ]
        }


def _read(versions: dict[ObjectId, str]) -> tuple[dict[str, str], list[str]]:
    server = ApiServer()
    cluster = cast(Cluster, server)
    w1, w2 = (ObjectId("acme.io", "Widget", "a", n) for n in ("w1", "w2"))
    found = live.snapshot(cluster, Discovery(cluster), [w1, w2], "acm-lite.io/sync=s", versions=versions)
    return {oid.name: body["apiVersion"] for oid, body in found.items()}, sorted(server.lists)


def test_each_object_is_read_at_its_declared_version() -> None:
    w1, w2 = (ObjectId("acme.io", "Widget", "a", n) for n in ("w1", "w2"))
    read, lists = _read({w1: "v1", w2: "v2"})
    assert read == {"w1": "acme.io/v1", "w2": "acme.io/v2"}
    assert lists == ["/apis/acme.io/v1/widgets", "/apis/acme.io/v2/widgets"]


def test_one_list_per_kind_when_every_object_shares_a_version() -> None:
    w1, w2 = (ObjectId("acme.io", "Widget", "a", n) for n in ("w1", "w2"))
    read, lists = _read({w1: "v1", w2: "v1"})
    assert read == {"w1": "acme.io/v1", "w2": "acme.io/v1"}
    assert lists == ["/apis/acme.io/v1/widgets"]


def test_unserved_or_unknown_versions_are_read_at_the_preferred_one() -> None:
    w1 = ObjectId("acme.io", "Widget", "a", "w1")
    read, lists = _read({w1: "v9"})  # w2: only recorded, no declared version
    assert read == {"w1": "acme.io/v2", "w2": "acme.io/v2"}
    assert lists == ["/apis/acme.io/v2/widgets"]
