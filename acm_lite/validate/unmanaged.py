"""KNV1056: a managed object may not live in a Namespace declared ``managed: disabled``."""

from __future__ import annotations

from collections.abc import Collection

from acm_lite import errors, kinds
from acm_lite.errors import Problem
from acm_lite.metadata import is_disabled
from acm_lite.objects import Manifest


def check(objs: list[Manifest], unmanaged: Collection[str] | None = None) -> list[Problem]:
    """``unmanaged``: the Namespaces declared ``managed: disabled``, when ``objs`` are only some of
    the declared objects (by default those among ``objs``)."""
    if unmanaged is None:
        unmanaged = {o.name for o in objs if o.group_kind == kinds.NAMESPACE and is_disabled(o)}
    return [
        Problem.about(
            errors.MANAGED_RESOURCE_IN_UNMANAGED_NAMESPACE,
            f"Namespace {o.namespace!r} is declared unmanaged but this object in it is managed",
            o,
            hint="remove `managed: disabled` from the Namespace, or add it here",
        )
        for o in objs
        if o.namespace in unmanaged and not is_disabled(o)
    ]
