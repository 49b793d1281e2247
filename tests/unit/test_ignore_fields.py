"""A sync's ignore rules: JSON pointers checked as RFC 6901 says, the fields they name taken out
of what is applied and out of every comparison (plan, drift repair, diff), and the rules read
from a RootSync's spec.override.ignoreFields and from --ignore-fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite import metadata
from acm_lite.cli import clusterargs
from acm_lite.cli.main import build_parser
from acm_lite.errors import AcmError
from acm_lite.objects import Manifest
from acm_lite.plan import ignorefields, ownership, planner, render_diff
from acm_lite.plan.changeset import Action
from acm_lite.plan.ignorefields import IgnoreRule
from acm_lite.reconcile import rootsyncs
from tests.unit.apply.test_applier import FakeCluster, run

REPLICAS = ({"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},)


def deployment(replicas: int = 2, containers: int = 1) -> Manifest:
    return Manifest(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a"},
            "spec": {
                "replicas": replicas,
                "template": {
                    "spec": {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]}
                },
            },
        },
        "web.yaml",
    )


def rules(*given: dict[str, Any]) -> ignorefields.Rules:
    return ignorefields.compile_rules(ignorefields.from_spec(list(given)), "root")


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("/spec/replicas", ("spec", "replicas")),
        (
            "/metadata/annotations/sidecar.istio.io~1status",
            ("metadata", "annotations", "sidecar.istio.io/status"),
        ),
        ("/data/a~0b", ("data", "a~b")),
        ("/spec/template/spec/containers/1", ("spec", "template", "spec", "containers", "1")),
    ],
)
def test_pointers_are_read_as_rfc_6901_says(pointer: str, tokens: tuple[str, ...]) -> None:
    assert ignorefields.parse_pointer(pointer) == tokens


@pytest.mark.parametrize(
    "pointer",
    [
        "",
        "spec/replicas",
        "/spec/~2x",
        "/spec/x~",
        "/spec//replicas",
        "/kind",
        "/apiVersion",
        "/metadata",
        "/metadata/name",
        "/metadata/labels",
        f"/metadata/labels/{metadata.SYNC_LABEL.replace('/', '~1')}",
        f"/metadata/annotations/{metadata.DECLARED_HASH.replace('/', '~1')}",
        "/" + "x" * 600,
    ],
)
def test_a_bad_pointer_is_knv1061_naming_the_sync(pointer: str) -> None:
    given = ignorefields.from_spec([{"group": "apps", "kind": "Deployment", "jsonPointers": [pointer]}])
    with pytest.raises(AcmError) as raised:
        ignorefields.compile_rules(given, "team-a")
    assert raised.value.code.id == "KNV1061"
    assert "'team-a'" in raised.value.message


@pytest.mark.parametrize(
    "given",
    [
        {"group": "apps"},
        [{"kind": "Deployment"}],
        [{"kind": "Deployment", "jsonPointers": []}],
        [{"kind": "Deployment", "jsonPointers": "/spec/replicas"}],
        [{"kind": "Deployment", "jsonPointers": ["/spec/replicas"], "name": "web"}],
        [{"group": 3, "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}],
        ["/spec/replicas"],
        [{"kind": "Deployment", "jsonPointers": ["/a"] * 65}],
    ],
)
def test_a_malformed_rule_is_kept_and_refused_when_compiled(given: Any) -> None:
    found = ignorefields.from_spec(given)
    assert found and found[0].problem
    with pytest.raises(AcmError, match="sync 'root'"):
        ignorefields.compile_rules(found, "root")


def test_strip_removes_only_what_is_named_and_leaves_the_input_alone() -> None:
    body = deployment(containers=2).body
    pointers = rules(
        {
            "group": "apps",
            "kind": "Deployment",
            "jsonPointers": [
                "/spec/replicas",
                "/spec/template/spec/containers/1",
                "/spec/absent/x",
                "/spec/template/spec/containers/9",
            ],
        }
    ).for_object(deployment().id)
    stripped = ignorefields.strip(body, pointers)
    assert "replicas" not in stripped["spec"]
    assert [c["name"] for c in stripped["spec"]["template"]["spec"]["containers"]] == ["c0"]
    assert body["spec"]["replicas"] == 2 and len(body["spec"]["template"]["spec"]["containers"]) == 2


def test_rules_apply_to_their_group_and_kind_only() -> None:
    compiled = rules(*REPLICAS)
    other = Manifest({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x"}}, "x.yaml")
    assert compiled.for_object(deployment().id) == (("spec", "replicas"),)
    assert compiled.for_object(other.id) == ()


def live(obj: Manifest, **spec: Any) -> dict[str, Any]:
    body = ownership.stamp(obj, "root", "0ld")
    return {**body, "metadata": {**body["metadata"], "uid": "u"}, "spec": {**body["spec"], **spec}}


OPTS = planner.PlanOptions("root", "c0ffee", ignore=rules(*REPLICAS))


def test_an_ignored_field_is_never_applied_not_even_on_create() -> None:
    obj = deployment()
    changes = planner.plan([obj], {}, set(), OPTS)
    cluster = FakeCluster()
    run(cluster, *changes.changes)
    [call] = cluster.sent
    assert call.method == "PATCH" and "replicas" not in call.body["spec"]
    assert call.body["spec"]["template"] == obj.body["spec"]["template"]


def test_an_ignored_field_changed_live_is_no_drift_and_no_diff() -> None:
    obj = deployment()
    current = {obj.id: live(obj, replicas=5)}
    [change] = planner.plan([obj], current, set(), OPTS).changes
    assert change.action is Action.UNCHANGED
    assert render_diff.unified(change) == ""
    [without_rules] = planner.plan([obj], current, set(), planner.PlanOptions("root", "c0ffee")).changes
    assert without_rules.action is Action.UPDATE and "replicas" in without_rules.reason


def test_an_injected_container_named_by_index_is_no_drift() -> None:
    obj = deployment()
    injected = live(obj)
    injected["spec"]["template"] = {
        "spec": {"containers": [{"name": "c0", "image": "nginx"}, {"name": "istio-proxy", "image": "proxy"}]}
    }
    sidecar = {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/template/spec/containers/1"]}
    opts = planner.PlanOptions("root", "c0ffee", ignore=rules(sidecar))
    [change] = planner.plan([obj], {obj.id: injected}, set(), opts).changes
    assert change.action is Action.UNCHANGED
    [plain] = planner.plan([obj], {obj.id: injected}, set(), planner.PlanOptions("root", "c0ffee")).changes
    assert plain.action is Action.UPDATE


def test_a_declared_change_elsewhere_is_applied_without_the_ignored_field() -> None:
    before, after = deployment(), deployment()
    after.body["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    after = Manifest(after.body, "web.yaml")
    [change] = planner.plan([after], {after.id: live(before, replicas=5)}, set(), OPTS).changes
    assert change.action is Action.UPDATE
    assert change.desired is not None and "replicas" not in change.desired["spec"]
    assert "replicas: 5" not in render_diff.unified(change) and "nginx:2" in render_diff.unified(change)


def test_a_rootsync_carries_its_ignore_fields_and_writes_them_back() -> None:
    item = {
        "metadata": {"name": "root"},
        "spec": {"git": {"repo": "https://example.com/r.git"}, "override": {"ignoreFields": list(REPLICAS)}},
    }
    spec = rootsyncs.spec_of(item)
    assert spec is not None
    assert spec.ignore_fields == (IgnoreRule("apps", "Deployment", ("/spec/replicas",)),)
    assert spec.to_spec()["override"] == {"ignoreFields": list(REPLICAS)}


def test_a_rootsync_with_bad_ignore_fields_keeps_them_to_fail_its_passes() -> None:
    item = {
        "metadata": {"name": "root"},
        "spec": {"git": {"repo": "https://example.com/r.git"}, "override": {"ignoreFields": "replicas"}},
    }
    spec = rootsyncs.spec_of(item)
    assert spec is not None and spec.ignore_fields[0].problem
    assert "override" not in spec.to_spec()


def test_the_ignore_fields_flag_reads_a_file_and_refuses_a_bad_pointer(tmp_path: Path) -> None:
    good = tmp_path / "ignore.yaml"
    good.write_text(yaml.safe_dump(list(REPLICAS)))
    args = build_parser().parse_args(["diff", "--repo", "r", "--ignore-fields", str(good)])
    assert clusterargs.spec(args).ignore_fields == (IgnoreRule("apps", "Deployment", ("/spec/replicas",)),)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump([{"kind": "Deployment", "jsonPointers": ["spec/replicas"]}]))
    args = build_parser().parse_args(["diff", "--repo", "r", "--name", "team", "--ignore-fields", str(bad)])
    with pytest.raises(AcmError) as raised:
        clusterargs.spec(args)
    assert raised.value.code.id == "KNV1061" and raised.value.path == str(bad)
    assert "'team'" in raised.value.message
