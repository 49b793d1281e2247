"""A bounded LIST (the referential data's read): page by page until its budget of objects or
bytes is spent, saying whether it stopped early. The API server is a scripted stand-in."""

from __future__ import annotations

from typing import Any

from acm_lite.cluster import live
from acm_lite.cluster.discovery import Resource
from acm_lite.objects import GroupKind

CONFIGMAPS = Resource(GroupKind("", "ConfigMap"), "v1", "configmaps", True)


class Pages:
    """Serves ``count`` ConfigMaps in pages of at most ``limit`` (as the API server does)."""

    def __init__(self, count: int, size: int = 10) -> None:
        self.items = [
            {"metadata": {"name": f"c{i}", "namespace": "a"}, "data": {"k": "x" * size}} for i in range(count)
        ]
        self.queries: list[dict[str, Any]] = []

    def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, **_: Any
    ) -> dict[str, Any]:
        assert method == "GET" and path == "/api/v1/namespaces/a/configmaps"
        query = query or {}
        self.queries.append(query)
        start = int(query.get("continue") or 0)
        end = start + int(query["limit"])
        more = end < len(self.items)
        return {
            "items": [dict(i) for i in self.items[start:end]],
            "metadata": {"continue": str(end) if more else ""},
        }


def test_everything_within_the_budget_is_read_page_by_page() -> None:
    pages = Pages(1200)
    budget = live.Budget(objects=5000, bytes=10**9)
    items, truncated = live.list_bounded(pages, CONFIGMAPS, budget, "a")  # type: ignore[arg-type]
    assert len(items) == 1200 and not truncated and budget.objects == 3800
    assert [q["limit"] for q in pages.queries] == [500, 500, 500]
    assert items[0]["apiVersion"] == "v1" and items[0]["kind"] == "ConfigMap"


def test_the_object_budget_stops_the_read() -> None:
    pages = Pages(1200)
    budget = live.Budget(objects=700, bytes=10**9)
    items, truncated = live.list_bounded(pages, CONFIGMAPS, budget, "a")  # type: ignore[arg-type]
    assert len(items) == 700 and truncated and budget.spent
    assert [q["limit"] for q in pages.queries] == [500, 200]  # never asks for more than it may hold


def test_the_byte_budget_stops_the_read() -> None:
    pages = Pages(100, size=1000)
    budget = live.Budget(objects=10**6, bytes=10_000)
    items, truncated = live.list_bounded(pages, CONFIGMAPS, budget, "a")  # type: ignore[arg-type]
    assert truncated and 9 <= len(items) <= 10 and budget.bytes <= 0


def test_a_budget_spent_exactly_on_the_last_object_is_not_truncated() -> None:
    pages = Pages(3)
    items, truncated = live.list_bounded(pages, CONFIGMAPS, live.Budget(3, 10**9), "a")  # type: ignore[arg-type]
    assert len(items) == 3 and not truncated
