"""Policy Controller in-process: Gatekeeper ConstraintTemplates (Rego and CEL), Constraints and
ExpansionTemplates evaluated against the declared set before anything reaches a cluster: offline
(``vet``) every object is a CREATE; against a cluster, one that exists is an UPDATE of its live
self, and ``data.inventory`` holds the live objects of the kinds ``referential`` names.

No cluster I/O; ``library`` and ``verify`` read policy and gator Suite files from disk.
Templates come from repositories, so they compile and run in a budgeted child process
(``sandbox``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest, ObjectId
from acm_lite.policy import referential, sandbox


@dataclass(frozen=True)
class Live:
    """What the cluster holds, for a policy pass against it: the live objects of declared
    identities (``old``: reviewed as UPDATEs of them) and the live objects ``data.inventory``
    holds beside the declared set (``inventory``)."""

    old: Mapping[ObjectId, dict[str, Any]] = field(default_factory=dict)
    inventory: Sequence[dict[str, Any]] = ()


def _check(
    objs: list[Manifest],
    policy_objects: list[Manifest],
    live_namespaces: dict[str, dict[str, Any]] | None,
    live: Live,
    progress: sandbox.Progress,
) -> list[Problem]:
    from acm_lite.policy import model, review

    policies = model.build(policy_objects, progress.mark)
    if policies.empty and not policies.expansions:
        return []
    violations, problems = review.evaluate(
        objs, policies, live_namespaces, extra_inventory=live.inventory, mark=progress.mark, live=live.old
    )
    return problems + [v.problem() for v in violations]


def stopped_problem(
    stopped: sandbox.Stopped, objs: list[Manifest], policy_objects: list[Manifest]
) -> Problem:
    """The coded problem of a policy pass that was stopped: against the policy object being
    compiled (ACM3001), or the declared object being evaluated (ACM3004)."""
    culprit = (
        policy_objects[stopped.policy_index] if 0 <= stopped.policy_index < len(policy_objects) else None
    )
    label = f"{culprit.kind}/{culprit.name}" if culprit is not None else "a policy"
    if 0 <= stopped.object_index < len(objs):
        return Problem.about(
            errors.POLICY_EVALUATION_ERROR,
            f"{label} could not be evaluated ({stopped.reason}); failing closed",
            objs[stopped.object_index],
        )
    message = f"{label} stopped the policy engine while compiling ({stopped.reason})"
    if culprit is not None:
        return Problem.about(errors.TEMPLATE_INVALID, message, culprit)
    return Problem(errors.POLICY_EVALUATION_ERROR, message)


def check(
    objs: list[Manifest],
    policy_objects: list[Manifest],
    live_namespaces: dict[str, dict[str, Any]] | None = None,
    live: Live | None = None,
) -> list[Problem]:
    """The policy stage: every violation and every broken policy, as coded problems (deny and
    broken policies block; warn and dryrun are reported only). Without ``live`` (offline) every
    object is reviewed as a CREATE and ``data.inventory`` holds the declared set only."""
    if not policy_objects:
        return []
    found = referential.wanted(policy_objects).problems
    given = live or Live()
    outcome = sandbox.run(lambda progress: _check(objs, policy_objects, live_namespaces, given, progress))
    if isinstance(outcome, sandbox.Stopped):
        return [*found, stopped_problem(outcome, objs, policy_objects)]
    return found + outcome
