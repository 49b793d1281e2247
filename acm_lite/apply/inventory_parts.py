"""How one sync's inventory is laid out across ResourceInventory objects. Pure: no I/O.

etcd refuses a request over 1.5 MiB, so an inventory of tens of thousands of entries cannot be one
object: it is split into parts of bounded size. Each write is a new generation of parts with
names of their own, so a write never overwrites a part another write relies on; a reader takes
the union of every part it finds, which can only over-record (and over-recording is safe: a
prune is still checked against the sync's label on the live object).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from acm_lite import api
from acm_lite.metadata import (
    INVENTORY_GENERATION_LABEL,
    INVENTORY_PART_ANNOTATION,
    INVENTORY_PARTS_ANNOTATION,
    INVENTORY_SYNC_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
)

_ENTRY_OVERHEAD = 4  # the quotes, comma and space around each entry in the JSON array


@dataclass(frozen=True)
class PartLimit:
    """The most one part may hold. 256 KiB keeps each object far below etcd's 1.5 MiB request
    limit whatever its metadata; a count limit lets tests exercise many parts cheaply."""

    entries: int = 20_000
    bytes: int = 256 * 1024


DEFAULT_LIMIT = PartLimit()


@dataclass(frozen=True)
class Part:
    """One ResourceInventory object as read back: which write it belongs to and its entries."""

    name: str
    generation: int | None  # None when the labels are missing or not a number
    index: int | None
    count: int | None
    entries: tuple[object, ...]  # as stored; a reader checks each is a string it can decode


def split(entries: Iterable[str], limit: PartLimit) -> list[list[str]]:
    """Sorted entries cut into consecutive parts within ``limit``; at least one part, so an
    empty inventory is still recorded (and supersedes what was recorded before)."""
    parts: list[list[str]] = [[]]
    size = 2  # the brackets
    for entry in sorted(entries):
        cost = len(entry.encode()) + _ENTRY_OVERHEAD
        current = parts[-1]
        if current and (len(current) >= limit.entries or size + cost > limit.bytes):
            current = []
            parts.append(current)
            size = 2
        current.append(entry)
        size += cost
    return parts


def part_name(sync: str, generation: int, index: int) -> str:
    """A name no other write uses: the generation and the part's place in it."""
    return f"{sync}.g{generation}.{index}"


def body(sync: str, namespace: str, generation: int, index: int, parts: list[list[str]]) -> dict[str, Any]:
    """The ResourceInventory holding ``parts[index]`` of one write."""
    entries = parts[index]
    return {
        "apiVersion": api.API_VERSION,
        "kind": "ResourceInventory",
        "metadata": {
            "name": part_name(sync, generation, index),
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                INVENTORY_SYNC_LABEL: sync,
                INVENTORY_GENERATION_LABEL: str(generation),
            },
            "annotations": {
                INVENTORY_PART_ANNOTATION: str(index),
                INVENTORY_PARTS_ANNOTATION: str(len(parts)),
            },
        },
        "spec": {"count": len(entries), "objects": entries},
    }


def selector(sync: str) -> str:
    """The label selector that finds every part of one sync's inventory in one LIST."""
    return f"{INVENTORY_SYNC_LABEL}={sync}"


def parse(item: dict[str, Any]) -> Part:
    """A listed object as a Part; labels or fields that do not parse are read as unknown, never
    as an error, since a part is only ever added to the union."""
    meta = _mapping(item.get("metadata"))
    labels, notes = _mapping(meta.get("labels")), _mapping(meta.get("annotations"))
    spec = _mapping(item.get("spec"))
    objects = spec.get("objects")
    entries = tuple(objects) if isinstance(objects, list) else () if objects is None else (objects,)
    return Part(
        str(meta.get("name", "")),
        _number(labels.get(INVENTORY_GENERATION_LABEL)),
        _number(notes.get(INVENTORY_PART_ANNOTATION)),
        _number(notes.get(INVENTORY_PARTS_ANNOTATION)),
        entries,
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 40:
        return int(value)
    return None


def complete_generations(parts: Iterable[Part]) -> set[int]:
    """The generations all of whose parts are present: each such write finished, so it holds
    everything that had to be recorded when it was made."""
    found: dict[int, tuple[set[int], set[int]]] = {}
    for part in parts:
        if part.generation is None or part.index is None or part.count is None:
            continue
        indices, counts = found.setdefault(part.generation, (set(), set()))
        indices.add(part.index)
        counts.add(part.count)
    return {
        generation
        for generation, (indices, counts) in found.items()
        if len(counts) == 1 and _covers(indices, next(iter(counts)))
    }


def _covers(indices: set[int], count: int) -> bool:
    """Whether ``indices`` are exactly 0..count-1 (without building that range: the count is
    read from an annotation anyone may have written)."""
    return len(indices) == count and min(indices) == 0 and max(indices) == count - 1


def next_generation(parts: Iterable[Part]) -> int:
    """One past every generation seen, so a new write never reuses a name of an earlier one."""
    return max((p.generation for p in parts if p.generation is not None), default=0) + 1


def entries(parts: Iterable[Part]) -> Iterator[tuple[str, object]]:
    """Every stored entry with the name of the part it came from."""
    for part in parts:
        for entry in part.entries:
            yield part.name, entry
