"""KNV1031 (no metadata.name) and KNV1036 (a name the API server would refuse)."""

from __future__ import annotations

import re

from acm_lite import errors
from acm_lite.errors import Problem
from acm_lite.objects import Manifest

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(DNS1123_SUBDOMAIN.fullmatch(name))


def is_label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS1123_LABEL.fullmatch(name))


def _path_segment_ok(name: str) -> bool:
    return name not in (".", "..") and "/" not in name and "%" not in name


def check(obj: Manifest) -> list[Problem]:
    name = obj.name
    if not name:
        return [Problem.about(errors.MISSING_OBJECT_NAME, "metadata.name is missing or empty", obj)]
    rbac = obj.group == "rbac.authorization.k8s.io"
    if (rbac and not _path_segment_ok(name)) or (not rbac and not is_subdomain(name)):
        rule = (
            "may not be '.' or '..' or contain '/' or '%'"
            if rbac
            else "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
            "at most 253 characters"
        )
        return [
            Problem.about(errors.INVALID_METADATA_NAME, f"metadata.name {name!r} is invalid: it {rule}", obj)
        ]
    return []
