"""Diffs never show a Secret's values: every value is ``***``, a changed one ``*** (before)`` /
``*** (after)`` (as kubectl diff), in the text and the JSON of `acm-lite diff`, for updates,
creations, prunes and unmanaged Secrets alike."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite.cli import diff as diff_cli
from acm_lite.objects import Manifest
from acm_lite.plan import ownership, render_diff
from acm_lite.plan.changeset import Action, Change, ChangeSet
from acm_lite.reconcile.pipeline import SyncResult, SyncSpec
from acm_lite.status.model import State, SyncStatus

CORPUS = Path(__file__).resolve().parents[1] / "hostile" / "secrets"
OLD, NEW, SAME, GONE, ADDED = "old-pass-1d8e", "new-pass-7a3f", "same-pass-4b2c", "gone-9e1", "add-5c7"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "team"}, **fields}


def change(action: Action, desired: dict[str, Any] | None, live: dict[str, Any] | None) -> Change:
    manifest = Manifest(desired, "secret.yaml", 0) if desired else None
    stamped = ownership.stamp(manifest, "root", "c0ffee") if manifest else None
    return Change(
        action,
        (manifest.id if manifest else Manifest(live or {}, "x", 0).id),
        "test",
        desired=stamped,
        live=live,
        manifest=manifest,
    )


def leaked(text: str) -> list[str]:
    values = (OLD, NEW, SAME, GONE, ADDED)
    return [v for v in values if v in text or b64(v) in text]


def test_a_changed_key_shows_before_and_after_masks_an_unchanged_one_a_plain_mask() -> None:
    live = secret(data={"password": b64(OLD), "user": b64(SAME), "old": b64(GONE)})
    desired = secret(data={"password": b64(NEW), "user": b64(SAME), "new": b64(ADDED)})
    text = render_diff.unified(change(Action.UPDATE, desired, live))
    assert leaked(text) == []
    assert "-  password: '*** (before)'" in text and "+  password: '*** (after)'" in text
    assert "   user: '***'" in text  # unchanged: masked, and no diff line
    assert "+  new: '***'" in text


def test_declared_string_data_compares_with_the_stored_data_and_stays_masked() -> None:
    live = secret(data={"token": b64(SAME), "key": b64(OLD)})
    desired = secret(stringData={"token": SAME, "key": NEW})
    text = render_diff.unified(change(Action.UPDATE, desired, live))
    assert leaked(text) == []
    assert "   token: '***'" in text
    assert "-  key: '*** (before)'" in text and "+  key: '*** (after)'" in text


@pytest.mark.parametrize("action", [Action.PRUNE, Action.UNMANAGE, Action.CREATE])
def test_every_action_masks(action: Action) -> None:
    applied = json.dumps(secret(stringData={"password": OLD}))
    live = secret(data={"password": b64(OLD)}, stringData={"odd": SAME})
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": applied}
    desired = secret(stringData={"password": NEW})
    text = (
        render_diff.unified(change(action, desired, None))
        if action is Action.CREATE
        else render_diff.unified(change(action, None, live))
    )
    assert text and leaked(text) == []


def test_the_json_of_diff_masks_too() -> None:
    live = secret(data={"password": b64(OLD), "user": b64(SAME)})
    desired = secret(data={"password": b64(NEW), "user": b64(SAME)})
    result = SyncResult(
        SyncSpec("repo"),
        SyncStatus(State.SYNCED),
        changeset=ChangeSet([change(Action.UPDATE, desired, live)]),
    )
    out = json.dumps(diff_cli._data(result))
    assert leaked(out) == []
    assert "*** (after)" in out


@pytest.mark.parametrize("case", sorted(p.name for p in CORPUS.glob("*.yaml")))
def test_hostile_secrets_never_leak(case: str) -> None:
    live, desired = yaml.safe_load_all((CORPUS / case).read_text())
    for action in (Action.UPDATE, Action.PRUNE):
        text = render_diff.unified(change(action, desired if action is Action.UPDATE else None, live))
        assert "LEAK" not in text and b64("LEAK") not in text, text
