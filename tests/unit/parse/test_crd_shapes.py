"""Every field of a CRD replaced by a value of the wrong type: vet reports it with a code, and no
later step (scopes, schemas of its custom resources) trips on it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite.cli.main import main

BASE = Path(__file__).resolve().parents[2] / "fuzz" / "bases" / "unstructured" / "crd.yaml"
CRD = yaml.safe_load(BASE.read_text())
WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "blue", "namespace": "shop"},
    "spec": {"size": "small"},
}


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path:
        yield path
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        yield from _paths(value, (*path, key))


def _mutated(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(CRD)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize("path", list(_paths(CRD)), ids=lambda p: ".".join(map(str, p)))
def test_a_crd_field_of_the_wrong_type_is_a_coded_error(
    tmp_path: Path, path: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    for i, value in enumerate((5, "x", None, [5])):
        root = tmp_path / str(i)
        root.mkdir()
        (root / "crd.yaml").write_text(yaml.safe_dump(_mutated(path, value)))
        (root / "widget.yaml").write_text(yaml.safe_dump(WIDGET))
        code = main(["vet", str(root), "--source-format", "unstructured"])
        err = capsys.readouterr().err
        assert code in (0, 1), (value, err)
        assert "internal error" not in err
