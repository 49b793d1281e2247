"""Repositories that once made a pass raise (and killed the daemon's loop): a pass over each ends
with coded problems recorded in the status, or syncs, and never raises (tests/hostile/daemon/repos/).
Whether the reader reports them as input errors or a stage fails on them (ACM2012) is the
reader's business; the pass must end either way."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from acm_lite import errors
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from acm_lite.status import store

REPOS = Path(__file__).resolve().parents[1] / "hostile" / "daemon" / "repos"


@pytest.mark.parametrize("case", sorted(p.name for p in REPOS.iterdir() if p.is_dir()))
def test_a_hostile_repository_never_raises_out_of_a_pass(
    control_plane: APIServer, tmp_path: Path, case: str
) -> None:
    repo = tmp_path / case
    shutil.copytree(REPOS / case, repo)
    cluster = Cluster.connect(control_plane.kubeconfig)
    spec = SyncSpec(repo=str(repo), name=f"hostile-{uuid.uuid4().hex[:6]}", source_format="unstructured")
    result = pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache"))
    assert all(errors.lookup(p.code.id) is p.code for p in result.problems)
    if result.exception is not None:  # a stage failed on it: coded, recorded, no traceback
        assert [p.code for p in result.problems] == [errors.INTERNAL_ERROR]
        assert type(result.exception).__name__ in result.problems[0].message
    stored = store.read(cluster, spec.name)
    assert stored is not None and result.status_error is None
    assert stored["status"]["state"] == result.status.state.value
    if not result.ok:
        assert stored["status"]["stage"] and stored["status"]["errors"]
        assert "Traceback" not in str(stored["status"])
