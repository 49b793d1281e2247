"""ACM1016: every ``cluster-name-selector`` entry must be a cluster name (a DNS-1123 subdomain).

The entries name the clusters `hydrate` writes a directory for; an entry such as ``../../x`` or
``/etc`` would otherwise become a path outside the output.
"""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.metadata import CLUSTER_NAME_SELECTOR_ANNOTATION, cluster_name_selector
from acm_lite.objects import Manifest
from acm_lite.validate.names import is_subdomain

RULE = "a cluster name must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"


def valid(name: str) -> bool:
    """Whether ``name`` may name a cluster (and so a directory of hydrated output)."""
    return is_subdomain(name)


def check(obj: Manifest) -> list[Problem]:
    bad = [n for n in cluster_name_selector(obj) if not valid(n)]
    if not bad:
        return []
    return [
        Problem.about(
            errors.INVALID_CLUSTER_NAME,
            f"{CLUSTER_NAME_SELECTOR_ANNOTATION} names {', '.join(map(repr, bad))}: {RULE}",
            obj,
            hint="list cluster names separated by commas",
        )
    ]
