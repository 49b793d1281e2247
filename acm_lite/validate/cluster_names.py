"""ACM1016: every ``cluster-name-selector`` entry must be a cluster name (a DNS-1123 subdomain).

The entries name the clusters `hydrate` writes a directory for; an entry such as ``../../x`` or
``/etc`` would otherwise become a path outside the output.
"""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest
from acm_lite.validate.cluster_registry import CLUSTER_NAME_SELECTOR_ANNOTATION
from acm_lite.validate.names import is_subdomain

RULE = "a cluster name must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"


def valid(name: str) -> bool:
    """Whether ``name`` may name a cluster (and so a directory of hydrated output)."""
    return is_subdomain(name)


def entries(obj: Manifest) -> list[str]:
    """The non-empty entries of the object's cluster-name-selector."""
    value = obj.annotations.get(CLUSTER_NAME_SELECTOR_ANNOTATION)
    if not isinstance(value, str):
        return []
    return [n.strip() for n in value.split(",") if n.strip()]


def check(obj: Manifest) -> list[Problem]:
    bad = [n for n in entries(obj) if not valid(n)]
    if not bad:
        return []
    return [Problem.about(errors.INVALID_CLUSTER_NAME,
                          f"{CLUSTER_NAME_SELECTOR_ANNOTATION} names {', '.join(map(repr, bad))}: "
                          f"{RULE}", obj, hint="list cluster names separated by commas")]
