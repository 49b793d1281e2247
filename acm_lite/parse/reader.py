"""Read manifest files (multi-document YAML and JSON) under a source root, safely and with limits.

Hidden files and directories are skipped, as are files that are not .yaml, .yml or .json; only
regular files are read, and a symbolic link that loops, dangles or leads outside the root is
refused (``files``). Each document must be something a Kubernetes object can hold (``shape``:
string keys, JSON values, bounded depth and alias expansion) with well-formed identity fields
(``identity``); anything else is a coded problem naming the file. Objects annotated
``config.kubernetes.io/local-config`` (with any value but "false") are dropped.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acm_lite import errors, metadata
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.parse import files, identity, shape
from acm_lite.parse.files import MANIFEST_SUFFIXES
from acm_lite.parse.shape import ShapeError, ShapeLimits

__all__ = ["MANIFEST_SUFFIXES", "Limits", "ReadResult", "load_documents", "read", "read_file"]

# values that repeat across objects (a daemon keeps every declared object): one copy of each
_SHARED_VALUES = frozenset({"apiVersion", "kind", "namespace"})


def _shared(key: str, value: Any) -> Any:
    """A value as kept: the one copy of a string that repeats across objects (the key is
    interned by the caller for the same reason)."""
    return sys.intern(value) if value.__class__ is str and key in _SHARED_VALUES else value


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile input from exhausting memory or time."""

    max_file_bytes: int = 8 * 1024 * 1024
    max_documents: int = 20_000
    max_expanded_nodes: int = 1_000_000  # nodes after alias expansion, per document
    max_expanded_chars: int = 8 * 1024 * 1024  # string characters after alias expansion
    max_depth: int = 100  # nested maps and lists; later stages recurse, at 2-8 frames a level
    max_files: int = 50_000

    def shape(self) -> ShapeLimits:
        return ShapeLimits(self.max_depth, self.max_expanded_nodes, self.max_expanded_chars)


@dataclass
class ReadResult:
    manifests: list[Manifest] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _Loader(yaml.CSafeLoader):
    """Safe loading as Kubernetes does it: timestamps stay strings (sigs.k8s.io/yaml goes via JSON),
    and a key written twice in one mapping is an error (strict decoding), not the last one winning.
    Keys a merge (``<<``) brings in may be overridden, as YAML allows."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                    if (key.tag, key.value) in seen:
                        raise duplicate_key(key)
                    seen.add((key.tag, key.value))
        return super().construct_mapping(node, deep)


def duplicate_key(key: yaml.ScalarNode) -> ShapeError:
    return ShapeError(
        errors.DUPLICATE_KEY,
        f"line {key.start_mark.line + 1}: key {key.value!r} is given twice in one mapping",
    )


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}

_STR, _MAP, _SEQ, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))
# the resolvers a plain scalar's first character selects, wildcard ones appended, as PyYAML
# combines them on every call
_IMPLICIT = {
    first: tuple(resolvers) + tuple(_Loader.yaml_implicit_resolvers.get(None, ()))
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    if first is not None
}
_WILDCARD = tuple(_Loader.yaml_implicit_resolvers.get(None, ()))
_RESOLVED: dict[str, str] = {}  # plain scalar -> tag: keys and common values repeat endlessly
_RESOLVED_MAX = 1 << 16
_PLAIN_SCALARS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """PyYAML's integers, refusing one too long to convert rather than raising ValueError, in
    any of YAML's notations (a short hexadecimal text can still hold too many decimal digits)."""
    if len(node.value) > shape.MAX_INT_DIGITS:
        shape.int_or_error(node.value)  # raises, with the message
    value: int = yaml.SafeLoader.construct_yaml_int(loader, node)
    if value.bit_length() > _MAX_INT_BITS:
        raise ShapeError(
            errors.UNSUPPORTED_VALUE,
            f"an integer of {value.bit_length()} bits (Kubernetes integers have at most 64)",
        )
    return value


_MAX_INT_BITS = int(shape.MAX_INT_DIGITS * 3.32)  # about MAX_INT_DIGITS decimal digits


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _NotPlainError(Exception):
    """A document uses something the tree builder leaves to PyYAML (merge keys, tags, ...)."""


