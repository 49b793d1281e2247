"""The hierarchical format: top-level directories, the ``namespaces/`` tree, inheritance from
abstract directories, and NamespaceSelectors. No I/O.

A directory of ``namespaces/`` holding a Namespace is a namespace directory; every other directory
is abstract, and its objects are copied into each namespace below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.kinds import Scope, Scoper, hierarchy_group_kinds, hierarchy_resources
from acm_lite.metadata import NAMESPACE_SELECTOR_ANNOTATION
from acm_lite.objects import GroupKind, Manifest
from acm_lite.parse import namespace_selection, selectors

TOP_DIRS = frozenset({"system", "cluster", "clusterregistry", "namespaces"})
_EXPECTED_DIR = {
    kinds.REPO: "system",
    kinds.HIERARCHY_CONFIG: "system",
    kinds.NAMESPACE: "namespaces",
    kinds.NAMESPACE_SELECTOR: "namespaces",
}
_DIR_RULE = {
    "system": "only Repo and HierarchyConfig objects belong in system/",
    "cluster": "cluster-scoped objects (except Namespaces) belong in cluster/",
    "namespaces": "namespaced objects and Namespaces belong in namespaces/",
}


@dataclass
class Node:
    path: str
    objects: list[Manifest] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)

    def namespaces(self) -> list[Manifest]:
        return [o for o in self.objects if o.group_kind == kinds.NAMESPACE]


def namespace_dirs(objs: list[Manifest]) -> frozenset[str]:
    """The namespace directories: those declaring the Namespace named after them."""
    return frozenset(
        o.directory
        for o in objs
        if o.group_kind == kinds.NAMESPACE
        and o.top_directory == "namespaces"
        and o.name == o.directory.rpartition("/")[2]
    )


def set_object_namespaces(objs: list[Manifest], dirs: frozenset[str] | None = None) -> list[Manifest]:
    """Objects in a namespace directory without metadata.namespace get the directory's name.
    ``dirs``: the namespace directories, when ``objs`` are only some of the source's objects."""
    found = namespace_dirs(objs) if dirs is None else dirs
    skip = (kinds.NAMESPACE, kinds.NAMESPACE_SELECTOR)
    return [
        o.with_namespace(o.directory.rpartition("/")[2])
        if not o.namespace and o.directory in found and o.group_kind not in skip
        else o
        for o in objs
    ]


def _placement(obj: Manifest, scope: Scope) -> Problem | None:
    expected = _EXPECTED_DIR.get(obj.group_kind)
    if expected is None:
        if scope is Scope.UNKNOWN:
            if obj.top_directory in ("cluster", "namespaces"):
                return None
            expected = "namespaces"
        else:
            expected = "cluster" if scope is Scope.CLUSTER else "namespaces"
    if obj.top_directory == expected:
        return None
    return Problem.about(
        errors.INCORRECT_TOP_LEVEL_DIRECTORY,
        f"{_DIR_RULE[expected]}; move this {obj.kind} to {expected}/",
        obj,
    )


def _build_tree(objs: list[Manifest]) -> Node:
    root = Node("namespaces")
    for obj in objs:
        node = root
        parts = obj.directory.split("/")[1:]
        for i, part in enumerate(parts):
            node = node.children.setdefault(part, Node("/".join(["namespaces", *parts[: i + 1]])))
        node.objects.append(obj)
    return root


