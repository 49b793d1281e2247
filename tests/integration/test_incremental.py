"""Incremental passes against a real API server: on sequences of random commits, each commit synced
from the last pass's baseline makes exactly the changes a full pass of the same commit plans,
and reports the same problems; afterwards a full plan finds nothing left to do."""

from __future__ import annotations

import copy
import dataclasses
import posixpath
import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.plan.changeset import Action
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.daemon import Daemon, DaemonOptions
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.gitrepo import GitRepo
from tests.support.kube import eventually, get
from tests.unit.repo_builder import cm, ns, write

WRITES = (Action.CREATE, Action.UPDATE, Action.PRUNE, Action.UNMANAGE)


def _writes(result: pipeline.SyncResult) -> set[tuple[str, str]]:
    changes = result.changeset.changes if result.changeset else []
    return {(c.action.value, str(c.id)) for c in changes if c.action in WRITES}


def _codes(result: pipeline.SyncResult) -> list[str]:
    return sorted(p.code.id for p in result.problems)


class RandomRepo:
    """A repository of ConfigMaps (and a few other kinds) in two Namespaces, changed at random:
    unstructured (objects under apps/), or hierarchical (objects in the namespace directories
    below namespaces/teams/, a Role there that every namespace inherits, a ClusterRole in
    cluster/)."""

    def __init__(self, rng: random.Random, suffix: str, *, hierarchical: bool = False):
        self.rng, self.suffix, self.hierarchical = rng, suffix, hierarchical
        self.namespaces = [f"inc-a-{suffix}", f"inc-b-{suffix}"]
        self.files: dict[str, list[dict[str, Any]]] = {}
        if hierarchical:
            self.files["system/repo.yaml"] = [
                {
                    "apiVersion": "configmanagement.gke.io/v1",
                    "kind": "Repo",
                    "metadata": {"name": "repo"},
                    "spec": {"version": "1.0.0"},
                }
            ]
            self.files["namespaces/teams/shared.yaml"] = [self._role("shared")]
            self.files["cluster/roles.yaml"] = [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": f"inc-{suffix}"},
                    "rules": [],
                }
            ]
            for n in self.namespaces:
                self.files[f"namespaces/teams/{n}/namespace.yaml"] = [ns(n)]
        else:
            self.files["namespaces.yaml"] = [ns(n) for n in self.namespaces]
        self.counter = 0
        self.broken: dict[str, list[dict[str, Any]]] | None = None  # files before a breaking commit
        for i in range(6):
            self.files[self._new_path(f"f{i}")] = [self._object() for _ in range(rng.randint(1, 4))]

    def _new_path(self, stem: str) -> str:
        if self.hierarchical:
            return f"namespaces/teams/{self.rng.choice(self.namespaces)}/{stem}.yaml"
        return f"apps/{stem}.yaml"

    def _role(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        meta = {"name": name, **({"namespace": namespace} if namespace else {})}
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        }

    def _name(self) -> str:
        self.counter += 1
        return f"o{self.counter}"

    def _object(self) -> dict[str, Any]:
        namespace = None if self.hierarchical else self.rng.choice(self.namespaces)  # the directory's
        kind = self.rng.random()
        if kind < 0.1:
            return {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": self._name(), **({"namespace": namespace} if namespace else {})},
                "stringData": {"password": str(self.rng.random())},
            }
        if kind < 0.2:
            return self._role(self._name(), namespace)
        return cm(self._name(), namespace, data={"v": str(self.rng.randint(0, 9))})

    def _app_files(self) -> list[str]:
        if self.hierarchical:
            return sorted(
                f
                for f in self.files
                if f.startswith("namespaces/teams/")
                and f.count("/") == 3
                and not f.endswith("/namespace.yaml")
            )
        return sorted(f for f in self.files if f.startswith("apps/"))

    def _some_object(self) -> tuple[str, int] | None:
        spots = [(f, i) for f in self._app_files() for i in range(len(self.files[f]))]
        return self.rng.choice(spots) if spots else None

    def change(self) -> str:
        """One random commit's worth of change to ``files``; what it did."""
        if self.broken is not None:  # the commit after a breaking one puts things right
            self.files, self.broken = self.broken, None
            return "fix"
        op = self.rng.choice([*self._OPS, "edit"])
        spot = self._some_object()
        if op in ("invalid", "duplicate"):
            self.broken = copy.deepcopy(self.files)
        if spot is not None or op in self._WHOLE:
            getattr(self, "_" + op.replace("-", "_"))(spot)
        return op

    _OPS = (
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
        "inherited",
        "cluster-scoped",
    )
    # need no object
    _WHOLE = ("new-file", "delete-file", "new-namespace", "not-a-manifest", "inherited", "cluster-scoped")

    def _meta(self, spot: tuple[str, int]) -> dict[str, Any]:
        meta: dict[str, Any] = self.files[spot[0]][spot[1]]["metadata"]
        return meta

    def _edit(self, spot: tuple[str, int]) -> None:
        obj = self.files[spot[0]][spot[1]]
        if obj["kind"] == "ConfigMap":
            obj["data"] = {"v": str(self.rng.randint(10, 99))}
        else:
            self._meta(spot).setdefault("labels", {})["edited"] = str(self.counter)

    def _add(self, spot: tuple[str, int]) -> None:
        self.files[spot[0]].append(self._object())

    def _remove(self, spot: tuple[str, int]) -> None:
        if len(self.files[spot[0]]) > 1:
            del self.files[spot[0]][spot[1]]

    def _new_file(self, _spot: object) -> None:
        self.files[self._new_path(f"n{self._name()}")] = [
            self._object() for _ in range(self.rng.randint(1, 3))
        ]

    def _delete_file(self, _spot: object) -> None:
        if len(self._app_files()) > 2:
            del self.files[self.rng.choice(self._app_files())]

    def _move(self, spot: tuple[str, int]) -> None:
        obj = self.files[spot[0]].pop(spot[1])
        self.files[self.rng.choice(self._app_files())].append(obj)

    def _rename(self, spot: tuple[str, int]) -> None:
        self._meta(spot)["name"] = self._name()

    def _namespace(self, spot: tuple[str, int]) -> None:
        self._meta(spot)["namespace"] = self.rng.choice(self.namespaces)

    def _default_namespace(self, spot: tuple[str, int]) -> None:
        self._meta(spot).pop("namespace", None)  # into "default"

    def _disable(self, spot: tuple[str, int]) -> None:
        self._meta(spot).setdefault("annotations", {})["configmanagement.gke.io/managed"] = "disabled"

    def _label(self, spot: tuple[str, int]) -> None:
        self._meta(spot).setdefault("labels", {})["team"] = self.rng.choice(["x", "y"])

    def _invalid(self, spot: tuple[str, int]) -> None:
        self._meta(spot)["name"] = "Not/A_Valid_Name"  # no kind allows a slash

    def _duplicate(self, spot: tuple[str, int]) -> None:
        twin = f"{posixpath.dirname(spot[0])}/twin.yaml"
        self.files.setdefault(twin, []).append(copy.deepcopy(self.files[spot[0]][spot[1]]))

    def _new_namespace(self, _spot: object) -> None:
        name = f"inc-{self._name()}-{self.suffix}"
        self.namespaces.append(name)
        where = f"namespaces/teams/{name}/namespace.yaml" if self.hierarchical else f"ns-{name}.yaml"
        self.files[where] = [ns(name)]

    def _inherited(self, _spot: object) -> None:
        if self.hierarchical:  # every namespace inherits it: a full pass
            shared = self.files["namespaces/teams/shared.yaml"][0]
            shared["metadata"].setdefault("labels", {})["rev"] = self._name()

    def _cluster_scoped(self, _spot: object) -> None:
        if self.hierarchical:
            self.files["cluster/roles.yaml"][0]["rules"] = [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": [self._name()]}
            ]

    def _not_a_manifest(self, _spot: object) -> None:
        self.files[f"docs/notes-{self._name()}.md"] = "not read"  # type: ignore[assignment]

    def _two_files(self, spot: tuple[str, int]) -> None:
        self.files[spot[0]].append(self._object())
        self.files[self._new_path(f"n{self._name()}")] = [self._object()]

    def tree(self, before: set[str]) -> dict[str, Any]:
        """The files to write: every current file, and None for those gone since ``before``."""
        out: dict[str, Any] = {f: None for f in before if f not in self.files}
        out.update({f: c if isinstance(c, str) else copy.deepcopy(c) for f, c in self.files.items()})
        return out


