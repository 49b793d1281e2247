"""What the policy stage of a pass reads from the cluster, as Gatekeeper's webhook and sync would
see it: the live objects of declared identities (each declared object is reviewed as an UPDATE of
its live self; taken from the plan's LISTs, no request of its own) and, for referential policies,
every live object of the kinds ``policy.referential`` names, read with a budget of objects and
bytes (``ACM_LITE_POLICY_INVENTORY_OBJECTS``, ``ACM_LITE_POLICY_INVENTORY_MB``).

I/O: one paginated LIST per referential kind (inside the sync's namespace for a tenant sync).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from acm_lite import errors, policy
from acm_lite.cluster import live
from acm_lite.cluster.client import ApiError, Client
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import Problem
from acm_lite.objects import GroupKind, Manifest, ObjectId
from acm_lite.plan import planner
from acm_lite.policy import referential as referential_mod
from acm_lite.policy import sandbox
from acm_lite.policy.referential import SyncKind

DEFAULT_OBJECTS = 20_000
DEFAULT_MB = 64


def budget() -> live.Budget:
    """The referential data's budget: objects and MiB of JSON, from the environment when set."""
    return live.Budget(
        int(sandbox.env_number("ACM_LITE_POLICY_INVENTORY_OBJECTS", DEFAULT_OBJECTS)),
        int(sandbox.env_number("ACM_LITE_POLICY_INVENTORY_MB", DEFAULT_MB) * 1024 * 1024),
    )


def read_kinds(
    cluster: Client,
    discovery: Discovery,
    kinds: list[SyncKind],
    *,
    scope: str | None = None,
    limit: live.Budget | None = None,
) -> tuple[list[tuple[ObjectId, dict[str, Any]]], list[Problem]]:
    """Every live object of ``kinds`` (a kind the cluster does not serve has none), until the
    budget is spent: then a coded warning names the kind, and the kinds after it are not read.
    A tenant sync (``scope``) reads its own namespace only, and no cluster-scoped kind."""
    limit = limit or budget()
    out: list[tuple[ObjectId, dict[str, Any]]] = []
    for kind in kinds:
        gk = GroupKind(kind.group, kind.kind)
        resource = discovery.find(gk, kind.version or None)
        if resource is None or (scope is not None and not resource.namespaced):
            continue
        try:
            items, truncated = live.list_bounded(cluster, resource, limit, scope)
        except ApiError as e:
            if e.status == 404:  # the CRD went away between discovery and list
                continue
            raise e.to_acm(f"list {resource.plural} for the policies' data.inventory") from e
        for item in items:
            meta = item.get("metadata") or {}
            out.append((ObjectId(gk.group, gk.kind, meta.get("namespace", ""), meta.get("name", "")), item))
        if truncated:
            return out, [
                Problem(
                    errors.REFERENTIAL_DATA_LIMIT,
                    f"data.inventory holds {len(out)} live objects, the most its budget allows; "
                    f"{kind} and the kinds after it were read in part or not at all",
                    hint="narrow the Config's syncOnly or raise ACM_LITE_POLICY_INVENTORY_OBJECTS / _MB",
                )
            ]
    return out, []


def live_for_policy(
    declared: list[Manifest],
    current: Mapping[ObjectId, dict[str, Any]],
    referential: list[tuple[ObjectId, dict[str, Any]]],
    recorded: set[ObjectId],
    opts: planner.PlanOptions,
) -> policy.Live:
    """The policy pass's view of the cluster: old objects for the declared identities that exist,
    and the referential objects that will still exist after the commit and are not declared."""
    declared_ids = {o.id for o in declared}
    pruned = planner.pruned(declared_ids, current, recorded, opts)
    return policy.Live(
        old={oid: body for oid, body in current.items() if oid in declared_ids},
        inventory=referential_mod.live_inventory(referential, declared_ids, pruned),
    )


def _selects_namespaces(policy_objects: list[Manifest]) -> bool:
    for o in policy_objects:
        match = (o.body.get("spec") or {}).get("match") if o.group == "constraints.gatekeeper.sh" else None
        if isinstance(match, dict) and match.get("namespaceSelector") is not None:
            return True
    return False


def live_namespaces(
    cluster: Client, objs: list[Manifest], policy_objects: list[Manifest]
) -> dict[str, dict[str, Any]]:
    """The live Namespaces a constraint's ``namespaceSelector`` judges declared objects by, as
    Gatekeeper's cache of the cluster holds them: those the declared objects sit in without
    declaring them (a declared Namespace is judged as declared). Read only when a constraint
    selects namespaces: one GET each (a tenant's few), or one LIST past 16. A Namespace the
    daemon may not read or that does not exist is left out (the constraint then fails closed,
    naming it)."""
    if not _selects_namespaces(policy_objects):
        return {}
    declared = {o.name for o in objs if o.kind == "Namespace" and not o.group}
    wanted = sorted({o.namespace for o in objs if o.namespace} - declared)
    if not wanted:
        return {}
    try:
        if len(wanted) > 16:
            listed = cluster.request("GET", "/api/v1/namespaces").get("items") or []
            return {
                str(item["metadata"]["name"]): item for item in listed if item["metadata"]["name"] in wanted
            }
        found: dict[str, dict[str, Any]] = {}
        for name in wanted:
            try:
                found[name] = cluster.request("GET", f"/api/v1/namespaces/{quote(name, safe='')}")
            except ApiError as e:
                if e.status not in (403, 404):
                    raise
        return found
    except ApiError as e:
        if e.status == 403:
            return {}
        raise e.to_acm("Namespaces, read for the constraints' namespaceSelectors") from e
