"""What `sync --once` prints and exits with for a pass that failed part-way: the stage, the codes,
how far it got, whether the status was recorded; never "synced … nothing to do"."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.cli import report
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.cli.sync import exit_status, result_json
from acm_lite.errors import AcmError, Problem
from acm_lite.objects import ObjectId
from acm_lite.plan.changeset import Action, Change, Outcome, Result
from acm_lite.reconcile.pipeline import SyncResult, SyncSpec
from acm_lite.status.model import State, SyncStatus

COMMIT = "0123456789abcdef0123"
SPEC = SyncSpec(repo="https://git.example/repo", name="root-sync")
DOWN = Problem(
    errors.API_SERVER_UNREACHABLE,
    "the API server at https://k failed 3 requests in "
    "a row (last: no answer within 2s); no further request was sent",
)


def _result(outcome: Outcome, i: int) -> Result:
    change = Change(Action.CREATE, ObjectId("", "ConfigMap", "n", f"c{i}"), "new")
    return Result(change, outcome)


def failed_at_apply(applied: int, planned: int) -> SyncResult:
    results = [_result(Outcome.CREATED, i) for i in range(applied)]
    status = SyncStatus(State.ERROR, commit=COMMIT, stage="apply", managed=planned, durations={"total": 4.2})
    return SyncResult(SPEC, status, problems=[DOWN], results=results, planned=planned)


def test_a_pass_stopped_during_apply_says_where_how_far_and_which_codes() -> None:
    result = failed_at_apply(120, 300)
    text = report.summary(result)
    assert text == (
        "ERROR: sync of 0123456789ab as 'root-sync' failed at stage apply — 120 of "
        "300 changes applied before the failure (120 created); 1 error(s): ACM2010 "
        "(4.2s)"
    )
    assert "synced" not in text and "nothing to do" not in text
    assert exit_status(result) is ExitStatus.UNAVAILABLE
    data = result_json(result)
    assert (data["stage"], data["applied"], data["planned"], data["statusRecorded"]) == (
        "apply",
        120,
        300,
        True,
    )


def test_a_pass_stopped_before_apply_says_nothing_was_applied() -> None:
    status = SyncStatus(State.ERROR, commit=COMMIT, stage="plan", durations={"total": 0.5})
    result = SyncResult(SPEC, status, problems=[DOWN])
    text = report.summary(result)
    assert text.startswith(
        "ERROR: sync of 0123456789ab as 'root-sync' failed at stage plan — "
        "nothing applied; 1 error(s): ACM2010"
    )
    assert "nothing to do" not in text


def test_a_status_that_could_not_be_written_is_said_so() -> None:
    result = failed_at_apply(5, 10)
    result.status_error = AcmError(
        errors.STATUS_NOT_RECORDED,
        "status of 'root-sync' not recorded: the API server at https://k failed 3 requests",
    )
    lines = report.summary(result).splitlines()
    assert lines[1].startswith("status could not be recorded: ACM2013 StatusNotRecorded")
    assert result_json(result)["statusRecorded"] is False
    ok = SyncResult(SPEC, SyncStatus(State.SYNCED, commit=COMMIT), status_error=result.status_error)
    assert exit_status(ok) is ExitStatus.UNAVAILABLE  # applied, but the status is not there


def test_permanent_errors_exit_1_and_a_clean_pass_0() -> None:
    parse = Problem(errors.OBJECT_PARSE, "cannot parse", source="a.yaml")
    status = SyncStatus(State.ERROR, commit=COMMIT, stage="parse")
    assert exit_status(SyncResult(SPEC, status, problems=[parse, DOWN])) is ExitStatus.FAILURE
    clean = SyncResult(SPEC, SyncStatus(State.SYNCED, commit=COMMIT))
    assert exit_status(clean) is ExitStatus.SUCCESS
    assert report.summary(clean).startswith("SYNCED: synced 0123456789ab as 'root-sync' — nothing to do")


def test_the_status_keeps_where_the_pass_stopped() -> None:
    status = SyncStatus(
        State.ERROR,
        commit=COMMIT,
        stage="apply",
        managed=301,
        message="stopped at apply: 120 of 300 changes applied before the failure",
    )
    stored = status.to_status()
    assert (stored["stage"], stored["managedObjects"], stored["message"]) == (
        "apply",
        301,
        "stopped at apply: 120 of 300 changes applied before the failure",
    )
    assert SyncStatus.from_status(stored).message == status.message