class _TreeLoader(_Loader):
    """The same documents, built about twice as fast: plain maps, sequences and scalars are
    built directly; anything else (merge keys, explicit tags, complex keys, a node holding
    itself, nesting past ``max_depth``) falls back to PyYAML's constructor for the whole document,
    and ``fell_back`` tells the reader to check its shape afterwards. Keys that are not strings
    raise ShapeError, with the line. An aliased node is built once and shared, as PyYAML
    does; the reader bounds the expansion afterwards."""

    max_depth = 100
    fell_back = False

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        """PyYAML's tag resolution (this loader has no path resolvers), remembered per plain
        scalar: it runs for every scalar the parser meets."""
        if kind is not yaml.ScalarNode:
            return _MAP if kind is yaml.MappingNode else _SEQ
        if not implicit[0]:
            return _STR
        tag = _RESOLVED.get(value)
        if tag is None:
            tag = next((tag for tag, rx in _IMPLICIT.get(value[:1], _WILDCARD) if rx.match(value)), _STR)
            if len(_RESOLVED) < _RESOLVED_MAX:
                _RESOLVED[value] = tag
        return tag

    def construct_document(self, node: yaml.Node) -> Any:
        self._built: dict[int, Any] = {}
        self.fell_back = False
        try:
            return self._build(node, 0)
        except (_NotPlainError, RecursionError):
            self.fell_back = True
            return super().construct_document(node)
        finally:
            self._built = {}

    def _build(self, node: yaml.Node, depth: int) -> Any:
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
        if depth >= self.max_depth:
            raise _NotPlainError  # too deep or holding itself: PyYAML builds it, shape.check names it
        depth += 1
        if kind is yaml.MappingNode and tag == _MAP:
            out: Any = {}
            for key, value in node.value:
                if key.__class__ is not yaml.ScalarNode:
                    raise _NotPlainError  # complex keys
                if key.tag != _STR:
                    self._refuse_key(key)
                if key.value in out:
                    raise duplicate_key(key)
                out[sys.intern(key.value)] = _shared(key.value, self._build(value, depth))
        elif kind is yaml.SequenceNode and tag == _SEQ:
            out = [self._build(item, depth) for item in node.value]
        else:
            raise _NotPlainError
        self._built[id(node)] = out
        return out

    def _refuse_key(self, key: yaml.ScalarNode) -> None:
        """A plain key YAML reads as a number, bool or null is an error; merge keys (``<<``) and
        tagged keys are left to PyYAML."""
        if key.tag not in _PLAIN_SCALARS:
            raise _NotPlainError
        err = shape.non_string_key(self.yaml_constructors[key.tag](self, key), "a map")
        raise ShapeError(err.code, f"line {key.start_mark.line + 1}: {err.message}")


def _parse_error(e: Exception, text: str) -> str:
    """A parser's complaint, with the line where PyYAML or json knows it."""
    if isinstance(e, json.JSONDecodeError):
        return f"invalid JSON at line {e.lineno}: {e.msg}"
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"invalid YAML{where}: {e.problem or e}"
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, e.position) + 1
        return f"invalid YAML at line {line}: unacceptable character #x{e.character:04x}"
    return f"invalid YAML: a tagged value cannot be built ({type(e).__name__}: {e})"


# what a hostile file can make the parsers (and PyYAML's constructors for explicit tags) raise
_PARSE_ERRORS = (yaml.YAMLError, ValueError, LookupError, TypeError, RecursionError, OverflowError)


def _documents(text: str, rel: str, limits: Limits) -> list[Any] | Problem:
    """The file's documents, each checked to be something a Kubernetes object can hold."""
    try:
        docs, check = _json_documents(text) if rel.endswith(".json") else _yaml_documents(text, limits)
        if len(docs) > limits.max_documents:
            return Problem(
                errors.TOO_MANY_DOCUMENTS,
                f"more than {limits.max_documents} YAML documents",
                source=rel,
                hint="split the file",
            )
        budget = limits.shape()
        for doc, needed in zip(docs, check, strict=True):
            if needed:  # the characters of a file's documents share one budget
                budget = shape.check(doc, budget)
    except ShapeError as e:
        return e.to_problem(source=rel)
    except RecursionError:
        return Problem(errors.NESTING_TOO_DEEP, "maps and lists nest too deep to parse", source=rel)
    except _PARSE_ERRORS as e:
        return Problem(errors.OBJECT_PARSE, _parse_error(e, text), source=rel)
    return docs


