"""A key written twice in one mapping is an error naming the file, line and key (the API server's
strict decoding and kubectl refuse it), in YAML's fast and fallback paths and in JSON; a key a
merge brings in may still be overridden."""

from __future__ import annotations

from pathlib import Path

import pytest

from acm_lite.parse import reader

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"


@pytest.mark.parametrize(
    ("name", "text", "line", "key"),
    [
        ("top.yaml", CM + "data: {k: v}\ndata: {k: w}\n", 6, "data"),
        ("nested.yaml", CM + "data:\n  k: v\n  other: x\n  k: w\n", 8, "k"),
        ("metadata.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", 5, "name"),
        ("tagged.yaml", CM + "data:\n  !!str k: v\n  k: w\n", 7, "k"),  # built by PyYAML's constructor
        ("second-doc.yaml", CM + "---\n" + CM + "data: {a: '1', a: '2'}\n", 10, "a"),
    ],
)
def test_yaml_duplicate_keys_name_file_line_and_key(
    tmp_path: Path, name: str, text: str, line: int, key: str
) -> None:
    (tmp_path / name).write_text(text)
    problems = reader.read(tmp_path).problems
    assert [(p.code.id, p.source) for p in problems] == [("ACM1019", name)]
    assert f"line {line}" in problems[0].message and repr(key) in problems[0].message


def test_json_duplicate_keys(tmp_path: Path) -> None:
    (tmp_path / "cm.json").write_text(
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}, "data": {"k": "1", "k": "2"}}'
    )
    problems = reader.read(tmp_path).problems
    assert [(p.code.id, p.source) for p in problems] == [("ACM1019", "cm.json")]
    assert "'k'" in problems[0].message


def test_merged_keys_may_be_overridden_and_distinct_keys_pass(tmp_path: Path) -> None:
    (tmp_path / "merge.yaml").write_text(CM + "data:\n  <<: {k: v, j: x}\n  k: w\n")
    (tmp_path / "fine.yaml").write_text(CM.replace("cm", "fine") + "data: {a: '1', b: '2'}\n")
    result = reader.read(tmp_path)
    assert not result.problems
    assert {m.name: m.body["data"] for m in result.manifests} == {
        "cm": {"k": "w", "j": "x"},
        "fine": {"a": "1", "b": "2"},
    }


@pytest.mark.parametrize("value", ["0x" + "f" * 3990, "0x" + "1" * 3990])
def test_a_short_text_holding_a_huge_integer_is_refused(tmp_path: Path, value: str) -> None:
    """Digits are counted in the value, not the text: hexadecimal packs more into fewer."""
    (tmp_path / "big.yaml").write_text(CM + f"data: {{}}\nspec: {{size: {value}}}\n")
    problems = reader.read(tmp_path).problems
    assert [p.code.id for p in problems] == ["ACM1015"] and "bits" in problems[0].message


def test_names_and_identifiers_end_where_they_end() -> None:
    """A trailing newline is not part of a valid name (``$`` would let it through)."""
    from acm_lite.parse import identity
    from acm_lite.validate import names, quantities

    assert not names.is_subdomain("foo\n") and not names.is_label("x\n")
    assert identity.problem({"apiVersion": "v1\n", "kind": "ConfigMap", "metadata": {}})
    assert not quantities.parses("1e" + "9" * 5000)  # was a ValueError past 4,300 digits
