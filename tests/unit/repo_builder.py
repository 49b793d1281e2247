"""Build small repositories on disk for tests: ``write(tmp, {"path": yaml_text_or_object})``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = {
    "apiVersion": "configmanagement.gke.io/v1",
    "kind": "Repo",
    "metadata": {"name": "repo"},
    "spec": {"version": "1.0.0"},
}


def ns(
    name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def cm(
    name: str, namespace: str | None = None, annotations: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}, **extra}


def obj(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    meta = fields.pop("metadata", {})
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **meta}, **fields}


def write(root: Path, files: dict[str, Any]) -> Path:
    """Write each entry; a list is a multi-document file, a string is written as is."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, list):
            path.write_text(yaml.safe_dump_all(content, sort_keys=False))
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False))
    return root


def hierarchy(root: Path, files: dict[str, Any], *, with_repo: bool = True) -> Path:
    return write(root, {**({"system/repo.yaml": REPO} if with_repo else {}), **files})
