"""Objects the API server rejects (with the acm-lite code that must catch them offline) and edge
cases it accepts: the corpus in tests/hostile/vetcli plus the size limits, generated here so the
repository does not store megabytes of filler."""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parents[1] / "hostile" / "vetcli"
KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    code: str | None  # None: valid, the API server accepts it
    stored: bool = False  # only storing it shows the limit (a dry run never reaches etcd)

    def in_namespace(self, namespace: str) -> dict[str, Any]:
        body = copy.deepcopy(self.body)
        body["metadata"]["namespace"] = namespace
        return body


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", **extra}


def _config_map(name: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, **meta), "data": data}


def _pod_template(name: str, size: int) -> dict[str, Any]:
    """A PodTemplate whose compact JSON is about ``size`` bytes (its container args fill it)."""
    chunk = 64 * KIB
    args = ["x" * chunk] * (size // chunk) + ["x" * (size % chunk)]
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": _meta(name),
        "template": {"spec": {"containers": [{"name": "c", "image": "nginx", "args": args}]}},
    }


def generated() -> list[Case]:
    limit = 256 * KIB
    secret = base64.b64encode(b"\0" * (MIB + 1)).decode()
    return [
        Case("annotations-over-256KiB", _config_map("s1", {}, annotations={"a": "x" * limit}), "ACM1041"),
        Case("annotations-exactly-256KiB", _config_map("s2", {}, annotations={"a": "x" * (limit - 1)}), None),
        Case("configmap-data-over-1MiB", _config_map("s3", {"a": "x" * MIB, "b": "y"}), "ACM1045"),
        Case("configmap-data-exactly-1MiB", _config_map("s4", {"a": "x" * (MIB - 1), "b": "y"}), None),
        Case(
            "secret-data-over-1MiB",
            {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("s5"), "data": {"a": secret}},
            "ACM1045",
        ),
        Case(
            "quantity-megabyte-of-digits",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": _meta("s8"),
                "spec": {
                    "containers": [
                        {"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "1" * MIB + "x"}}}
                    ]
                },
            },
            "ACM1042",
        ),
        Case("object-over-1.5MiB", _pod_template("s6", 1600 * KIB), "ACM1046", stored=True),
        Case("object-under-1.5MiB", _pod_template("s7", 1400 * KIB), None, stored=True),
    ]


def corpus() -> list[Case]:
    """The stored cases: ``reject-CODE-*.yaml`` and ``accept-*.yaml``."""
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        parts = path.stem.split("-")
        cases.append(Case(path.stem, body, parts[1] if parts[0] == "reject" else None))
    return cases


def all_cases() -> list[Case]:
    return corpus() + generated()
