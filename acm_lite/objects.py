"""Kubernetes objects as read from a source: the body, where it came from, and its identity.

Plain data shared by every stage; no I/O happens here.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar, overload


class GroupKind(NamedTuple):
    """A kind and its API group. A named tuple, like ObjectId: compared and hashed in C."""

    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


class ObjectId(NamedTuple):
    """Identity of an object in a cluster: group, kind, namespace, name (like Config Sync's GKNN).
    A named tuple: hashed, compared and sorted in C, as thousands are per pass."""

    group: str
    kind: str
    namespace: str
    name: str

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    def __str__(self) -> str:
        gk = f"{self.group}/{self.kind}" if self.group else self.kind
        return f"{gk} {self.namespace}/{self.name}" if self.namespace else f"{gk} {self.name}"

    def describe(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "namespace": self.namespace, "name": self.name}


T = TypeVar("T")


class computed_once(Generic[T]):  # noqa: N801 - used like property
    """Like functools.cached_property, without its lock (Python 3.11 takes one lock for every
    instance of the class on each first access): the value is computed from an immutable body,
    so two threads racing compute the same value. Kept in the slot ``_c_<name>`` where the class
    has one (no dictionary per instance: a daemon keeps every declared object), else in the
    instance's ``__dict__``."""

    def __init__(self, compute: Callable[[Any], T]):
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__
        self.slot: Any = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        slot = getattr(owner, f"_c_{name}", None)
        self.slot = slot if isinstance(slot, types.MemberDescriptorType) else None

    @overload
    def __get__(self, obj: None, owner: type) -> computed_once[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> T | computed_once[T]:
        if obj is None:
            return self
        slot = self.slot
        if slot is None:
            value = self.compute(obj)
            obj.__dict__[self.name] = value  # found there first from now on
            return value
        try:
            found: T = slot.__get__(obj, owner)
            return found
        except AttributeError:  # not computed yet
            value = self.compute(obj)
            slot.__set__(obj, value)
            return value


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # stateless


def split_api_version(api_version: str) -> tuple[str, str]:
    """("apps", "v1") for "apps/v1"; ("", "v1") for "v1"."""
    group, _, version = api_version.rpartition("/")
    return group, version


def field_path(path: tuple[Any, ...]) -> str:
    """A field path as users write it: ``data.key`` or ``spec.containers[0]``."""
    out = ""
    for part in path:
        out += (
            f"[{part}]"
            if isinstance(part, int) and not isinstance(part, bool)
            else (f".{part}" if out else str(part))
        )
    return out or "the document"


# the empty labels, annotations and extras of every manifest without any: one shared dict,
# never mutated (like a manifest's body), instead of one per object
_NONE: dict[str, str] = {}


class _Computed:
    """The slots holding what a Manifest computes from its body only when asked (``computed_once``)."""

    __slots__ = ("_c_digest", "_c_spec")


@dataclass(frozen=True, slots=True)
class Manifest(_Computed):
    """One object declared in a source file. ``body`` is never mutated: changes make a copy
    (which is also why identity and the fields every rule reads are computed once). Slotted,
    the identity fields read from the body when it is made, no dictionary per instance: a
    daemon keeps every declared object between passes."""

    body: dict[str, Any]
    source: str  # slash-separated path relative to the source root
    index: int = 0  # position of the document within its file
    extra: dict[str, str] = field(default_factory=lambda: _NONE, compare=False)
    # read from the body once, in __post_init__
    api_version: str = field(init=False, repr=False, compare=False)
    group: str = field(init=False, repr=False, compare=False)
    version: str = field(init=False, repr=False, compare=False)
    kind: str = field(init=False, repr=False, compare=False)
    metadata: dict[str, Any] = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False)
    namespace: str = field(init=False, repr=False, compare=False)
    annotations: dict[str, str] = field(init=False, repr=False, compare=False)
    labels: dict[str, str] = field(init=False, repr=False, compare=False)
    id: ObjectId = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        body = self.body
        api_version = str(body.get("apiVersion", ""))
        group, version = split_api_version(api_version)
        kind = str(body.get("kind", ""))
        meta = body.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name, namespace = meta.get("name"), meta.get("namespace")
        name = name if isinstance(name, str) else ""
        namespace = namespace if isinstance(namespace, str) else ""
        annotations, labels = meta.get("annotations"), meta.get("labels")
        put = object.__setattr__
        put(self, "api_version", api_version)
        put(self, "group", sys.intern(group))  # one copy of each, not one per object
        put(self, "version", sys.intern(version))
        put(self, "kind", kind)
        put(self, "metadata", meta)
        put(self, "name", name)
        put(self, "namespace", namespace)
        put(self, "annotations", annotations if isinstance(annotations, dict) else _NONE)
        put(self, "labels", labels if isinstance(labels, dict) else _NONE)
        put(self, "id", ObjectId(group, kind, namespace, name))

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    @computed_once
    def digest(self) -> str:
        """A hash of the declared body (canonical JSON), recorded on live objects."""
        return hashlib.sha256(_CANONICAL.encode(self.body).encode()).hexdigest()[:20]

    @computed_once
    def spec(self) -> dict[str, Any]:
        return self.mapping("spec")

    def mapping(self, key: str) -> dict[str, Any]:
        """A top-level field that should be an object; {} when absent or of another type."""
        value = self.body.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def directory(self) -> str:
        """The slash path of the directory holding the source file ("" at the root)."""
        return self.source.rpartition("/")[0]

    @property
    def top_directory(self) -> str:
        return self.source.split("/", 1)[0] if "/" in self.source else ""

    def with_metadata(self, **changes: Any) -> Manifest:
        """A copy with metadata fields replaced (None removes a field)."""
        body = copy.deepcopy(self.body)
        meta = body.setdefault("metadata", {})
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        return Manifest(body, self.source, self.index, self.extra)

    def with_namespace(self, namespace: str) -> Manifest:
        return self.with_metadata(namespace=namespace)

    def with_annotations(self, extra: dict[str, str]) -> Manifest:
        return self.with_metadata(annotations={**self.annotations, **extra})

    def describe(self) -> dict[str, str]:
        """The object fields of an error report."""
        return {
            "group": self.group,
            "version": self.version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }
