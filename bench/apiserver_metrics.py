"""What the API server itself counted, read from its /metrics: shared by the benchmarks."""

from __future__ import annotations

import re

from acm_lite.cluster.client import Cluster

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"})
_METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")


def server_writes(cluster: Cluster) -> int:
    """Write requests the API server has counted, apart from its own leases and events."""
    total = 0
    for line in cluster.request_text("/metrics").splitlines():
        match = _METRIC.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
            if labels.get("verb") in WRITE_VERBS and labels.get("resource") not in ("leases", "events"):
                total += int(float(match.group("value")))
    return total
