"""Incremental passes against a real API server: on sequences of random commits, each commit synced
from the last pass's baseline makes exactly the changes a full pass of the same commit plans,
and reports the same problems; afterwards a full plan finds nothing left to do."""

from __future__ import annotations

import copy
import dataclasses
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.plan.changeset import Action
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.unit.repo_builder import cm, ns

WRITES = (Action.CREATE, Action.UPDATE, Action.PRUNE, Action.UNMANAGE)


def _writes(result: pipeline.SyncResult) -> set[tuple[str, str]]:
    changes = result.changeset.changes if result.changeset else []
    return {(c.action.value, str(c.id)) for c in changes if c.action in WRITES}


def _codes(result: pipeline.SyncResult) -> list[str]:
    return sorted(p.code.id for p in result.problems)


class RandomRepo:
    """A repository of ConfigMaps (and a few other kinds) in two Namespaces, changed at random."""

    def __init__(self, rng: random.Random, suffix: str):
        self.rng, self.suffix = rng, suffix
        self.namespaces = [f"inc-a-{suffix}", f"inc-b-{suffix}"]
        self.files: dict[str, list[dict[str, Any]]] = {"namespaces.yaml": [ns(n) for n in self.namespaces]}
        self.counter = 0
        self.broken: dict[str, list[dict[str, Any]]] | None = None  # files before a breaking commit
        for i in range(6):
            self.files[f"apps/f{i}.yaml"] = [self._object() for _ in range(rng.randint(1, 4))]

    def _name(self) -> str:
        self.counter += 1
        return f"o{self.counter}"

    def _object(self) -> dict[str, Any]:
        namespace = self.rng.choice(self.namespaces)
        kind = self.rng.random()
        if kind < 0.1:
            return {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": self._name(), "namespace": namespace},
                "stringData": {"password": str(self.rng.random())},
            }
        if kind < 0.2:
            return {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": self._name(), "namespace": namespace},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
            }
        return cm(self._name(), namespace, data={"v": str(self.rng.randint(0, 9))})

    def _app_files(self) -> list[str]:
        return sorted(f for f in self.files if f.startswith("apps/"))

    def _some_object(self) -> tuple[str, int] | None:
        spots = [(f, i) for f in self._app_files() for i in range(len(self.files[f]))]
        return self.rng.choice(spots) if spots else None

    def change(self) -> str:
        """One random commit's worth of change to ``files``; what it did."""
        if self.broken is not None:  # the commit after a breaking one puts things right
            self.files, self.broken = self.broken, None
            return "fix"
        ops = [
            "edit",
            "edit",
            "add",
            "remove",
            "new-file",
            "delete-file",
            "move",
            "rename",
            "namespace",
            "default-namespace",
            "disable",
            "label",
            "invalid",
            "duplicate",
            "new-namespace",
            "not-a-manifest",
            "two-files",
        ]
        op = self.rng.choice(ops)
        spot = self._some_object()
        if op in ("invalid", "duplicate"):
            self.broken = copy.deepcopy(self.files)
        if op == "edit" and spot:
            obj = self.files[spot[0]][spot[1]]
            if obj["kind"] == "ConfigMap":
                obj["data"] = {"v": str(self.rng.randint(10, 99))}
            else:
                obj.setdefault("metadata", {}).setdefault("labels", {})["edited"] = str(self.counter)
        elif op == "add" and spot:
            self.files[spot[0]].append(self._object())
        elif op == "remove" and spot and len(self.files[spot[0]]) > 1:
            del self.files[spot[0]][spot[1]]
        elif op == "new-file":
            self.files[f"apps/n{self._name()}.yaml"] = [self._object() for _ in range(self.rng.randint(1, 3))]
        elif op == "delete-file" and len(self._app_files()) > 2:
            del self.files[self.rng.choice(self._app_files())]
        elif op == "move" and spot:
            obj = self.files[spot[0]].pop(spot[1])
            self.files[self.rng.choice(self._app_files())].append(obj)
        elif op == "rename" and spot:
            self.files[spot[0]][spot[1]]["metadata"]["name"] = self._name()
        elif op == "namespace" and spot:
            self.files[spot[0]][spot[1]]["metadata"]["namespace"] = self.rng.choice(self.namespaces)
        elif op == "default-namespace" and spot:
            self.files[spot[0]][spot[1]]["metadata"].pop("namespace", None)  # into "default"
        elif op == "disable" and spot:
            meta = self.files[spot[0]][spot[1]]["metadata"]
            meta.setdefault("annotations", {})["configmanagement.gke.io/managed"] = "disabled"
        elif op == "label" and spot:
            meta = self.files[spot[0]][spot[1]]["metadata"]
            meta.setdefault("labels", {})["team"] = self.rng.choice(["x", "y"])
        elif op == "invalid" and spot:
            self.files[spot[0]][spot[1]]["metadata"]["name"] = "Not_A_Valid_Name"
        elif op == "duplicate" and spot:
            twin = copy.deepcopy(self.files[spot[0]][spot[1]])
            self.files.setdefault("apps/twin.yaml", []).append(twin)
        elif op == "new-namespace":
            name = f"inc-{self._name()}-{self.suffix}"
            self.namespaces.append(name)
            self.files[f"ns-{name}.yaml"] = [ns(name)]
        elif op == "not-a-manifest":
            self.files[f"docs/notes-{self._name()}.md"] = "not read"  # type: ignore[assignment]
        elif op == "two-files" and spot:
            self.files[spot[0]].append(self._object())
            self.files[f"apps/n{self._name()}.yaml"] = [self._object()]
        return op

    def tree(self, before: set[str]) -> dict[str, Any]:
        """The files to write: every current file, and None for those gone since ``before``."""
        out: dict[str, Any] = {f: None for f in before if f not in self.files}
        out.update({f: c if isinstance(c, str) else copy.deepcopy(c) for f, c in self.files.items()})
        return out