@pytest.mark.parametrize(
    ("seed", "source_format"), [(7, "unstructured"), (2026, "unstructured"), (11, "hierarchy")]
)
def test_incremental_passes_make_the_changes_full_passes_plan(
    control_plane: APIServer, tmp_path: Path, seed: int, source_format: str
) -> None:
    rng = random.Random(seed)
    suffix = uuid.uuid4().hex[:6]
    repo = GitRepo(tmp_path / "git")
    model = RandomRepo(rng, suffix, hierarchical=source_format == "hierarchy")
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=f"inc-{suffix}", revision="main", source_format=source_format)
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
            where = f"{source_format} seed {seed}, commit {step} ({op}), incremental={result.incremental}"
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
    assert sum(1 for _, inc, _ in steps if inc) >= 8, steps
    full = ("invalid", "duplicate", "new-namespace", *(("inherited",) if model.hierarchical else ()))
    assert not [s for s in steps if s[1] and s[0] in full], steps
    assert all(why for op, inc, why in steps if not inc and op != "fix"), steps


def _passes(daemon: Daemon, name: str, mode: str) -> float:
    return (
        daemon.metrics.registry.get_sample_value("acm_lite_passes_total", {"sync": name, "mode": mode}) or 0
    )


@pytest.mark.parametrize("incremental", [True, False])
def test_the_daemon_syncs_new_commits_incrementally_and_defends_what_they_declare(
    control_plane: APIServer, tmp_path: Path, incremental: bool
) -> None:
    suffix = uuid.uuid4().hex[:6]
    name = namespace = f"incd-{suffix}"
    repo = GitRepo(tmp_path / "git")
    files: dict[str, Any] = {"ns.yaml": ns(namespace)}
    files.update({f"f{i}.yaml": [cm(f"c{i}-{j}", namespace) for j in range(5)] for i in range(3)})
    repo.commit(files)
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=name, revision="main", source_format="unstructured")
    daemon = Daemon(
        [(spec, lambda: cluster)],
        SyncOptions(git_cache=tmp_path / "cache"),
        DaemonOptions(period=0.3, incremental=incremental),
        None,
    )
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    worker = daemon.workers[0]
    daemon.start()
    try:
        eventually(lambda: worker.remediator is not None and worker.remediator.synced, 20)
        synced = daemon.metrics.registry.get_sample_value("acm_lite_watches_synced", {"sync": name})
        assert synced == 1
        full = _passes(daemon, name, "full")  # one, or more if a pass failed on the way
        assert full >= 1

        edited = [cm(f"c1-{j}", namespace) for j in range(5)]
        edited[2]["data"] = {"k": "edited in git"}
        edited.append(cm("added", namespace))
        second = repo.commit({"f1.yaml": edited, "f2.yaml": None})
        eventually(lambda: worker.synced_commit == second, 20)
        assert (get(cluster, f"{path}/c1-2") or {}).get("data") == {"k": "edited in git"}
        assert get(cluster, f"{path}/added") is not None
        eventually(lambda: get(cluster, f"{path}/c2-0") is None)  # its file was deleted: pruned
        expected = (full, 1) if incremental else (full + 1, 0)
        assert (_passes(daemon, name, "full"), _passes(daemon, name, "incremental")) == expected

        # what the incremental pass declared is defended, and so is what it left as it was
        cluster.request("DELETE", f"{path}/added")
        eventually(lambda: get(cluster, f"{path}/added") is not None, 10)
        cluster.request(
            "PATCH",
            f"{path}/c0-0",
            body={"data": {"k": "drift"}},
            content_type="application/merge-patch+json",
        )
        eventually(lambda: (get(cluster, f"{path}/c0-0") or {}).get("data") == {"k": "v"}, 10)
        cluster.request(
            "PATCH",
            f"{path}/c1-2",
            body={"data": {"k": "drift"}},
            content_type="application/merge-patch+json",
        )
        eventually(lambda: (get(cluster, f"{path}/c1-2") or {}).get("data") == {"k": "edited in git"}, 10)
        # a pruned object is no longer defended
        assert get(cluster, f"{path}/c2-0") is None

        # a commit adding a Namespace shapes how others are declared: a full pass
        third = repo.commit({"ns2.yaml": ns(f"{namespace}-2")})
        eventually(lambda: worker.synced_commit == third, 20)
        assert _passes(daemon, name, "full") == expected[0] + 1
    finally:
        daemon.stop()
        repo.commit({f: None for f in [*files, "ns2.yaml"]})
        pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache", allow_prune_all=True))