def _json_documents(text: str) -> tuple[list[Any], list[bool]]:
    if not text.strip():
        return [], []
    return [json.loads(text, parse_int=shape.int_or_error, object_pairs_hook=_unique_keys)], [True]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a key twice (as strict decoding does)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ShapeError(errors.DUPLICATE_KEY, f"key {twice!r} is given twice in one object")
    return out


def _yaml_documents(text: str, limits: Limits) -> tuple[list[Any], list[bool]]:
    """Documents, and for each whether its shape must still be checked: when the fast builder
    fell back to PyYAML, or aliases or \\u escapes (lone surrogates) may be present."""
    suspect = "*" in text or "\\u" in text or "\\U" in text
    loader = _TreeLoader(text)
    loader.max_depth = limits.max_depth
    docs: list[Any] = []
    check: list[bool] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
                check.append(suspect or loader.fell_back)
                if len(docs) > limits.max_documents:
                    break
    finally:
        loader.dispose()
    return docs, check


def _flatten(doc: Any) -> list[Any]:
    """A ``v1/List`` (or any ``*List`` with items) stands for its items, as in kubectl."""
    if (
        isinstance(doc, dict)
        and str(doc.get("kind", "")).endswith("List")
        and isinstance(doc.get("items"), list)
    ):
        return [item for inner in doc["items"] for item in _flatten(inner)]
    return [doc]


def _to_manifest(doc: Any, rel: str, index: int) -> Manifest | Problem | None:
    if not isinstance(doc, dict):
        return Problem(
            errors.OBJECT_PARSE, f"document {index + 1} is a {type(doc).__name__}, not an object", source=rel
        )
    found = identity.problem(doc)
    if found:
        code, message, hint = found
        return Problem(code, f"document {index + 1}: {message}", source=rel, hint=hint)
    manifest = Manifest(doc, rel, index)
    return None if metadata.is_local_config(manifest) else manifest


def read_file(root: Path, rel: str, limits: Limits) -> ReadResult:
    """Every object of one file, or the problems that stop it being read."""
    result = ReadResult()
    text = files.read_text(root, rel, limits.max_file_bytes)
    if isinstance(text, Problem):
        result.problems.append(text)
        return result
    docs = _documents(text, rel, limits)
    if isinstance(docs, Problem):
        result.problems.append(docs)
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


def load_documents(path: Path, limits: Limits | None = None) -> list[Any] | Problem:
    """The documents of one file read on its own (a gator suite and the files it names, a fleet
    file, a sync config), with the bounds and checks of manifests: a regular file, its size, its
    nesting, string keys, no alias bombs. A Problem names the file when it cannot be read."""
    limits = limits or Limits()
    text = files.read_text(path.parent, path.name, limits.max_file_bytes)
    found = text if isinstance(text, Problem) else _documents(text, path.name, limits)
    return dataclasses.replace(found, source=str(path)) if isinstance(found, Problem) else found


def load_text(text: str, name: str, limits: Limits | None = None) -> list[Any] | Problem:
    """The documents of text read from elsewhere than a file (stdin), with the bounds and checks
    of ``load_documents``; ``name`` ends in ``.json`` for JSON. The caller bounds its size."""
    found = _documents(text, name, limits or Limits())
    return dataclasses.replace(found, source=name) if isinstance(found, Problem) else found


def _wanted(rel: str, top_dirs: frozenset[str] | None) -> bool:
    return top_dirs is None or ("/" in rel and rel.split("/", 1)[0] in top_dirs)


def _reported(problem: Problem, top_dirs: frozenset[str] | None) -> bool:
    """A refusal below (or of) a top directory that is read; a limit of the whole walk."""
    return (
        top_dirs is None
        or problem.code is errors.TOO_MANY_FILES
        or (problem.source or "").split("/", 1)[0] in top_dirs
    )


def read(root: Path, *, top_dirs: frozenset[str] | None = None, limits: Limits | None = None) -> ReadResult:
    """Every object under ``root`` (only below ``top_dirs`` when given), in path order."""
    limits = limits or Limits()
    found = files.walk(root, limits.max_files)
    result = ReadResult(problems=[p for p in found.problems if _reported(p, top_dirs)])
    for rel in found.files:
        if not _wanted(rel, top_dirs):
            continue
        one = read_file(root, rel, limits)
        result.manifests.extend(one.manifests)
        result.problems.extend(one.problems)
    return result
