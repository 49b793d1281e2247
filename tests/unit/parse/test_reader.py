from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from acm_lite import metadata
from acm_lite.parse import reader
from tests.unit.repo_builder import cm, write

BOMB = (
    "\n".join(
        [f"l0: &l0 [{', '.join(['x'] * 9)}]"]
        + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    + "\n"
)


def codes(result: reader.ReadResult) -> list[str]:
    return [p.code.id for p in result.problems]


def test_multi_document_yaml_json_and_lists(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": "# comment only\n---\n"
            + "---\n".join(
                [
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
                    "\n",
                    "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, "
                    "metadata: {name: s}}\n",
                ]
            ),
            "b.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}',
            "notes.txt": "not a manifest",
            "README.md": "# hi",
        },
    )
    result = reader.read(tmp_path)
    assert codes(result) == []
    assert [(m.kind, m.name, m.source) for m in result.manifests] == [
        ("ConfigMap", "a", "a.yaml"),
        ("Secret", "s", "a.yaml"),
        ("ConfigMap", "b", "b.json"),
    ]


def test_hidden_paths_and_ci_directories_are_ignored(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".hidden/cm.yaml": cm("a"),
            "dir/.cm.yaml": cm("b"),
            ".github/workflows/ci.yaml": cm("c"),
            "ok/cm.yml": cm("d"),
        },
    )
    assert [m.name for m in reader.read(tmp_path).manifests] == ["d"]


def test_timestamps_stay_strings_as_kubernetes_reads_them(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
            "data:\n  since: 2024-01-01\n  at: 2024-01-01T10:00:00Z\n"
        },
    )
    assert reader.read(tmp_path).manifests[0].body["data"] == {
        "since": "2024-01-01",
        "at": "2024-01-01T10:00:00Z",
    }


def test_local_config_objects_are_dropped(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": [
                cm("local", annotations={metadata.LOCAL_CONFIG: "true"}),
                cm("kept", annotations={metadata.LOCAL_CONFIG: "false"}),
                cm("plain"),
            ]
        },
    )
    assert [m.name for m in reader.read(tmp_path).manifests] == ["kept", "plain"]


def test_a_yaml_bomb_is_a_coded_error_not_a_hang(tmp_path: Path) -> None:
    write(tmp_path, {"bomb.yaml": BOMB})
    result = reader.read(tmp_path)
    assert codes(result) == ["ACM1003"]
    assert result.problems[0].source == "bomb.yaml"


def test_modest_aliases_are_fine(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: "
            "&l {x: y}, annotations: *l}\n"
        },
    )
    result = reader.read(tmp_path)
    assert codes(result) == []
    assert result.manifests[0].annotations == {"x": "y"}


def test_size_and_document_limits(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "big.yaml": "a: " + "x" * 2000 + "\n",
            "many.yaml": "---\n".join(
                [f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n" for i in range(6)]
            ),
        },
    )
    result = reader.read(tmp_path, limits=reader.Limits(max_file_bytes=1000, max_documents=5))
    assert sorted(codes(result)) == ["ACM1001", "ACM1002"]
    assert result.manifests == []


def test_symlinks_leaving_the_source_are_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"secret.yaml": cm("stolen")})
    repo = write(tmp_path / "repo", {"real.yaml": cm("real")})
    os.symlink(outside / "secret.yaml", repo / "link.yaml")
    os.symlink(outside, repo / "linked-dir")
    os.symlink(repo / "real.yaml", repo / "inside.yaml")
    result = reader.read(repo)
    assert sorted((p.code.id, p.source) for p in result.problems) == [
        ("ACM1004", "link.yaml"),
        ("ACM1004", "linked-dir"),
    ]
    assert sorted(m.source for m in result.manifests) == ["inside.yaml", "real.yaml"]


def test_top_dirs_limit_what_is_read(tmp_path: Path) -> None:
    write(tmp_path, {"cluster/a.yaml": cm("a"), "docs/b.yaml": cm("b"), "c.yaml": cm("c")})
    result = reader.read(tmp_path, top_dirs=frozenset({"cluster"}))
    assert [m.name for m in result.manifests] == ["a"]


TREE_CASES = [
    "a: 1\nb: '1'\nc: 1.5\nd: true\ne: yes\nf: ~\ng:\nh: 0x1F\ni: 0o17\nj: .inf\n",
    "when: 2024-01-02T03:04:05Z\ndate: 2024-01-02\n",
    "list:\n- 1\n- [a, {b: c}]\n- {}\n- []\nnested: {x: {y: {z: [null, false]}}}\n",
    "base: &b {cpu: 1}\nmerged:\n  <<: {cpu: 2, memory: 3}\n  memory: 4\n",  # merge key, no alias
    "tagged: !!str 123\nnumber: !!int '7'\nfloat: !!float '1'\n",
    "dup: 1\ndup: 2\n",
    "multi: 1\n---\nmulti: 2\n---\n---\n[1, 2]\n",
    "? [complex, key]\n: value\n",
    "custom: !Ref thing\n",
    "x: &x [1, {y: 2}]\ny: *x\nz: {<<: *x}\n",
    "block: |\n  line one\n  line two\nfolded: >\n  folded\n  text\n",
]


@pytest.mark.parametrize("text", TREE_CASES)
def test_the_tree_loader_builds_exactly_what_pyyaml_builds(text: str) -> None:
    def load(loader: type) -> object:
        try:
            return list(yaml.load_all(text, Loader=loader))
        except (yaml.YAMLError, reader.ShapeError) as e:  # both refuse a duplicate key alike
            return type(e).__name__, str(e)

    assert load(reader._TreeLoader) == load(reader._Loader)


def test_the_tree_loader_agrees_on_every_file_of_the_sample_repo() -> None:
    root = Path(__file__).parents[3] / "sample-repo"
    files = [p for p in root.rglob("*.y*ml") if "*" not in p.read_text()]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert list(yaml.load_all(text, Loader=reader._TreeLoader)) == list(
            yaml.load_all(text, Loader=reader._Loader)
        ), path


def test_the_tree_loader_shares_aliased_nodes_and_falls_back_on_recursive_ones() -> None:
    text = "labels: &l {app: web}\nselector: *l\nlist: &s [1, 2]\nagain: *s\n"
    doc = yaml.load(text, Loader=reader._TreeLoader)
    assert doc == yaml.load(text, Loader=reader._Loader)
    assert doc["labels"] is doc["selector"] and doc["list"] is doc["again"]
    recursive = yaml.load("a: &a {self: *a}\n", Loader=reader._TreeLoader)
    assert recursive["a"]["self"] is recursive["a"]
