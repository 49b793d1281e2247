"""ACM1040/ACM1041: label and annotation keys and values the API server's object-meta validation
would refuse, caught before a commit is applied (apimachinery's qualified-name rules).

Label keys and annotation keys are qualified names: an optional DNS-1123 subdomain prefix of at
most 253 characters and a ``/``, then a name of at most 63 characters of ``[-A-Za-z0-9_.]``
that starts and ends alphanumeric. Annotation keys are checked lower-cased (the API server does
the same), so ``Example.com/Key`` is a valid annotation key but not a valid label key. Label
values are empty or a name; annotations may hold anything, but at most 256 KiB in all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from acm_lite import errors
from acm_lite.errors import Problem, shown
from acm_lite.objects import Manifest
from acm_lite.validate import workloads
from acm_lite.validate.names import is_subdomain

NAME_MAX = 63
LABEL_VALUE_MAX = 63
ANNOTATIONS_MAX_BYTES = 256 * 1024
_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_NAME_RULE = (
    "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric "
    f"character, at most {NAME_MAX} characters"
)


# Values in messages are cut short: a hostile key or value can be megabytes long.
@lru_cache(maxsize=8192)
def qualified_name_error(key: str) -> str | None:
    """Why ``key`` is not a qualified name, or None. Cached: the same keys recur on every object."""
    parts = key.split("/")
    if len(parts) > 2:
        return "a qualified name has at most one '/' (an optional DNS subdomain prefix, then a name)"
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "the prefix before '/' is empty"
        if not is_subdomain(prefix):
            return (
                f"the prefix {shown(prefix)} is not a DNS-1123 subdomain (lower-case letters, "
                "digits, '-' and '.', at most 253 characters)"
            )
    if not name:
        return "the name part is empty"
    if len(name) > NAME_MAX or not _NAME.fullmatch(name):
        return f"the name part {shown(name)} must be {_NAME_RULE}"
    return None


def label_value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None (empty is valid)."""
    if not value:
        return None
    if len(value) > LABEL_VALUE_MAX or not _NAME.fullmatch(value):
        return f"must be empty or {_NAME_RULE.replace(str(NAME_MAX), str(LABEL_VALUE_MAX))}"
    return None


@lru_cache(maxsize=8192)
def _label_ok(key: str, value: str) -> bool:
    """The common case, answered from a cache: the same labels recur on many objects."""
    return qualified_name_error(key) is None and label_value_error(value) is None


def _labels(obj: Manifest, labels: dict[str, Any], where: str) -> list[Problem]:
    problems = []
    for key, value in labels.items():
        if not isinstance(key, str) or (isinstance(value, str) and _label_ok(key, value)):
            continue  # a non-string key is the reader's error
        reason = qualified_name_error(key)
        if reason:
            problems.append(
                Problem.about(errors.INVALID_LABEL, f"{where} key {shown(key)} is invalid: {reason}", obj)
            )
        if isinstance(value, str):
            reason = label_value_error(value)
            if reason:
                problems.append(
                    Problem.about(
                        errors.INVALID_LABEL, f"{where} {shown(key)}: value {shown(value)} {reason}", obj
                    )
                )
    return problems


def _annotations(obj: Manifest, annotations: dict[str, Any], where: str) -> list[Problem]:
    problems = []
    size = 0
    for key, value in annotations.items():
        if not isinstance(key, str):
            continue
        reason = qualified_name_error(key.lower())
        if reason:
            problems.append(
                Problem.about(
                    errors.INVALID_ANNOTATION, f"{where} key {shown(key)} is invalid: {reason}", obj
                )
            )
        size += len(key) + (len(value) if isinstance(value, str) else 0)
    if size * 4 > ANNOTATIONS_MAX_BYTES:  # characters are 1-4 bytes: measure exactly only then
        total = _utf8_size(annotations)
        if total > ANNOTATIONS_MAX_BYTES:
            problems.append(
                Problem.about(
                    errors.INVALID_ANNOTATION,
                    f"{where} total {total} bytes, more than the {ANNOTATIONS_MAX_BYTES} bytes "
                    "(256 KiB) the API server accepts",
                    obj,
                    hint="keep large data in a ConfigMap, not in annotations",
                )
            )
    return problems


def _template(obj: Manifest) -> list[Problem]:
    """A workload's pod template labels and annotations, and its selector's matchLabels."""
    found = workloads.pod_template(obj)
    if found is None or not found[0]:
        return []
    path, template = found
    meta = workloads.mapping(template.get("metadata"))
    selector = workloads.mapping(workloads.mapping(obj.spec.get("selector")).get("matchLabels"))
    return (
        _labels(obj, workloads.mapping(meta.get("labels")), f"{path}.metadata.labels")
        + _annotations(obj, workloads.mapping(meta.get("annotations")), f"{path}.metadata.annotations")
        + _labels(obj, selector, "spec.selector.matchLabels")
    )


def _utf8_size(annotations: dict[str, Any]) -> int:
    return sum(
        len(k.encode()) + (len(v.encode()) if isinstance(v, str) else 0)
        for k, v in annotations.items()
        if isinstance(k, str)
    )


def check(obj: Manifest) -> list[Problem]:
    problems = _template(obj) if obj.group_kind in workloads.POD_TEMPLATE_PATHS else []
    if obj.labels:
        problems += _labels(obj, obj.labels, "metadata.labels")
    if obj.annotations:
        problems += _annotations(obj, obj.annotations, "metadata.annotations")
    return problems