def test_a_plain_directory_is_synced_incrementally_from_the_files_that_changed(
    control_plane: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    name = namespace = f"incl-{suffix}"
    root = tmp_path / "config"
    write(
        root,
        {
            "ns.yaml": ns(namespace),
            "a.yaml": [cm("a", namespace), cm("b", namespace)],
            "c.yaml": cm("c", namespace),
        },
    )
    time.sleep(1.1)  # past the window in which a file's stat record cannot tell a later write
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=str(root), name=name, source_format="unstructured")
    options = SyncOptions(git_cache=tmp_path / "cache")
    daemon = Daemon([(spec, lambda: cluster)], options, DaemonOptions(period=0.3), None)
    worker = daemon.workers[0]
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    daemon.start()
    try:
        eventually(lambda: worker.baseline is not None and worker.baseline.relists is not None, 20)
        full = _passes(daemon, name, "full")
        write(root, {"a.yaml": [cm("a", namespace, data={"k": "edited"}), cm("b", namespace)]})
        (root / "c.yaml").unlink()
        eventually(lambda: (get(cluster, f"{path}/a") or {}).get("data") == {"k": "edited"}, 20)
        eventually(lambda: get(cluster, f"{path}/c") is None, 20)
        eventually(lambda: _passes(daemon, name, "incremental") >= 1, 10)
        assert _passes(daemon, name, "full") == full
    finally:
        daemon.stop()
        write(root, {"a.yaml": "", "ns.yaml": ""})
        pipeline.run(spec, cluster, dataclasses.replace(options, allow_prune_all=True))


def test_an_incremental_pass_records_its_own_stages_in_the_status(
    control_plane: APIServer, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    repo = GitRepo(tmp_path / "git")
    namespace = f"incs-{suffix}"
    repo.commit({"ns.yaml": ns(namespace), "a.yaml": cm("a", namespace)})
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=repo.url, name=f"incs-{suffix}", revision="main", source_format="unstructured")
    options = SyncOptions(git_cache=tmp_path / "cache")
    first = pipeline.run(spec, cluster, options)
    assert first.ok and first.baseline is not None
    repo.commit({"a.yaml": cm("a", namespace, data={"k": "two"})})
    second = pipeline.run(spec, cluster, options, baseline=first.baseline)
    assert second.ok and second.incremental
    try:
        status = get(cluster, f"/apis/acm-lite.io/v1alpha1/namespaces/acm-lite-system/rootsyncs/{spec.name}")
        stages = set((status or {})["status"]["durationSeconds"])
        assert "changes" in stages and "parse" not in stages, stages  # the full pass's keys are gone
    finally:
        repo.commit({"ns.yaml": None, "a.yaml": None})
        pipeline.run(spec, cluster, dataclasses.replace(options, allow_prune_all=True))
