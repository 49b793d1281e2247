"""The inventory's layout across parts: bounded parts, complete generations, tolerant parsing."""

from __future__ import annotations

import json

from acm_lite import metadata
from acm_lite.apply import inventory_parts as parts
from acm_lite.apply.inventory_parts import Part, PartLimit


def _entries(n: int) -> list[str]:
    return [f"apps/Deployment/team-{i % 40}/app-{i:06d}" for i in range(n)]


def test_split_keeps_every_part_within_the_byte_limit_and_loses_nothing() -> None:
    entries = _entries(60_000)
    limit = PartLimit(entries=10**9, bytes=256 * 1024)
    layout = parts.split(entries, limit)
    assert len(layout) > 1
    assert [e for part in layout for e in part] == sorted(entries)
    assert all(len(json.dumps(part)) <= limit.bytes for part in layout)


def test_split_honours_an_entry_count_limit() -> None:
    layout = parts.split(_entries(120), PartLimit(entries=50))
    assert [len(p) for p in layout] == [50, 50, 20]


def test_an_empty_inventory_is_still_one_part() -> None:
    assert parts.split([], PartLimit()) == [[]]


def test_an_entry_larger_than_the_limit_gets_a_part_of_its_own() -> None:
    layout = parts.split(["x" * 100, "a", "b"], PartLimit(bytes=10))
    assert layout == [["a"], ["b"], ["x" * 100]]


def test_the_body_places_the_part_in_its_generation() -> None:
    layout = [["a/K/n/x"], ["a/K/n/y"]]
    body = parts.body("root-sync", "acm-lite-system", 7, 1, layout)
    part = parts.parse(body)
    assert part == Part("root-sync.g7.1", 7, 1, 2, ("a/K/n/y",))
    assert body["metadata"]["labels"][metadata.INVENTORY_SYNC_LABEL] == "root-sync"
    assert body["spec"]["count"] == 1


def test_a_generation_is_complete_only_with_every_part() -> None:
    whole = [Part(f"s.g1.{i}", 1, i, 3, ()) for i in range(3)]
    partial = [Part("s.g2.0", 2, 0, 3, ()), Part("s.g2.2", 2, 2, 3, ())]
    assert parts.complete_generations(whole + partial) == {1}
    assert parts.complete_generations(partial) == set()
    mixed = [Part("s.g3.0", 3, 0, 2, ()), Part("s.g3.1", 3, 1, 3, ())]  # counts disagree
    assert parts.complete_generations(mixed) == set()


def test_the_next_generation_is_past_every_one_seen() -> None:
    assert parts.next_generation([]) == 1
    seen = [Part("a", 4, 0, 1, ()), Part("b", None, None, None, ()), Part("c", 9, 0, 2, ())]
    assert parts.next_generation(seen) == 10


def test_a_huge_part_count_is_compared_not_enumerated() -> None:
    huge = [Part("s.g1.0", 1, 0, 999_999_999_999_999_999, ())]
    assert parts.complete_generations(huge) == set()


def test_parts_of_any_shape_parse_without_raising() -> None:
    odd: list[dict[str, object]] = [
        {},
        {"metadata": [], "spec": "x"},
        {"metadata": {"labels": "a", "annotations": None}},
        {
            "metadata": {"name": "p", "labels": {metadata.INVENTORY_GENERATION_LABEL: 5}},
            "spec": {"objects": 7},
        },
        {"metadata": {"annotations": {metadata.INVENTORY_PART_ANNOTATION: "9" * 5000}}},
    ]
    parsed = [parts.parse(item) for item in odd]
    assert parsed[3] == Part("p", None, None, None, (7,))
    assert all(p.generation is None and p.index is None for p in parsed)
