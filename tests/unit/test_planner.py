"""What a pass records before planning (``planner.manageable``) against what the plan then
manages: the same objects, so the early inventory write needs no second one."""

from __future__ import annotations

from typing import Any

import pytest

from acm_lite.objects import Manifest
from acm_lite.plan import ownership, planner
from acm_lite.plan.changeset import Action


def configmap(name: str, **annotations: str) -> Manifest:
    return Manifest(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": "team",
                **({"annotations": annotations} if annotations else {}),
            },
            "data": {"k": name},
        },
        f"{name}.yaml",
        0,
    )


def live(obj: Manifest, sync: str | None) -> dict[str, Any]:
    body = ownership.stamp(obj, sync, "c0ffee") if sync else obj.body
    return {**body, "metadata": {**body["metadata"], "uid": f"uid-{obj.id.name}"}}


@pytest.mark.parametrize("take_over", [False, True])
def test_manageable_names_exactly_what_the_plan_creates_updates_or_keeps(take_over: bool) -> None:
    disabled = {"configmanagement.gke.io/managed": "disabled"}
    new, ours, changed, unowned, theirs, off, off_ours = (
        configmap("new"),
        configmap("ours"),
        configmap("changed"),
        configmap("unowned"),
        configmap("theirs"),
        configmap("off", **disabled),
        configmap("off-ours", **disabled),
    )
    before_change = configmap("changed")
    before_change.body["data"] = {"k": "old"}
    current = {
        ours.id: live(ours, "root"),
        changed.id: live(before_change, "root"),
        unowned.id: live(unowned, None),
        theirs.id: live(theirs, "other"),
        off_ours.id: live(off_ours, "root"),
    }
    declared = [new, ours, changed, unowned, theirs, off, off_ours]
    opts = planner.PlanOptions("root", "c0ffee", take_over)

    changes = planner.plan(declared, current, set(), opts)
    managed = {c.id for c in changes.changes if c.action in (Action.CREATE, Action.UPDATE, Action.UNCHANGED)}
    actions = {c.id.name: c.action for c in changes.changes}

    assert planner.manageable(declared, current, opts) == managed
    assert actions == {
        "new": Action.CREATE,
        "ours": Action.UNCHANGED,
        "changed": Action.UPDATE,
        "unowned": Action.UPDATE,
        "off": Action.SKIP,
        "off-ours": Action.UNMANAGE,
        "theirs": Action.UPDATE if take_over else Action.SKIP,
    }


def test_pruned_names_exactly_what_the_plan_deletes() -> None:
    """What the policy stage leaves out of data.inventory before the plan is made: the recorded
    objects the plan prunes, not those it detaches, leaves to another sync or finds gone."""
    kept, gone, detached, taken, missing = (
        configmap("kept"),
        configmap("gone"),
        configmap("detached", **{"client.lifecycle.config.k8s.io/deletion": "detach"}),
        configmap("taken"),
        configmap("missing"),
    )
    current = {
        kept.id: live(kept, "root"),
        gone.id: live(gone, "root"),
        detached.id: live(detached, "root"),
        taken.id: live(taken, "other"),
    }
    recorded = {o.id for o in (kept, gone, detached, taken, missing)}
    opts = planner.PlanOptions("root")
    pruned = planner.pruned({kept.id}, current, recorded, opts)
    assert pruned == {gone.id}
    plan = planner.plan([kept], current, recorded, opts)
    assert pruned == {c.id for c in plan.changes if c.action is Action.PRUNE}
