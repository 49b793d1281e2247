"""The read half of the pipeline for one cluster: source files → the declared set, or coded
problems. Config Sync's order: per-object rules, cluster selection, scope, tree (or namespace
defaulting), then rules over the final set. Stops after any stage that found a blocking problem.
Above both ``parse`` and ``validate``, which never import each other: what one needs of the other
is handed over here. Also the cluster names a source knows. No I/O beyond ``load`` reading files.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from acm_lite import api
from acm_lite.errors import Problem
from acm_lite.kinds import CLUSTER, CRD, NAMESPACE, POLICY_GROUPS, SOURCE_ONLY, Scoper
from acm_lite.metadata import (
    CLUSTER_NAME_SELECTOR_ANNOTATION,
    CLUSTER_SELECTOR_ANNOTATION,
    DEPENDS_ON,
    NAMESPACE_SELECTOR_ANNOTATION,
    cluster_name_selector,
    is_disabled,
)
from acm_lite.objects import Manifest
from acm_lite.parse import clusters, hierarchy, namespace_selection, reader, unstructured
from acm_lite.parse.clusters import ClusterTarget
from acm_lite.parse.namespace_selection import LiveNamespaces
from acm_lite.validate import (
    cluster_names,
    cluster_registry,
    config_data,
    crds,
    depends_on,
    directories,
    duplicates,
    hierarchy_config,
    kinds,
    management,
    metadata_syntax,
    metadata_values,
    names,
    namespaces,
    object_size,
    quantities,
    repo,
    reserved,
    reserved_metadata,
    scope,
    server_fields,
    unmanaged,
)
from acm_lite.validate.schema import SchemaChecker

HIERARCHY = api.HIERARCHY
UNSTRUCTURED = api.UNSTRUCTURED
SOURCE_FORMATS = api.SOURCE_FORMATS


@dataclass(frozen=True)
class Options:
    source_format: str = HIERARCHY
    default_namespace: str = "default"
    schema: bool = True
    tenant_namespace: str | None = None  # a tenant sync: only namespaced objects in it
    live_namespaces: LiveNamespaces | None = None  # for dynamic NamespaceSelectors; None offline


@dataclass
class Declared:
    """What one cluster should hold, and every problem found deciding it."""

    cluster: str | None
    objects: list[Manifest] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    policy: list[Manifest] = field(default_factory=list)  # Gatekeeper objects in the source
    live_namespaces: LiveNamespaces | None = None  # what dynamic NamespaceSelectors chose from

    @property
    def blocking(self) -> bool:
        return any(p.blocking for p in self.problems)


def load(root: Path, source_format: str, limits: reader.Limits | None = None) -> reader.ReadResult:
    """Read the manifests of a source root (only the four top directories for hierarchy)."""
    top = hierarchy.TOP_DIRS if source_format == HIERARCHY else None
    return reader.read(root, top_dirs=top, limits=limits)


def from_render(rendered: reader.ReadResult) -> reader.ReadResult:
    """Rendered objects as the read stage takes them: each named by the file kustomize read it
    from (its origin, relative to the sync directory), so a problem with it names that file; by
    the kustomization when kustomize recorded none. The kustomization stays in ``extra``."""
    manifests = []
    for m in rendered.manifests:
        origin = m.extra.get("origin") or ""
        source = posixpath.normpath(origin) if origin else m.source
        manifests.append(Manifest(m.body, source, m.index, {**m.extra, "kustomization": m.source}))
    return reader.ReadResult(manifests=manifests, problems=list(rendered.problems))


def needs_live_namespaces(source: reader.ReadResult, source_format: str) -> bool:
    """Whether declaring this source for a cluster needs the cluster's Namespaces (a dynamic
    NamespaceSelector in the unstructured format)."""
    return source_format == UNSTRUCTURED and namespace_selection.has_dynamic(source.manifests)


def declared_clusters(objs: list[Manifest]) -> list[str]:
    """Cluster names the source knows: Cluster objects and cluster-name-selector entries; names
    that are not valid cluster names (and could never be safe paths) are left out."""
    names: dict[str, None] = {}
    for obj in objs:
        if obj.group_kind == CLUSTER and obj.name:
            names[obj.name] = None
    for obj in objs:
        for name in cluster_name_selector(obj):
            names[name] = None
    return [n for n in names if cluster_names.valid(n)]  # the others are reported by vet


def _object_rules(hierarchical: bool) -> list[Callable[[Manifest], list[Problem]]]:
    own = reserved.reserved_namespaces()  # read once: the rules run for every object
    rules: list[Callable[[Manifest], list[Problem]]] = [
        metadata_values.check,
        reserved_metadata.check,
        lambda o: kinds.check(o, hierarchical=hierarchical),
        names.check,
        namespaces.check,
        lambda o: reserved.check(o, own),
        management.check,
        crds.check,
        server_fields.check,
        cluster_names.check,
        metadata_syntax.check,
        quantities.check,
        config_data.check,
        object_size.check,
    ]
    if hierarchical:
        rules.append(directories.check)
    return rules


def _raw_problems(objs: list[Manifest], hierarchical: bool) -> list[Problem]:
    rules = _object_rules(hierarchical)
    problems = [p for obj in objs for rule in rules for p in rule(obj)]
    problems += cluster_registry.check(objs, hierarchical=hierarchical)
    if hierarchical:
        problems += repo.check(objs)
    return problems


def _final_problems(objs: list[Manifest], options: Options) -> list[Problem]:
    problems = duplicates.check(objs) + unmanaged.check(objs) + depends_on.check(objs)
    if options.schema:
        checker = SchemaChecker(objs)
        problems += [p for obj in objs for p in checker.check(obj)]
    return problems


def _selected_copies(objs: list[Manifest], scoper: Scoper, options: Options) -> list[Problem]:
    """The namespace rules again for the copies NamespaceSelectors made, which had no namespace
    when the rules first ran: none may land in a reserved namespace, nor, in a tenant sync, in
    another namespace than the tenant's (a dynamic selector can pick any live Namespace)."""
    copies = [o for o in objs if NAMESPACE_SELECTOR_ANNOTATION in o.annotations]
    own = reserved.reserved_namespaces()
    problems = [p for obj in copies for p in reserved.check(obj, own)]
    if options.tenant_namespace:
        problems += scope.tenant(copies, scoper, options.tenant_namespace)
    return problems


