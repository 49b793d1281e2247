"""`fleet status` counts each cluster's managed objects that are not Current, from the health the
RootSync's status records (objectHealth)."""

from __future__ import annotations

from acm_lite.fleet.fanout import ClusterState
from acm_lite.fleet.registry import FleetCluster
from acm_lite.status.model import State, SyncStatus


def test_unhealthy_objects_are_every_status_but_current() -> None:
    status = SyncStatus.from_status(
        {
            "state": "SYNCED",
            "objectHealth": {"Current": 5, "InProgress": 2, "Failed": 1, "Terminating": 0, "Unknown": 1},
        }
    )
    row = ClusterState(FleetCluster("eks-prod"), reachable=True, status=status).to_dict()
    assert row["unhealthyObjects"] == 4


def test_no_recorded_health_counts_none() -> None:
    row = ClusterState(FleetCluster("edge"), reachable=True, status=SyncStatus(State.SYNCED)).to_dict()
    assert row["unhealthyObjects"] == 0
    assert ClusterState(FleetCluster("gone")).to_dict()["unhealthyObjects"] == 0


def test_health_counts_that_are_not_counts_read_as_zero() -> None:
    status = SyncStatus.from_status({"objectHealth": {"Failed": "many", "InProgress": -3, "Unknown": True}})
    assert ClusterState(FleetCluster("x"), status=status).to_dict()["unhealthyObjects"] == 0