@pytest.mark.parametrize("seed", [7, 2026])
def test_incremental_passes_make_the_changes_full_passes_plan(
    control_plane: APIServer, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    suffix = uuid.uuid4().hex[:6]
    repo = GitRepo(tmp_path / "git")
    model = RandomRepo(rng, suffix)
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=f"inc-{suffix}", revision="main", source_format="unstructured")
    options = SyncOptions(git_cache=tmp_path / "cache")
    plan_only = dataclasses.replace(options, plan_only=True)
    written: set[str] = set()
    repo.commit(model.tree(written), "start")
    written = set(model.files)
    first = pipeline.run(spec, cluster, options)
    assert first.ok, first.problems
    assert first.baseline is not None
    base = first.baseline
    steps: list[tuple[str, bool, str]] = []  # (what the commit did, incremental, why not)
    try:
        for step in range(30):
            op = model.change()
            repo.commit(model.tree(written), f"{step}: {op}")
            written = set(model.files)
            snapshot = pipeline.fetch_source(spec, options, lambda _m: None)
            full = pipeline.run(spec, cluster, plan_only, snapshot=snapshot)
            result = pipeline.run(spec, cluster, options, snapshot=snapshot, baseline=base)
            where = f"seed {seed}, commit {step} ({op}), incremental={result.incremental}"
            assert _writes(result) == _writes(full), where
            assert _codes(result) == _codes(full), where
            steps.append((op, result.incremental, result.full_because))
            if result.ok:
                after = pipeline.run(spec, cluster, plan_only, snapshot=snapshot)
                assert _writes(after) == set(), f"{where}: a full plan after it still finds {_writes(after)}"
                assert result.baseline is not None, where
            else:
                assert result.baseline is None, where
            base = result.baseline
    finally:
        teardown = dataclasses.replace(options, allow_prune_all=True)
        repo.commit(dict.fromkeys(written), "empty")
        pipeline.run(spec, cluster, teardown)
    # the shortcut is taken for most commits, never for one it cannot judge alone
    assert sum(1 for _, inc, _ in steps if inc) >= 12, steps
    assert not [s for s in steps if s[1] and s[0] in ("invalid", "duplicate", "new-namespace")], steps
    assert all(why for op, inc, why in steps if not inc and op != "fix"), steps
