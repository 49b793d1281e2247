"""KNV1010/KNV1011: Config Sync's annotation and label prefixes are not for source objects,
except the annotations users set on purpose (selectors, management, lifecycle, deletion policy)."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.metadata import CONFIG_SYNC_PREFIXES, SOURCE_ANNOTATIONS
from acm_lite.objects import Manifest


def check(obj: Manifest) -> list[Problem]:
    problems = []
    bad = sorted(
        k for k in obj.annotations if k.startswith(CONFIG_SYNC_PREFIXES) and k not in SOURCE_ANNOTATIONS
    )
    if bad:
        problems.append(
            Problem.about(
                errors.ILLEGAL_ANNOTATION_DEFINITION,
                f"annotations {', '.join(bad)} are reserved for the syncer and may not be declared",
                obj,
                hint="remove them from the object",
            )
        )
    bad = sorted(k for k in obj.labels if k.startswith(CONFIG_SYNC_PREFIXES))
    if bad:
        problems.append(
            Problem.about(
                errors.ILLEGAL_LABEL_DEFINITION,
                f"labels {', '.join(bad)} are reserved for the syncer and may not be declared",
                obj,
                hint="remove them from the object",
            )
        )
    return problems