def declare(source: reader.ReadResult, target: ClusterTarget, options: Options) -> Declared:
    """The declared set of ``target``; ``objects`` is empty when a problem blocks."""
    result = Declared(target.name, problems=list(source.problems), live_namespaces=options.live_namespaces)
    hierarchical = options.source_format == HIERARCHY
    objs = source.manifests
    result.problems += _raw_problems(objs, hierarchical)
    if result.blocking:
        return result
    if hierarchical:
        objs = hierarchy.set_object_namespaces(objs)
    objs, found = clusters.select(objs, target)
    result.problems += found
    if result.blocking:
        return result
    scoper = Scoper(objs)
    result.problems += scope.check(objs, scoper)
    if options.tenant_namespace:
        result.problems += scope.tenant(objs, scoper, options.tenant_namespace)
    if result.blocking:
        return result
    if hierarchical:
        objs, found = hierarchy.flatten(objs, scoper, hierarchy_config.check(objs, scoper))
    else:
        objs, found = unstructured.flatten(
            objs, scoper, options.tenant_namespace or options.default_namespace, options.live_namespaces
        )
    result.problems += found + _selected_copies(objs, scoper, options)
    if result.blocking:
        return result
    result.policy = [o for o in objs if o.group in POLICY_GROUPS]
    objs = [o for o in objs if o.group_kind not in SOURCE_ONLY and o.group not in POLICY_GROUPS]
    result.problems += _final_problems(objs, options)
    if not result.blocking:
        result.objects = objs
    return result


