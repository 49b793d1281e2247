"""Read manifest files (multi-document YAML and JSON) under a source root, safely and with limits.

Hidden files and directories are skipped, as are files that are not .yaml, .yml or .json; a
symbolic link leading outside the root is refused; objects annotated
``config.kubernetes.io/local-config`` (with any value but "false") are dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
LOCAL_CONFIG = "config.kubernetes.io/local-config"
_IGNORED_PARTS = {".github", ".gitlab", ".gitlab-ci.yml"}


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile input from exhausting memory or time."""

    max_file_bytes: int = 8 * 1024 * 1024
    max_documents: int = 20_000
    max_expanded_nodes: int = 1_000_000  # nodes after alias expansion, per file


@dataclass
class ReadResult:
    manifests: list[Manifest] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _Loader(yaml.CSafeLoader):
    """Safe loading as Kubernetes does it: timestamps stay strings (sigs.k8s.io/yaml goes via JSON)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}

_STR, _MAP, _SEQ = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq"))
# the resolvers a plain scalar's first character selects, wildcard ones appended, as PyYAML
# combines them on every call
_IMPLICIT = {first: tuple(resolvers) + tuple(_Loader.yaml_implicit_resolvers.get(None, ()))
             for first, resolvers in _Loader.yaml_implicit_resolvers.items() if first is not None}
_WILDCARD = tuple(_Loader.yaml_implicit_resolvers.get(None, ()))
_RESOLVED: dict[str, str] = {}  # plain scalar -> tag: keys and common values repeat endlessly
_RESOLVED_MAX = 1 << 16
_PLAIN_SCALARS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))


class _NotPlainError(Exception):
    """A document uses something the tree builder leaves to PyYAML (merge keys, tags, ...)."""


class _TreeLoader(_Loader):
    """The same documents, built about twice as fast: plain maps, sequences and scalars are
    built directly; anything else (merge keys, explicit tags, complex keys, a node holding
    itself) falls back to PyYAML's constructor for the whole document. An aliased node is built
    once and shared, as PyYAML does; ``_documents`` bounds the expansion afterwards."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        """PyYAML's tag resolution (this loader has no path resolvers), remembered per plain
        scalar: it runs for every scalar the parser meets."""
        if kind is not yaml.ScalarNode:
            return _MAP if kind is yaml.MappingNode else _SEQ
        if not implicit[0]:
            return _STR
        tag = _RESOLVED.get(value)
        if tag is None:
            tag = next((tag for tag, rx in _IMPLICIT.get(value[:1], _WILDCARD) if rx.match(value)),
                       _STR)
            if len(_RESOLVED) < _RESOLVED_MAX:
                _RESOLVED[value] = tag
        return tag

    def construct_document(self, node: yaml.Node) -> Any:
        self._built: dict[int, Any] = {}
        try:
            return self._build(node)
        except (_NotPlainError, RecursionError):
            return super().construct_document(node)
        finally:
            self._built = {}

    def _build(self, node: yaml.Node) -> Any:
        kind, tag = node.__class__, node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return node.value
            if tag not in _PLAIN_SCALARS:
                raise _NotPlainError
            return self.yaml_constructors[tag](self, node)
        built = self._built.get(id(node))
        if built is not None:
            return built
        if kind is yaml.MappingNode and tag == _MAP:
            out: Any = {}
            for key, value in node.value:
                if key.__class__ is not yaml.ScalarNode or key.tag not in _PLAIN_SCALARS:
                    raise _NotPlainError  # merge keys ("<<") and complex keys
                out[self._build(key)] = self._build(value)
        elif kind is yaml.SequenceNode and tag == _SEQ:
            out = [self._build(item) for item in node.value]
        else:
            raise _NotPlainError
        self._built[id(node)] = out
        return out


def _expanded_nodes(value: Any, budget: int) -> int:
    """Count nodes as if every alias were copied out; stop once past ``budget``."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > budget:
            return count
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def iter_files(root: Path, problems: list[Problem]) -> Iterator[str]:
    """Slash paths (relative to ``root``) of manifest files, sorted; symlinks checked."""
    real_root = root.resolve()
    found: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        keep = []
        for name in sorted(dirnames):
            if name.startswith(".") or name in _IGNORED_PARTS:
                continue
            path = Path(directory) / name
            if path.is_symlink():
                _check_link(path, real_root, rel_dir / name, problems)
                continue  # links to directories are not followed (no cycles, no duplicates)
            keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            if name.startswith(".") or name in _IGNORED_PARTS or not name.endswith(MANIFEST_SUFFIXES):
                continue
            path = Path(directory) / name
            if path.is_symlink() and not _check_link(path, real_root, rel_dir / name, problems):
                continue
            found.append((rel_dir / name).as_posix())
    yield from sorted(found)


