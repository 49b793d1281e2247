"""Declared sets kept between passes: the same commit rendered the same way is not read again, a
working tree is always read, the oldest of too many is dropped, a sync's new commit replaces its
last, and a source with dynamic NamespaceSelectors is rendered again only when the live
Namespaces changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from acm_lite import declare
from acm_lite.cluster.client import Cluster
from acm_lite.objects import Manifest
from acm_lite.parse import reader
from acm_lite.reconcile import declared_cache
from acm_lite.source.snapshot import Snapshot
from tests.unit.repo_builder import cm, ns, obj, write


class Namespaces:
    """Answers the one request the cache may send: the LIST of the cluster's Namespaces."""

    def __init__(self, *labelled: tuple[str, str]):
        self.items = [
            {"metadata": {"name": name, "labels": {"env": env}}, "status": {"phase": "Active"}}
            for name, env in labelled
        ]
        self.lists = 0

    def request(self, method: str, path: str) -> dict[str, Any]:
        assert (method, path) == ("GET", "/api/v1/namespaces")
        self.lists += 1
        return {"items": self.items}


def declared(
    root: Path, commit: str | None, cluster: Namespaces | None = None, cluster_name: str | None = None
) -> declare.Declared:
    snapshot = Snapshot(root, "https://example.com/repo.git", "main", commit)
    return declared_cache.declared(
        snapshot,
        cast(Cluster, cluster or Namespaces()),
        source_format=declare.UNSTRUCTURED,
        cluster_name=cluster_name,
        cluster_labels=None,
        schema=False,
        namespace=None,
    )


def test_a_commit_rendered_the_same_way_is_read_once(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"ns.yaml": ns("team"), "cm.yaml": cm("one", "team")})
    first = declared(root, "1" * 40)
    write(root, {"more.yaml": cm("two", "team")})  # never happens to a commit: shows a re-read

    assert declared(root, "1" * 40) is first
    assert len(declared(root, "1" * 40, cluster_name="other").objects) == 3
    assert len(declared(root, None).objects) == 3
    assert declared(root, None) is not declared(root, None)


def test_the_oldest_of_more_than_eight_is_dropped(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"ns.yaml": ns("team")})
    kept = [declared(root, "4" * 40, cluster_name=f"c{n}") for n in range(9)]

    assert declared(root, "4" * 40, cluster_name="c8") is kept[8]
    assert declared(root, "4" * 40, cluster_name="c1") is kept[1]
    assert declared(root, "4" * 40, cluster_name="c0") is not kept[0]


def test_a_new_commit_replaces_the_declared_set_of_the_same_sync_only(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"ns.yaml": ns("team")})
    old = declared(root, "5" * 40)
    other = declared(root, "5" * 40, cluster_name="other")
    new = declared(root, "6" * 40)

    assert declared(root, "6" * 40) is new
    assert declared(root, "5" * 40, cluster_name="other") is other  # another sync's: kept
    assert declared(root, "5" * 40) is not old  # read again: the newer commit replaced it


def test_dynamic_selectors_render_again_only_when_live_namespaces_change(tmp_path: Path) -> None:
    selector = obj(
        "configmanagement.gke.io/v1",
        "NamespaceSelector",
        "prod",
        spec={"mode": "dynamic", "selector": {"matchLabels": {"env": "prod"}}},
    )
    alert = cm("pager", annotations={"configmanagement.gke.io/namespace-selector": "prod"})
    root = write(tmp_path / "repo", {"sel.yaml": selector, "alert.yaml": alert})
    cluster = Namespaces(("live-prod", "prod"))

    first = declared(root, "2" * 40, cluster)
    again = declared(root, "2" * 40, cluster)
    cluster.items += Namespaces(("new-prod", "prod")).items
    changed = declared(root, "2" * 40, cluster)

    assert again is first
    assert cluster.lists == 3
    assert sorted(o.namespace for o in first.objects if o.kind == "ConfigMap") == ["live-prod"]
    assert sorted(o.namespace for o in changed.objects if o.kind == "ConfigMap") == ["live-prod", "new-prod"]


def test_a_rendered_source_is_read_instead_of_the_files_and_kept_by_its_render_options(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "repo", {"ns.yaml": ns("team"), "cm.yaml": cm("raw", "team")})
    snapshot = Snapshot(root, "https://example.com/repo.git", "main", "3" * 40)

    def with_render(rendered: reader.ReadResult, options: object) -> declare.Declared:
        return declared_cache.declared(
            snapshot,
            cast(Cluster, Namespaces()),
            source_format=declare.UNSTRUCTURED,
            cluster_name=None,
            cluster_labels=None,
            schema=False,
            namespace=None,
            rendered=rendered,
            render_options=options,
        )

    def rendered(name: str) -> reader.ReadResult:
        body = {**cm(name, "team"), "metadata": {"name": name, "namespace": "team"}}
        return reader.ReadResult([Manifest(body, "kustomization.yaml", 0, {"origin": "base/../cm.yaml"})])

    first = with_render(rendered("one"), ("network", False))
    assert [(o.name, o.source) for o in first.objects] == [("one", "cm.yaml")]  # named by its origin
    assert first.objects[0].extra["kustomization"] == "kustomization.yaml"
    assert with_render(rendered("two"), ("network", False)) is first  # the same commit, options
    assert [o.name for o in with_render(rendered("two"), ("network", True)).objects] == ["two"]
    assert {o.name for o in declared(root, "3" * 40).objects} == {"raw", "team"}  # files: another key