# Kinds and annotations whose objects shape how other objects are read (scope, selection,
# namespaces, inheritance, policy, dependencies): a commit touching one is declared in full.
_STRUCTURAL_KINDS = frozenset({CRD, NAMESPACE, *SOURCE_ONLY})
_STRUCTURAL_ANNOTATIONS = frozenset(
    {NAMESPACE_SELECTOR_ANNOTATION, CLUSTER_SELECTOR_ANNOTATION, CLUSTER_NAME_SELECTOR_ANNOTATION, DEPENDS_ON}
)


def structural(obj: Manifest) -> bool:
    """Whether declaring ``obj`` can change how other objects are declared: a CRD (scope, schema),
    a Namespace (managed or not), a selector or other source-only kind, a policy object, an
    acm-lite kind, or an object selected by cluster or namespace or depended on by name."""
    if obj.group_kind in _STRUCTURAL_KINDS or obj.group in POLICY_GROUPS or obj.group == api.GROUP:
        return True
    return not _STRUCTURAL_ANNOTATIONS.isdisjoint(obj.annotations)


@dataclass(frozen=True)
class Context:
    """What declaring some objects of a source needs of the whole declared set they join: its
    kinds' scopes and schemas (CRDs), and the Namespaces declared ``managed: disabled``."""

    scoper: Scoper
    schema: SchemaChecker | None
    unmanaged: frozenset[str]
    namespace_dirs: frozenset[str] = frozenset()  # hierarchy: the namespace directories

    @classmethod
    def of(cls, objs: list[Manifest], options: Options) -> Context:
        return cls(
            Scoper(objs),
            SchemaChecker(objs) if options.schema else None,
            frozenset(o.name for o in objs if o.group_kind == NAMESPACE and is_disabled(o)),
            hierarchy.namespace_dirs(objs) if options.source_format == HIERARCHY else frozenset(),
        )


def declare_some(objs: list[Manifest], target: ClusterTarget, options: Options, context: Context) -> Declared:
    """Some objects of a source declared as ``declare`` would declare them within the whole set
    ``context`` describes: the same rules, in the same order, run over these objects; whole-set
    rules see only them (the caller checks them against the rest). None of ``objs`` may be
    ``structural``, and in the hierarchical format each is in ``cluster/`` or directly in a
    namespace directory (nothing inherits from it): their declaration then depends on nothing
    else declared, and the tree walk would keep each as ``set_object_namespaces`` leaves it."""
    hierarchical = options.source_format == HIERARCHY
    result = Declared(target.name)
    rules = _object_rules(hierarchical)
    result.problems += [p for obj in objs for rule in rules for p in rule(obj)]
    result.problems += cluster_registry.check(objs, hierarchical=hierarchical)  # the Repo is unchanged
    if result.blocking:
        return result
    if hierarchical:
        objs = hierarchy.set_object_namespaces(objs, context.namespace_dirs)
    objs, found = clusters.select(objs, target)
    result.problems += found + scope.check(objs, context.scoper)
    if options.tenant_namespace:
        result.problems += scope.tenant(objs, context.scoper, options.tenant_namespace)
    if result.blocking:
        return result
    if hierarchical:
        objs, found = hierarchy.flatten_leaves(objs, context.scoper, context.namespace_dirs)
    else:
        objs, found = unstructured.flatten(
            objs, context.scoper, options.tenant_namespace or options.default_namespace, None
        )
    result.problems += found
    if result.blocking:
        return result
    result.problems += duplicates.check(objs) + depends_on.check(objs)
    result.problems += unmanaged.check(objs, context.unmanaged)
    if context.schema is not None:
        result.problems += [p for obj in objs for p in context.schema.check(obj)]
    if not result.blocking:
        result.objects = objs
    return result