def _check_link(path: Path, real_root: Path, rel: Path, problems: list[Problem]) -> bool:
    target = path.resolve()
    if target == real_root or real_root in target.parents:
        return target.is_file()
    problems.append(Problem(errors.SYMLINK_OUTSIDE_SOURCE,
                            f"symbolic link points outside the source directory (to {target})",
                            source=rel.as_posix(),
                            hint="replace the link with the file it points to"))
    return False


def _documents(text: str, rel: str, limits: Limits) -> tuple[list[Any], Problem | None]:
    if rel.endswith(".json"):
        try:
            return ([json.loads(text)] if text.strip() else []), None
        except json.JSONDecodeError as e:
            return [], Problem(errors.OBJECT_PARSE, f"invalid JSON at line {e.lineno}: {e.msg}",
                               source=rel)
    docs: list[Any] = []
    try:
        for doc in yaml.load_all(text, Loader=_TreeLoader):
            if doc is None:
                continue
            docs.append(doc)
            if len(docs) > limits.max_documents:
                return [], Problem(errors.TOO_MANY_DOCUMENTS,
                                   f"more than {limits.max_documents} YAML documents", source=rel,
                                   hint="split the file")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        return [], Problem(errors.OBJECT_PARSE, f"invalid YAML{where}: {problem}", source=rel)
    if "*" in text:  # aliases present: make sure they do not expand into a bomb
        for doc in docs:
            if _expanded_nodes(doc, limits.max_expanded_nodes) > limits.max_expanded_nodes:
                return [], Problem(errors.ALIAS_EXPANSION,
                                   f"YAML aliases expand to more than {limits.max_expanded_nodes} "
                                   "nodes", source=rel, hint="remove the anchors and aliases")
    return docs, None


def _flatten(doc: Any) -> list[Any]:
    """A ``v1/List`` (or any ``*List`` with items) stands for its items, as in kubectl."""
    if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(
            doc.get("items"), list):
        return [item for inner in doc["items"] for item in _flatten(inner)]
    return [doc]


def _to_manifest(doc: Any, rel: str, index: int) -> Manifest | Problem | None:
    if not isinstance(doc, dict):
        return Problem(errors.OBJECT_PARSE,
                       f"document {index + 1} is a {type(doc).__name__}, not an object", source=rel)
    missing = [f for f in ("apiVersion", "kind") if not isinstance(doc.get(f), str) or not doc[f]]
    if missing:
        return Problem(errors.OBJECT_PARSE,
                       f"document {index + 1} is missing field(s) {', '.join(missing)}", source=rel)
    if not isinstance(doc.get("metadata"), dict):
        return Problem(errors.OBJECT_PARSE, f"document {index + 1} ({doc['kind']}) has no metadata",
                       source=rel)
    wrong = [f for f in ("name", "namespace") if f in doc["metadata"]
             and not isinstance(doc["metadata"][f], str)]
    if wrong:
        return Problem(errors.OBJECT_PARSE, f"document {index + 1} ({doc['kind']}): metadata."
                       f"{' and metadata.'.join(wrong)} must be a string", source=rel)
    manifest = Manifest(doc, rel, index)
    local = manifest.annotations.get(LOCAL_CONFIG)
    return None if local is not None and local != "false" else manifest


def read_file(root: Path, rel: str, limits: Limits) -> ReadResult:
    """Every object of one file, or the problems that stop it being read."""
    result = ReadResult()
    path = root / rel
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            result.problems.append(Problem(errors.FILE_TOO_LARGE,
                                           f"{size} bytes, over the {limits.max_file_bytes}-byte "
                                           "limit", source=rel))
            return result
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        result.problems.append(Problem(errors.OBJECT_PARSE, f"cannot read file: {e}", source=rel))
        return result
    docs, problem = _documents(text, rel, limits)
    if problem:
        result.problems.append(problem)
        return result
    index = 0
    for doc in docs:
        for item in _flatten(doc):
            outcome = _to_manifest(item, rel, index)
            index += 1
            if isinstance(outcome, Problem):
                result.problems.append(outcome)
            elif outcome is not None:
                result.manifests.append(outcome)
    return result


def read(root: Path, *, top_dirs: frozenset[str] | None = None,
         limits: Limits | None = None) -> ReadResult:
    """Every object under ``root`` (only below ``top_dirs`` when given), in path order."""
    limits = limits or Limits()
    result = ReadResult()
    for rel in iter_files(root, result.problems):
        if top_dirs is not None and rel.split("/", 1)[0] not in top_dirs:
            continue
        if top_dirs is not None and "/" not in rel:
            continue
        one = read_file(root, rel, limits)
        result.manifests.extend(one.manifests)
        result.problems.extend(one.problems)
    return result