@dataclass
class _Walk:
    modes: dict[GroupKind, str]
    selectors: dict[str, Manifest]
    problems: list[Problem] = field(default_factory=list)
    out: list[Manifest] = field(default_factory=list)

    def visit(self, node: Node, inherited: list[Manifest]) -> bool:
        """Walk ``node``; True when a namespace directory is at or below it."""
        namespaces = node.namespaces()
        if len(namespaces) > 1:
            self.problems += [
                Problem.about(
                    errors.MULTIPLE_SINGLETONS,
                    f"directory {node.path}/ declares {len(namespaces)} Namespaces; it may declare one",
                    n,
                )
                for n in namespaces
            ]
            return True
        if namespaces:
            self._namespace(node, namespaces[0], inherited)
            return True
        own = [o for o in node.objects if o.group_kind != kinds.NAMESPACE_SELECTOR]
        for obj in own:
            if self.modes.get(obj.group_kind) == "none":
                self.problems.append(
                    Problem.about(
                        errors.ILLEGAL_ABSTRACT_NAMESPACE_OBJECT_KIND,
                        f"{obj.kind} has hierarchyMode none and may not be declared in the abstract "
                        f"directory {node.path}/",
                        obj,
                    )
                )
        below = [self.visit(child, inherited + own) for child in node.children.values()]
        if own and not any(below):
            where = "has no subdirectories" if not node.children else "has no namespace below it"
            self.problems.append(
                Problem(
                    errors.UNSYNCABLE_RESOURCES,
                    f"abstract directory {node.path}/ holds objects but {where};"
                    " its objects would reach no namespace",
                    source=node.path,
                    hint="add a namespace directory below it, or move them",
                )
            )
        return any(below)

    def _namespace(self, node: Node, namespace: Manifest, inherited: list[Manifest]) -> None:
        for child in node.children.values():
            self.problems.append(
                Problem(
                    errors.ILLEGAL_NAMESPACE_SUBDIRECTORY,
                    f"namespace directory {node.path}/ may not have subdirectories such as {child.path}/",
                    source=child.path,
                )
            )
        misplaced = [s for s in self.selectors.values() if s.directory == node.path]
        self.problems += [
            Problem.about(
                errors.ILLEGAL_KIND_IN_NAMESPACES,
                "NamespaceSelectors may not be declared in a namespace directory",
                s,
            )
            for s in misplaced
        ]
        objects = [o for o in node.objects if o.group_kind != kinds.NAMESPACE_SELECTOR]
        objects += [o.with_namespace(namespace.name) for o in inherited]
        for obj in objects:
            if self._selected(obj, namespace):
                self.out.append(obj)

    def _selected(self, obj: Manifest, namespace: Manifest) -> bool:
        name = obj.annotations.get(NAMESPACE_SELECTOR_ANNOTATION)
        if name is None or obj.group_kind == kinds.NAMESPACE:
            return True
        selector = self.selectors.get(name)
        if selector is None:
            self.problems.append(
                Problem.about(
                    errors.OBJECT_HAS_UNKNOWN_SELECTOR,
                    f"{NAMESPACE_SELECTOR_ANNOTATION}={name} names no declared NamespaceSelector",
                    obj,
                )
            )
            return False
        if not (obj.directory + "/").startswith(selector.directory + "/"):
            self.problems.append(
                Problem.about(
                    errors.OBJECT_HAS_UNKNOWN_SELECTOR,
                    f"NamespaceSelector {name!r} is declared in "
                    f"{selector.directory}/, not in this object's "
                    "directory or a parent of it",
                    obj,
                )
            )
            return False
        try:
            parsed = namespace_selection.read(selector)
        except selectors.SelectorError:
            return False  # reported once by namespace_selection.validate
        return parsed.selector.matches(namespace.labels)


def modes(objs: list[Manifest]) -> dict[GroupKind, str]:
    """GroupKind → effective hierarchy mode ("inherit" or "none"), from the HierarchyConfigs."""
    table: dict[GroupKind, str] = {}
    for obj in (o for o in objs if o.group_kind == kinds.HIERARCHY_CONFIG):
        for resource in hierarchy_resources(obj):
            mode = str(resource.get("hierarchyMode", "")) or "inherit"
            for gk in hierarchy_group_kinds(resource):
                table[gk] = "none" if mode == "none" else "inherit"
    return table


def flatten(
    objs: list[Manifest], scoper: Scoper, config_problems: Sequence[Problem]
) -> tuple[list[Manifest], list[Problem]]:
    """Cluster objects plus every namespace's objects with inheritance and selectors applied.

    ``config_problems``: what the rules over the HierarchyConfigs found (the read stage runs them);
    reported after misplaced objects and, like them, stopping the walk when one blocks."""
    problems = [p for o in objs if (p := _placement(o, scoper.scope(o.group_kind)))]
    problems += config_problems
    problems += namespace_selection.validate(objs, hierarchical=True)
    if any(p.blocking for p in problems):
        return [], problems
    in_tree = [o for o in objs if o.top_directory == "namespaces"]
    walk = _Walk(modes(objs), {o.name: o for o in in_tree if o.group_kind == kinds.NAMESPACE_SELECTOR})
    walk.visit(_build_tree(in_tree), [])
    cluster = [o for o in objs if o.top_directory == "cluster"]
    return cluster + walk.out, problems + walk.problems


def flatten_leaves(
    objs: list[Manifest], scoper: Scoper, dirs: frozenset[str]
) -> tuple[list[Manifest], list[Problem]]:
    """``flatten`` for some objects of a source, each in ``cluster/`` or directly in one of the
    namespace directories ``dirs`` and selecting no namespace (so nothing inherits from them and
    the walk would keep each as it is): the same placement problems, the same objects."""
    problems = [p for o in objs if (p := _placement(o, scoper.scope(o.group_kind)))]
    problems += namespace_selection.validate(objs, hierarchical=True)
    if any(p.blocking for p in problems):
        return [], problems
    cluster = [o for o in objs if o.top_directory == "cluster"]
    return cluster + [o for o in objs if o.top_directory == "namespaces" and o.directory in dirs], problems
