"""ACM1006: objects checked against their kind's OpenAPI schema, offline.

Built-in kinds use the Kubernetes JSON schemas packaged by ``kubernetes-validate`` (strict: an
unknown field is an error, as ``kubectl apply --validate=strict`` makes it); custom resources use
the ``openAPIV3Schema`` of a CRD declared in the source. Kinds known to neither are left to the
cluster (KNV1021 reports them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import marshal
import os
import sys
from collections import Counter
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema
from fastjsonschema.ref_resolver import RefResolver
from referencing import Registry, Resource

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.objects import GroupKind, Manifest
from acm_lite.paths import cache_dir
from acm_lite.validate import crd_schema

SCHEMA_VERSION = "1.37.0"
MAX_ERRORS_PER_OBJECT = 5
# A kind's schema compiled to Python checks an object 10-35x faster than jsonschema. Generating
# it costs 10-250 ms once per machine (the bytecode is cached), so it pays from a few hundred
# objects of a kind. It only answers "valid"; messages come from jsonschema.
COMPILE_FROM = 200
_Validator = Any
SECRET = GroupKind("", "Secret")
_FORMATS = {
    f: (lambda _value: True)
    for f in ("int32", "int64", "byte", "double", "date-time", "int-or-string", "float")
}


def _schema_dir() -> Any:
    return resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{SCHEMA_VERSION}-local-strict"
    )


@cache
def _registry() -> Registry[Any]:
    definitions = json.loads(_schema_dir().joinpath("_definitions.json").read_text())
    registry: Registry[Any] = crd_schema.NO_RETRIEVAL.with_resource(
        definitions["$id"], Resource.from_contents(definitions)
    )
    return registry


def release() -> None:
    """Forget the built-in schemas loaded with the definitions they refer to (about 4 MiB): a
    daemon loads them again at its next pass (about 25 ms) rather than keeping them between
    passes. Validators compiled per kind stay."""
    _builtin_validator.cache_clear()
    _registry.cache_clear()


def _definitions_handler(definitions: dict[str, Any]) -> Callable[[str], Any]:
    """fastjsonschema's resolver for the packaged definitions, and nothing else: any other URI
    is refused rather than fetched."""
    known = str(definitions.get("$id", "")).split("#", 1)[0]

    def resolve(uri: str) -> Any:
        if uri.split("#", 1)[0] != known:
            raise fastjsonschema.JsonSchemaDefinitionException(f"refusing to fetch {uri}")
        return definitions

    return resolve


def _handlers(definitions: dict[str, Any]) -> dict[str, Callable[[str], Any]]:
    handler = _definitions_handler(definitions)
    return {scheme: handler for scheme in ("https", "http", "file", "ftp", "data")}


@cache
def _builtin_validator(group: str, version: str, kind: str) -> _Validator | None:
    prefix = f"{group.split('.', maxsplit=1)[0]}-" if group else ""
    path = _schema_dir().joinpath(f"{kind.lower()}-{prefix}{version}.json")
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def _bytecode(name: str, schema: dict[str, Any], definitions: dict[str, Any]) -> Any:
    """The compiled validator module of one schema, generated once per machine and kept (as
    marshalled bytecode) in the cache: generating costs ~0.25 s, loading under 1 ms."""
    key = hashlib.sha256(
        json.dumps([schema, fastjsonschema.VERSION, sys.version], sort_keys=True).encode()
    ).hexdigest()[:20]
    path = cache_dir() / "schemas" / f"{name}-{key}.marshal"
    try:
        return marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError):
        pass
    source = fastjsonschema.compile_to_code(schema, handlers=_handlers(definitions), formats=_FORMATS)
    code = compile(source, f"<schema {name}>", "exec")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.parent / f".{path.name}.{os.getpid()}"
        partial.write_bytes(marshal.dumps(code))
        os.replace(partial, path)
    except OSError:
        pass  # a read-only cache only costs the next run the generation again
    return code


@cache
def _compiled_validator(group: str, version: str, kind: str) -> Callable[[Any], Any] | None:
    prefix = f"{group.split('.', maxsplit=1)[0]}-" if group else ""
    name = f"{kind.lower()}-{prefix}{version}"
    path = _schema_dir().joinpath(f"{name}.json")
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    schema.pop("$schema", None)
    definitions = json.loads(_schema_dir().joinpath("_definitions.json").read_text())
    try:
        namespace: dict[str, Any] = {}
        exec(_bytecode(name, schema, definitions), namespace)  # the code we generated
        root = RefResolver.from_schema(schema, handlers=_handlers(definitions))
        function = namespace[root.get_scope_name()]
    except (fastjsonschema.JsonSchemaDefinitionException, KeyError):
        return None
    return functools.partial(function, custom_formats=_FORMATS)


def _version_schema(version: Any) -> Any:
    holder = version.get("schema") if isinstance(version, dict) else None
    return holder.get("openAPIV3Schema") if isinstance(holder, dict) else None


def _crd_validators(
    objs: list[Manifest],
) -> tuple[dict[tuple[GroupKind, str], _Validator], dict[int, Problem]]:
    """A validator per CRD kind and version, and a problem per CRD whose schema is unusable
    (keyed by the CRD manifest's id); its objects are then checked against no schema."""
    out: dict[tuple[GroupKind, str], _Validator] = {}
    broken: dict[int, Problem] = {}
    for crd in (o for o in objs if o.group_kind == kinds.CRD):
        info = kinds.crd_info(crd)
        versions = crd.spec.get("versions")
        if info is None or not isinstance(versions, list):
            continue
        for i, version in enumerate(versions):
            schema = _version_schema(version)
            if schema is None:
                continue
            wrong = crd_schema.problem(schema, f"spec.versions[{i}].schema.openAPIV3Schema")
            if wrong:
                broken.setdefault(id(crd), Problem.about(errors.INVALID_CRD_SCHEMA, wrong, crd))
                out[(info.group_kind, str(version.get("name")))] = None
            else:
                out[(info.group_kind, str(version.get("name")))] = crd_schema.validator(schema)
    return out, broken


def _path(error: jsonschema.ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
    return "".join(parts).lstrip(".") or "(root)"


def _holds_secret(obj: Manifest, error: jsonschema.ValidationError) -> bool:
    """Does the failing value hold (part of) a Secret's data? Then its message must not show it."""
    if obj.group_kind != SECRET:
        return False
    path = list(error.absolute_path)
    if not path:  # about the whole Secret: only messages that name fields, never show values
        return error.validator not in ("required", "additionalProperties")
    return path[0] in ("data", "stringData")


def _masked(error: jsonschema.ValidationError) -> str:
    """What is wrong, without the value: the keyword that failed and what it expects."""
    expected = error.validator_value
    if isinstance(expected, list) and all(isinstance(v, str) for v in expected):
        expected = " or ".join(expected)
    shown = f" {expected}" if isinstance(expected, str | int | float | bool) else ""
    return f"the value (hidden: Secret data) fails {error.validator!s}{shown}"


def _describe(validator: _Validator, obj: Manifest) -> list[str]:
    found = []
    for error in validator.iter_errors(obj.body):
        best = jsonschema.exceptions.best_match([error])
        message = _masked(best) if _holds_secret(obj, best) else best.message
        found.append(f"{_path(best)}: {message}")
    return sorted(set(found))


class SchemaChecker:
    """Validates objects of one declared set (whose CRDs it learns first)."""

    def __init__(self, objs: list[Manifest]):
        self._crds, self._broken_crds = _crd_validators(objs)
        self._crd_kinds = {gk for gk, _ in self._crds}
        counts = Counter((o.group, o.version, o.kind) for o in objs)
        self._compile = {gvk for gvk, n in counts.items() if n >= COMPILE_FROM}

    def _fast_valid(self, obj: Manifest) -> bool:
        gvk = (obj.group, obj.version, obj.kind)
        if gvk not in self._compile or obj.group_kind in self._crd_kinds:
            return False
        compiled = _compiled_validator(*gvk)
        if compiled is None:
            return False
        try:
            compiled(obj.body)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def _validator(self, obj: Manifest) -> _Validator | Problem | None:
        gk = obj.group_kind
        if gk in self._crd_kinds:
            if (gk, obj.version) in self._crds:
                return self._crds[(gk, obj.version)]  # None: its schema is unusable (reported)
            return Problem.about(
                errors.SCHEMA_VIOLATION, f"version {obj.version!r} of {gk} is not defined by its CRD", obj
            )
        builtin = kinds.builtin().get(gk)
        if builtin is None or gk in kinds.SOURCE_ONLY:
            return None
        if obj.version not in builtin.versions:
            served = ", ".join(f"{gk.group + '/' if gk.group else ''}{v}" for v in builtin.versions)
            return Problem.about(
                errors.SCHEMA_VIOLATION, f"{obj.api_version} is not served for {gk.kind}; use {served}", obj
            )
        return _builtin_validator(obj.group, obj.version, obj.kind)

    def check(self, obj: Manifest) -> list[Problem]:
        if id(obj) in self._broken_crds:
            return [self._broken_crds[id(obj)]]
        if self._fast_valid(obj):
            return []
        validator = self._validator(obj)
        if validator is None:
            return []
        if isinstance(validator, Problem):
            return [validator]
        messages = _describe(validator, obj)
        if not messages:
            return []
        shown = messages[:MAX_ERRORS_PER_OBJECT]
        more = f" (and {len(messages) - len(shown)} more)" if len(messages) > len(shown) else ""
        return [Problem.about(errors.SCHEMA_VIOLATION, "; ".join(shown) + more, obj)]
