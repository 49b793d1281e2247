"""Declaring a commit from what changed since a baseline: the objects that count as structural, the
paths a walk would read, and each reason a pass must be a full one (the source's diff is given)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import pytest

from acm_lite import declare, errors, health
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId
from acm_lite.parse import files, namespace_selection
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.reconcile import healthstage, incremental
from acm_lite.reconcile.model import SyncOptions, SyncSpec
from acm_lite.source import changes
from acm_lite.source.snapshot import Snapshot
from acm_lite.status import resources
from acm_lite.status.resources import Entry
from tests.unit.repo_builder import cm, ns, obj, write

SPEC = SyncSpec(repo="/r", name="s", source_format="unstructured")
OPTIONS = SyncOptions()


def _manifest(body: dict[str, Any]) -> Manifest:
    return Manifest(body, "f.yaml", 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (cm("a", "n"), False),
        (obj("apps/v1", "Deployment", "d", metadata={"namespace": "n"}), False),
        (ns("n"), True),
        (obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "x.example.com"), True),
        (obj("configmanagement.gke.io/v1", "NamespaceSelector", "s"), True),
        (obj("templates.gatekeeper.sh/v1", "ConstraintTemplate", "t"), True),
        (obj("constraints.gatekeeper.sh/v1beta1", "K8sRequiredLabels", "c"), True),
        (obj("acm-lite.io/v1alpha1", "RepoSync", "r", metadata={"namespace": "n"}), True),
        (cm("a", "n", annotations={"config.kubernetes.io/depends-on": "/namespaces/n/ConfigMap/b"}), True),
        (cm("a", "n", annotations={"configmanagement.gke.io/cluster-selector": "x"}), True),
        (cm("a", "n", annotations={"configsync.gke.io/cluster-name-selector": "x"}), True),
        (cm("a", annotations={"configmanagement.gke.io/namespace-selector": "x"}), True),
    ],
)
def test_structural_objects(body: dict[str, Any], expected: bool) -> None:
    assert declare.structural(_manifest(body)) is expected


def test_read_by_walk_agrees_with_the_walk(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": cm("a"), "d/b.yml": cm("b"), ".hidden/c.yaml": cm("c"), "README.md": "x"})
    write(tmp_path, {".github/w.yaml": cm("w"), "d/e.json": "{}"})
    (tmp_path / "real").mkdir()
    write(tmp_path / "real", {"f.yaml": cm("f")})
    os.symlink(tmp_path / "real", tmp_path / "linked")
    os.symlink(tmp_path / "a.yaml", tmp_path / "l.yaml")
    walked = set(files.walk(tmp_path, 100).files)
    for rel in ("a.yaml", "d/b.yml", "d/e.json", ".hidden/c.yaml", ".github/w.yaml", "README.md"):
        assert files.read_by_walk(tmp_path, rel) is (rel in walked), rel
    assert files.read_by_walk(tmp_path, "gone.yaml") is False
    assert files.read_by_walk(tmp_path, "l.yaml") is None  # only the walk judges a link
    assert files.read_by_walk(tmp_path, "linked/f.yaml") is None
    for hostile in ("../a.yaml", "d/../a.yaml", "", "/etc/passwd", "d//b.yml"):
        assert files.read_by_walk(tmp_path, hostile) is None, hostile


def _snapshot(root: Path, commit: str) -> Snapshot:
    return Snapshot(root=root, repo="/r", revision="main", commit=commit)


def _baseline(root: Path, tree: dict[str, Any]) -> incremental.Baseline:
    write(root, tree)
    loaded = declare.load(root, declare.UNSTRUCTURED)
    declared = declare.declare(
        loaded, ClusterTarget(), declare.Options(source_format=declare.UNSTRUCTURED, schema=OPTIONS.schema)
    )
    assert not declared.problems, declared.problems
    return incremental.baseline(
        declared,
        SPEC,
        OPTIONS,
        _snapshot(root, "1" * 40),
        recorded=frozenset(o.id for o in declared.objects),
        discovery=cast(Discovery, None),
        health=healthstage.Table({}, {}),
    )


@pytest.fixture
def tree() -> dict[str, Any]:
    return {
        "ns.yaml": ns("n"),
        "a.yaml": [cm("a1", "n"), cm("a2", "n")],
        "b.yaml": [cm("b1", "n"), cm("b2")],
        "dep.yaml": cm(
            "d", "n", annotations={"config.kubernetes.io/depends-on": "/namespaces/n/ConfigMap/b1"}
        ),
    }


def _delta(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tree: dict[str, Any],
    change: dict[str, Any],
    options: SyncOptions = OPTIONS,
) -> incremental.Delta | str:
    base = _baseline(tmp_path / "old", tree)
    new = tmp_path / "new"
    write(new, {k: v for k, v in {**tree, **change}.items() if v is not None})
    found = changes.Changes(
        frozenset(k for k, v in change.items() if v is not None),
        frozenset(k for k, v in change.items() if v is None),
    )
    monkeypatch.setattr(incremental.changes, "changed", lambda _old, _new: found)
    return incremental.declare_delta(base, _snapshot(new, "2" * 40), SPEC, options)


def test_an_edit_declares_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: dict[str, Any]
) -> None:
    edited = [cm("a1", "n"), cm("a2", "n", data={"k": "new"}), cm("a3", "n")]
    delta = _delta(tmp_path, monkeypatch, tree, {"a.yaml": edited, "b.yaml": [cm("b1", "n")]})
    assert isinstance(delta, incremental.Delta), delta
    assert sorted(o.name for o in delta.changed.objects) == ["a2", "a3"]
    assert {o.name for o in delta.removed} == {"b2"}  # defaulted into "default" before
    assert delta.unchanged == 2
    assert {o.name for o in delta.objects.values()} == {"n", "a1", "a2", "a3", "b1", "d"}
    assert [o.name for o in delta.by_file["a.yaml"]] == ["a1", "a2", "a3"]


def test_a_move_between_files_is_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: dict[str, Any]
) -> None:
    delta = _delta(tmp_path, monkeypatch, tree, {"a.yaml": [cm("a1", "n")], "c.yaml": [cm("a2", "n")]})
    assert isinstance(delta, incremental.Delta), delta
    assert [(o.name, o.source) for o in delta.changed.objects] == [("a2", "c.yaml")]
    assert not delta.removed


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"c.yaml": cm("a1", "n")}, "is declared in a.yaml too"),
        ({"c.yaml": [cm("x", "n"), cm("x", "n")]}, "problems"),
        ({"c.yaml": "a: [unclosed"}, "changed files have problems"),
        ({"c.yaml": cm("Bad/Name", "n")}, "problems"),
        ({"ns.yaml": None}, "shapes how others are declared"),
        ({"c.yaml": ns("m")}, "shapes how others are declared"),
        ({"dep.yaml": cm("d", "n")}, "shapes how others are declared"),
        ({"b.yaml": [cm("b2")]}, "depended on"),
        (
            {f"many/{i}.yaml": cm(f"m{i}", "n") for i in range(incremental.MAX_CHANGED_FILES + 1)},
            "files changed",
        ),
    ],
)
def test_what_only_a_full_pass_can_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: dict[str, Any], change: dict[str, Any], why: str
) -> None:
    found = _delta(tmp_path, monkeypatch, tree, change)
    assert isinstance(found, str) and why in found, found


def test_pruning_everything_is_left_to_a_full_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = {"a.yaml": cm("a", "default")}
    found = _delta(tmp_path, monkeypatch, tree, {"a.yaml": None, "b.yaml": cm("b", "default")})
    assert isinstance(found, str) and "prune everything" in found
    allowed = SyncOptions(allow_prune_all=True)
    base_options = _delta(tmp_path / "x", monkeypatch, tree, {"a.yaml": None}, allowed)
    assert isinstance(base_options, str) and "options changed" in base_options


def test_unknown_changes_and_another_spec_mean_a_full_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: dict[str, Any]
) -> None:
    base = _baseline(tmp_path, tree)
    monkeypatch.setattr(incremental.changes, "changed", lambda _old, _new: None)
    snapshot = _snapshot(tmp_path, "2" * 40)
    assert "not known" in str(incremental.declare_delta(base, snapshot, SPEC, OPTIONS))
    other = SyncSpec(repo="/r", name="s", source_format="unstructured", cluster_name="c")
    assert "spec or options changed" in str(incremental.declare_delta(base, snapshot, other, OPTIONS))


def test_a_baseline_is_left_by_a_clean_read_that_was_not_rendered() -> None:
    declared = declare.Declared(None, objects=[_manifest(cm("a", "n"))])
    assert incremental.usable(declared, SPEC, rendered=False) is None
    hierarchical = SyncSpec(repo="/r", source_format="hierarchy")
    assert incremental.usable(declared, hierarchical, rendered=False) is None
    assert "kustomize" in str(incremental.usable(declared, SPEC, rendered=True))
    warned = declare.Declared(None, objects=declared.objects, problems=[Problem(errors.OBJECT_PARSE, "w")])
    assert "had problems" in str(incremental.usable(warned, SPEC, rendered=False))
    selected = declare.Declared(None, objects=declared.objects, live_namespaces=namespace_selection.live([]))
    assert "dynamic NamespaceSelectors" in str(incremental.usable(selected, SPEC, rendered=False))


def _entry(name: str, status: health.Status = health.Status.CURRENT) -> Entry:
    return Entry.of(ObjectId("", "ConfigMap", "n", name), health.Health(status, "", ""), "c1")


def test_only_the_parts_holding_changed_objects_are_rewritten() -> None:
    entries = [_entry(f"o{i}") for i in range(3 * resources.PER_PART)]
    count = resources.part_count(len(entries))
    stored = resources.split(entries, count)
    changed = _entry("o7", health.Status.FAILED)
    table = {e.id: e for e in entries} | {changed.id: changed}
    before = healthstage.Table({e.id: e for e in entries}, stored)
    parts = healthstage._parts(table, before, {changed.id})
    index = str(resources.part_of(changed.id, count))
    assert parts is not None and list(parts) == [index]
    assert parts[index] == resources.split(table.values(), count)[index]
    # a dirty part (the health tracker's, not stored yet) is rewritten too, with the same members
    dirty = healthstage.Table(before.entries, stored, frozenset({(int(index) + 1) % count}))
    assert parts is not None and set(healthstage._parts(table, dirty, {changed.id}) or {}) == {
        index,
        str((int(index) + 1) % count),
    }
    # a new object in a part: its members grow; a removed one: they shrink
    added = _entry("new")
    grown = {**table, added.id: added}
    where = str(resources.part_of(added.id, count))
    assert (healthstage._parts(grown, before, {added.id}) or {})[where] == resources.split(
        grown.values(), count
    )[where]
    gone = {k: v for k, v in table.items() if k != entries[0].id}
    where = str(resources.part_of(entries[0].id, count))
    assert (healthstage._parts(gone, before, {entries[0].id}) or {})[where] == resources.split(
        gone.values(), count
    )[where]
    # the part count changes, or a part was never stored: every part is compared
    assert healthstage._parts(table, healthstage.Table(before.entries, {}), {changed.id}) is None
    many = {_entry(f"m{i}").id: _entry(f"m{i}") for i in range(count * resources.PER_PART + 1)}
    assert healthstage._parts(many, before, {changed.id}) is None
