"""Policy Controller in-process: Gatekeeper ConstraintTemplates (Rego and CEL), Constraints and
ExpansionTemplates evaluated against the declared set before anything reaches a cluster.

No cluster I/O; ``library`` reads policy files from disk.
"""

from __future__ import annotations

from typing import Any

from acm_lite.errors import Problem
from acm_lite.objects import Manifest


def check(objs: list[Manifest], policy_objects: list[Manifest],
          live_namespaces: dict[str, dict[str, Any]] | None = None) -> list[Problem]:
    """The policy stage: every violation and every broken policy, as coded problems (deny and
    broken policies block; warn and dryrun are reported only)."""
    from acm_lite.policy import model, review

    policies = model.build(policy_objects)
    if policies.empty and not policies.expansions:
        return []
    violations, problems = review.evaluate(objs, policies, live_namespaces)
    return problems + [v.problem() for v in violations]
