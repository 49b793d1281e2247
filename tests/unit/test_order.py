"""Apply levels: each kind's base level, pushed later by depends-on; a cycle is found once, named
by ``Levels.cyclic``, and the plan reuses the levels it is handed."""

from __future__ import annotations

from acm_lite import errors
from acm_lite.objects import Manifest
from acm_lite.plan import order, planner

DEPENDS_ON = "config.kubernetes.io/depends-on"


def configmap(name: str, *depends_on: str) -> Manifest:
    metadata: dict[str, object] = {"name": name, "namespace": "team"}
    if depends_on:
        metadata["annotations"] = {
            DEPENDS_ON: ",".join(f"/namespaces/team/ConfigMap/{d}" for d in depends_on)
        }
    return Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}, f"{name}.yaml", 0)


def namespace(name: str) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, f"{name}.yaml", 0)


def test_depends_on_pushes_an_object_past_its_dependency() -> None:
    team, first, second = namespace("team"), configmap("first"), configmap("second", "first")

    levels = order.levels([second, first, team])

    assert not levels.cyclic
    assert levels.problems == ()
    assert dict(levels.of) == {
        team.id: order.NAMESPACE_LEVEL,
        first.id: order.NAMESPACED_LEVEL,
        second.id: order.NAMESPACED_LEVEL + 1,
    }


def test_a_cycle_is_named_once_and_the_plan_reuses_the_levels_it_is_handed() -> None:
    ping, pong = configmap("ping", "pong"), configmap("pong", "ping")

    levels = order.levels([ping, pong])
    changes = planner.plan([ping, pong], {}, set(), planner.PlanOptions("root"), levels)

    assert levels.cyclic
    assert [p.code for p in levels.problems] == [errors.DEPENDENCY_CYCLE]
    assert changes.problems == list(levels.problems)
    assert {c.id: c.level for c in changes.changes} == dict(levels.of)
