"""Talking to one Kubernetes API server: connection (``client`` over the lean ``transport``),
discovery, live state.

Every request acm-lite sends to a cluster goes through ``client.Cluster`` (``devcluster`` only
probes the readiness of the control planes it starts); the packages using it decide what to read
and write.
"""
