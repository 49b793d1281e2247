from __future__ import annotations

import pytest

from acm_lite import errors
from acm_lite.cli.exitcodes import ExitStatus, for_error


def test_codes_are_unique_and_well_formed() -> None:
    codes = errors.all_codes()
    assert len({c.id for c in codes}) == len(codes)
    assert all(c.id[:3] in ("KNV", "ACM") and c.id[3:].isdigit() for c in codes)


def test_registering_a_code_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="ACM9001 registered twice"):
        errors.register("ACM9001", "Another", errors.Category.PERMANENT, "x")
    with pytest.raises(ValueError, match="ToolchainMissing registered twice"):
        errors.register("ACM9999", "ToolchainMissing", errors.Category.PERMANENT, "x")


def test_render_names_code_place_and_fix() -> None:
    err = errors.AcmError(
        errors.INVALID_FLEET,
        "spec.clusters[2].name is empty",
        path="fleet.yaml",
        subject="Fleet/prod",
        hint="name it",
    )
    assert err.render() == (
        "ACM4001 InvalidFleet: spec.clusters[2].name is empty (fleet.yaml, Fleet/prod)\n  hint: name it"
    )
    assert err.to_dict() == {
        "code": "ACM4001",
        "name": "InvalidFleet",
        "message": "spec.clusters[2].name is empty",
        "path": "fleet.yaml",
        "subject": "Fleet/prod",
        "hint": "name it",
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (errors.INVALID_FLEET, ExitStatus.FAILURE),
        (errors.BINARY_BUILD_FAILED, ExitStatus.UNAVAILABLE),
        (errors.DEV_STATE_MISSING, ExitStatus.UNAVAILABLE),
    ],
)
def test_exit_status_follows_the_category(code: errors.Code, status: ExitStatus) -> None:
    assert for_error(errors.AcmError(code, "x")) == status


def test_an_error_becomes_a_problem_with_its_code_message_hint_and_path() -> None:
    err = errors.AcmError(
        errors.KUBECONFIG_ERROR, "cannot load", path="kubeconfig", subject="Secret a/b", hint="check it"
    )
    assert err.to_problem() == errors.Problem(
        errors.KUBECONFIG_ERROR, "cannot load", source="kubeconfig", hint="check it"
    )
    obj = {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "a", "name": "b"}
    moved = err.to_problem(source="repo.yaml", obj=obj, message="prod: cannot load")
    assert moved == errors.Problem(
        errors.KUBECONFIG_ERROR, "prod: cannot load", source="repo.yaml", obj=obj, hint="check it"
    )
