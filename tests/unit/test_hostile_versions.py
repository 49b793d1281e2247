"""The hostile corpus of tests/hostile/versions: each planned change is sent at the version its
object is declared (or was last read) at, or refused with a coded error; never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from acm_lite.apply.applier import Applier, ApplyOptions
from acm_lite.cluster.client import Cluster
from acm_lite.cluster.discovery import Discovery
from acm_lite.errors import AcmError
from acm_lite.objects import GroupKind, Manifest, ObjectId, split_api_version
from acm_lite.plan.changeset import Action, Change

CORPUS = Path(__file__).parent.parent / "hostile" / "versions"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


class DiscoveryServer:
    """Answers the two aggregated discovery requests and nothing else (a pure unit test)."""

    def __init__(self, groups: list[Any]):
        self.groups = groups

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        assert method == "GET"
        items = self.groups if path == "/apis" else []
        return {"kind": "APIGroupDiscoveryList", "items": items}


def _change(spec: dict[str, Any]) -> Change:
    action = Action(spec["action"])
    manifest = Manifest(spec["object"], "case.yaml") if "object" in spec else None
    live = spec.get("live")
    if manifest is not None:
        oid = manifest.id
    else:
        meta = live["metadata"]
        oid = ObjectId(
            split_api_version(live["apiVersion"])[0], live["kind"], meta.get("namespace", ""), meta["name"]
        )
    return Change(action, oid, "hostile case", desired=spec.get("object"), live=live, manifest=manifest)


@pytest.mark.parametrize("case", CASES)
def test_hostile_case(case: str) -> None:
    spec = yaml.safe_load((CORPUS / case / "case.yaml").read_text())
    discovery = Discovery(cast(Cluster, DiscoveryServer(spec["discovery"])))
    applier = Applier(cast(Cluster, None), discovery, ApplyOptions())
    expect = spec["expect"]
    if "code" in expect:
        with pytest.raises(AcmError) as raised:
            applier._call(_change(spec["change"]))
        assert raised.value.code.id == expect["code"]
        assert raised.value.message == expect.get("message", raised.value.message)
        return
    call = applier._call(_change(spec["change"]))
    assert (call.method, call.path) == (expect["method"], expect["path"])


def test_every_case_is_described() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert CASES and all(f"`{case}`" in readme for case in CASES)


def test_malformed_discovery_keeps_only_what_it_can_address() -> None:
    spec = yaml.safe_load((CORPUS / "discovery-malformed" / "case.yaml").read_text())
    discovery = Discovery(cast(Cluster, DiscoveryServer(spec["discovery"])))
    served = {
        str(gk): discovery.versions(gk)
        for gk in (
            GroupKind("acme.io", "Widget"),
            GroupKind("acme.io", "Gadget"),
            GroupKind("acme.io", "Gizmo"),
            GroupKind("", "Thing"),
        )
    }
    assert served == {"Widget.acme.io": ["v2"], "Gadget.acme.io": [], "Gizmo.acme.io": [], "Thing": []}
