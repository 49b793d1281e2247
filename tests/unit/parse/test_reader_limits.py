"""The reader's refusals, precisely: which code, which file, which line or field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from acm_lite.parse import reader
from tests.unit.repo_builder import cm, write

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"


def found(result: reader.ReadResult) -> list[tuple[str, str | None, str]]:
    return [(p.code.id, p.source, p.message) for p in result.problems]


def test_a_non_string_key_names_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": CM + "data:\n  ok: x\n  1: y\n"})
    [(code, source, message)] = found(reader.read(tmp_path))
    assert (code, source) == ("ACM1014", "a.yaml")
    assert message.startswith("line 6: key 1 in a map is a int")


@pytest.mark.parametrize(
    ("text", "shown"),
    [("yes: x", "key true"), ("~: x", "key null"), ("1.5: x", "key 1.5"), ("0x1F: x", "key 31")],
)
def test_every_implicitly_typed_key_is_refused(text: str, shown: str, tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": CM + f"data:\n  {text}\n"})
    [(code, _, message)] = found(reader.read(tmp_path))
    assert code == "ACM1014" and shown in message


def test_quoted_and_tagged_keys_are_strings(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": CM + "data:\n  '1': x\n  !!str yes: y\n"})
    result = reader.read(tmp_path)
    assert found(result) == []
    assert result.manifests[0].body["data"] == {"1": "x", "yes": "y"}


def test_a_non_string_key_behind_a_merge_key_is_found_by_path(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": CM + "data:\n  <<: {1: x}\n"})
    [(code, _, message)] = found(reader.read(tmp_path))
    assert code == "ACM1014" and "in data" in message


def test_a_symlink_inside_the_source_to_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    os.symlink("pipe", tmp_path / "x.yaml")
    assert [(c, s) for c, s, _ in found(reader.read(tmp_path))] == [("ACM1010", "x.yaml")]


def test_too_many_files(tmp_path: Path) -> None:
    write(tmp_path, {f"d/c{i}.yaml": cm(f"c{i}") for i in range(6)})
    result = reader.read(tmp_path, limits=reader.Limits(max_files=5))
    assert [c for c, _, _ in found(result)] == ["ACM1012"] and result.manifests == []
    assert len(reader.read(tmp_path, limits=reader.Limits(max_files=6)).manifests) == 6


def test_alias_expansion_counts_characters_across_a_files_documents(tmp_path: Path) -> None:
    doc = CM + "data:\n  a: &s " + "x" * 400 + "\n" + "".join(f"  b{i}: *s\n" for i in range(4))
    write(tmp_path, {"a.yaml": doc})
    limits = reader.Limits(max_expanded_chars=3000)
    assert found(reader.read(tmp_path, limits=limits)) == []  # one document: about 2,000
    write(tmp_path, {"a.yaml": "---\n".join([doc] * 2)})
    limits = reader.Limits(max_expanded_chars=3000)
    assert [c for c, _, _ in found(reader.read(tmp_path, limits=limits))] == ["ACM1003"]


def test_a_byte_order_mark_is_dropped_and_bad_utf8_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + CM.encode())
    (tmp_path / "latin1.yaml").write_bytes(CM.encode() + b"data: {a: caf\xe9}\n")
    result = reader.read(tmp_path)
    assert [m.name for m in result.manifests] == ["a"]
    assert found(result) == [
        ("KNV1006", "latin1.yaml", "not UTF-8 at line 4: invalid continuation byte (byte 0xe9)")
    ]


def test_problems_outside_the_hierarchy_top_directories_are_not_reported(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "docs.yaml")
    (tmp_path / "cluster").mkdir()
    os.mkfifo(tmp_path / "cluster" / "x.yaml")
    os.symlink(tmp_path.parent, tmp_path / "namespaces")  # a top directory leading out
    result = reader.read(tmp_path, top_dirs=frozenset({"cluster", "namespaces"}))
    assert [(c, s) for c, s, _ in found(result)] == [("ACM1010", "cluster/x.yaml"), ("ACM1004", "namespaces")]


@pytest.mark.parametrize(
    ("text", "code", "part"),
    [
        (
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "\\ud800"}}',
            "ACM1015",
            "data.k holds a lone surrogate",
        ),
        (
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "n": ' + "1" * 4500 + "}",
            "ACM1015",
            "an integer of 4500 digits",
        ),
        (
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "x": '
            + "[" * 150
            + "]" * 150
            + "}",
            "ACM1013",
            "nests deeper than 100 levels",
        ),
    ],
)
def test_json_values_a_kubernetes_object_cannot_hold(text: str, code: str, part: str, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(text)
    [(got, source, message)] = found(reader.read(tmp_path))
    assert (got, source) == (code, "a.json") and part in message


@pytest.mark.parametrize(
    ("meta", "code"),
    [
        ("{name: a, labels: [x]}", "KNV1054"),
        ("{name: a, annotations: {a: 1}}", "KNV1054"),
        ("{name: [a]}", "KNV1006"),
        ("5", "KNV1006"),
    ],
)
def test_metadata_shapes_are_coded_at_parse_time(meta: str, code: str, tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {meta}\n"})
    result = reader.read(tmp_path)
    assert [c for c, _, _ in found(result)] == [code] and result.manifests == []


@pytest.mark.parametrize(
    ("api_version", "kind", "ok"),
    [
        ("v1", "ConfigMap", True),
        ("apps/v1", "Deployment", True),
        ("cert-manager.io/v1", "ClusterIssuer", True),
        ("example.com/v1alpha1", "My-Kind", True),
        ("a/../b/v1", "X", False),
        ("v1", "../X", False),
        ("v1", "Con fig", False),
        ("/v1", "X", False),
        ("Apps/v1", "X", False),
        ("v1", "X" * 64, False),
    ],
)
def test_api_version_and_kind_must_be_identifiers(
    api_version: str, kind: str, ok: bool, tmp_path: Path
) -> None:
    write(tmp_path, {"a.yaml": {"apiVersion": api_version, "kind": kind, "metadata": {"name": "a"}}})
    assert (found(reader.read(tmp_path)) == []) is ok


def test_a_nul_byte_names_its_line_and_a_bad_tag_value_is_coded(tmp_path: Path) -> None:
    (tmp_path / "nul.yaml").write_bytes(CM.encode() + b"data: {a: x\0y}\n")
    (tmp_path / "tag.yaml").write_text(CM + "data: {a: !!bool maybe}\n")
    assert found(reader.read(tmp_path)) == [
        ("KNV1006", "nul.yaml", "invalid YAML at line 4: unacceptable character #x0000"),
        ("KNV1006", "tag.yaml", "invalid YAML: a tagged value cannot be built (KeyError: 'maybe')"),
    ]
