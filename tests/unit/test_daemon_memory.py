"""What the daemon keeps per managed object between passes, and how it keeps it: drift repair's
record of each declared object (equal to the change it came from in everything a repair uses),
a listed object cut down to what a pass reads, a stored health part that keeps the table's own
entries, and the allocator `serve` runs on."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from acm_lite import metadata
from acm_lite.cli import allocator
from acm_lite.cluster import live
from acm_lite.objects import Manifest, ObjectId
from acm_lite.plan import ignorefields, ownership, planner
from acm_lite.plan.changeset import Action, Change
from acm_lite.reconcile.remediator import Defended
from acm_lite.status import resources, resourcestore
from acm_lite.validate import schema
from tests.unit.test_healthtrack import SYNC, Server

OPTS = planner.PlanOptions(sync="root", commit="c0ffee")


def configmap(name: str, value: str = "v", source: str = "cm.yaml") -> Manifest:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "team"}}
    return Manifest({**body, "data": {"k": value}}, source)


def live_of(obj: Manifest, sync: str = "root", commit: str = "c0ffee") -> dict[str, Any]:
    return {**ownership.stamp(obj, sync, commit), "status": {}}


@pytest.mark.parametrize(
    "existing",
    [None, "same", "edited", "unowned"],
)
def test_the_record_restores_exactly_what_the_pass_applied(existing: str | None) -> None:
    obj = configmap("a")
    found = {
        None: None,
        "same": live_of(obj),
        "edited": live_of(configmap("a", "other")),
        "unowned": obj.body,
    }[existing]
    [change] = planner.plan([obj], {obj.id: found} if found else {}, set(), OPTS).changes
    kept = Defended.of(change, "root")

    assert kept is not None and change.desired is not None
    assert kept.desired == change.desired
    assert metadata.live_annotation(kept.desired, metadata.COMMIT) == "c0ffee"
    assert kept.manifest is obj  # the declared set's own, not a copy
    assert (kept.id, kept.subject) == (change.id, change.subject)


def test_the_record_strips_the_fields_the_sync_ignores() -> None:
    obj = configmap("a")
    rules = (("data", "k"),)
    change = Change(
        Action.UPDATE,
        obj.id,
        "",
        desired=ignorefields.strip(ownership.stamp(obj, "root", "c1"), rules),
        manifest=obj,
        ignored=rules,
    )
    kept = Defended.of(change, "root")

    assert kept is not None and kept.desired == change.desired
    assert "k" not in kept.desired.get("data", {})


@pytest.mark.parametrize("action", [Action.PRUNE, Action.SKIP, Action.UNMANAGE])
def test_only_created_updated_or_unchanged_objects_are_defended(action: Action) -> None:
    obj = configmap("a")
    change = Change(action, obj.id, "", desired=ownership.stamp(obj, "root", "c1"), manifest=obj)
    assert Defended.of(change, "root") is None
    assert Defended.of(Change(Action.CREATE, obj.id, "", manifest=obj), "root") is None  # no body


def test_records_are_equal_when_they_defend_the_same_declaration_the_same_way() -> None:
    obj = configmap("a")
    same = Defended(obj.id, configmap("a"), "root", "c1")  # an equal body read again
    kept = Defended(obj.id, obj, "root", "c1")

    assert kept == same and hash(kept) == hash(same)
    assert kept != Defended(obj.id, configmap("a", "other"), "root", "c1")  # declared otherwise
    assert kept != Defended(obj.id, configmap("a", source="moved.yaml"), "root", "c1")  # another file
    assert kept != Defended(obj.id, obj, "root", "c2")  # another commit
    assert kept != Defended(obj.id, obj, "other", "c1")  # another sync
    assert kept != Defended(obj.id, obj, "root", "c1", (("data",),))  # other ignore rules
    assert kept != Defended(ObjectId("", "ConfigMap", "team", "b"), obj, "root", "c1")
    assert len({kept, same}) == 1


def test_a_record_has_no_per_instance_dict() -> None:
    obj = configmap("a")
    kept = Defended(obj.id, obj, "root", "c1")
    assert not hasattr(kept, "__dict__")
    entry = resources.Entry(obj.id, "Current")
    assert not hasattr(entry, "__dict__")


def test_a_listed_object_keeps_only_who_applied_it_of_its_managed_fields() -> None:
    item = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "a",
            "uid": "u-1",
            "labels": {"x": "y"},
            "managedFields": [
                {
                    "manager": "acm-lite",
                    "operation": "Apply",
                    "apiVersion": "v1",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {"f:k": {}}},
                },
                {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1", "fieldsV1": {}},
                "not an entry",
            ],
        },
        "data": {"k": "v"},
    }
    assert live.lean(item) is item
    assert item["metadata"] == {
        "name": "a",
        "uid": "u-1",
        "labels": {"x": "y"},
        "managedFields": [{"manager": "acm-lite", "operation": "Apply", "apiVersion": "v1"}],
    }
    assert item["data"] == {"k": "v"}
    odd = {"metadata": {"managedFields": "not a list"}}
    assert live.lean(odd) == {"metadata": {"managedFields": "not a list"}}
    assert live.lean({"metadata": None}) == {"metadata": None}


def test_a_stored_part_equal_to_the_table_keeps_the_tables_entries() -> None:
    server = Server()
    table = [resources.Entry(ObjectId("", "ConfigMap", "team", f"cm-{i}"), "Current") for i in range(3)]
    resourcestore.write(server, SYNC, table, {})
    read_back = resourcestore.read(server, SYNC)
    server.writes.clear()

    stored, problem = resourcestore.write(server, SYNC, table, read_back)

    assert problem is None and server.writes == []  # nothing differed
    [part] = stored.values()
    assert part == read_back["0"]
    assert all(a is b for a, b in zip(part, table, strict=True))  # not the copies read back


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    seen: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: seen.append((path, list(argv), dict(env))))
    monkeypatch.setattr(allocator, "_entry", False)
    monkeypatch.delenv(allocator.ENV, raising=False)
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the system allocator is used on Linux")
def test_serve_started_as_a_command_starts_again_on_the_system_allocator(
    execs: list[tuple[str, list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["acm-lite", "serve", "--repo", "x"])
    allocator.use_system_allocator()
    assert execs == []  # called from Python (a test, an embedding program): left as it is

    allocator.started_as_command()
    allocator.use_system_allocator()
    [(path, argv, env)] = execs
    assert (path, argv) == (sys.executable, [sys.executable, "-m", "acm_lite", "serve", "--repo", "x"])
    assert env[allocator.ENV] == "malloc"

    monkeypatch.setenv(allocator.ENV, "pymalloc")  # the user's choice, or the process started again
    allocator.use_system_allocator()
    assert len(execs) == 1


def test_listed_objects_share_one_string_for_each_mark_of_the_sync() -> None:
    def listed(name: str) -> dict[str, Any]:
        commit = "".join(["c0ffee", "0" * 34])  # a new string each time, as a decoded response's
        return {
            "metadata": {
                "name": name,
                "labels": {metadata.SYNC_LABEL: "".join(["ro", "ot"])},
                "annotations": {metadata.COMMIT: commit, metadata.DECLARED_HASH: "".join(["h", name])},
            }
        }

    a, b = live.lean(listed("a")), live.lean(listed("b"))
    assert a["metadata"]["annotations"][metadata.COMMIT] is b["metadata"]["annotations"][metadata.COMMIT]
    assert a["metadata"]["labels"][metadata.SYNC_LABEL] is b["metadata"]["labels"][metadata.SYNC_LABEL]
    assert a["metadata"]["annotations"][metadata.DECLARED_HASH] == "ha"


def test_released_schemas_are_loaded_again_when_next_needed() -> None:
    first = schema._builtin_validator("", "v1", "Namespace")
    assert first is not None and schema._builtin_validator.cache_info().currsize >= 1

    schema.release()

    assert schema._builtin_validator.cache_info().currsize == 0
    assert schema._registry.cache_info().currsize == 0
    again = schema._builtin_validator("", "v1", "Namespace")
    assert again is not None and again is not first
    assert not list(again.iter_errors({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}))
    assert list(again.iter_errors({"apiVersion": "v1", "kind": "Namespace", "spec": {"unknown": 1}}))
