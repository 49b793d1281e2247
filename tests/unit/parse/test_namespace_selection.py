"""NamespaceSelectors in static and dynamic mode, offline and with live Namespaces handed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from acm_lite import declare
from acm_lite.parse import namespace_selection
from acm_lite.parse.clusters import ClusterTarget
from tests.unit.repo_builder import cm, hierarchy, ns, obj, write

SELECTED = {"configmanagement.gke.io/namespace-selector": "prod"}


def selector(mode: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"env": "prod"}}}
    if mode:
        spec["mode"] = mode
    return obj("configmanagement.gke.io/v1", "NamespaceSelector", "prod", spec=spec)


def unstructured_repo(root: Path, mode: str | None) -> Path:
    return write(
        root,
        {
            "sel.yaml": selector(mode),
            "alert.yaml": cm("pager", annotations=SELECTED),
            "ns.yaml": [ns("declared-prod", {"env": "prod"}), ns("declared-dev", {"env": "dev"})],
        },
    )


def live(*items: tuple[str, dict[str, str], str]) -> namespace_selection.LiveNamespaces:
    return namespace_selection.live(
        {"metadata": {"name": name, "labels": labels}, "status": {"phase": phase}}
        for name, labels, phase in items
    )


def copies(root: Path, live_namespaces: namespace_selection.LiveNamespaces | None) -> list[str]:
    result = declare.declare(
        declare.load(root, declare.UNSTRUCTURED),
        ClusterTarget(None),
        declare.Options(source_format=declare.UNSTRUCTURED, live_namespaces=live_namespaces),
    )
    assert not result.blocking, [p.render() for p in result.problems]
    return sorted(o.namespace for o in result.objects if o.kind == "ConfigMap")


LIVE = live(
    ("live-prod", {"env": "prod"}, "Active"),
    ("live-dev", {"env": "dev"}, "Active"),
    ("leaving-prod", {"env": "prod"}, "Terminating"),
    ("declared-dev", {"env": "prod"}, "Active"),
)


@pytest.mark.parametrize(
    ("mode", "live_namespaces", "expected"),
    [
        (None, None, ["declared-prod"]),
        ("static", LIVE, ["declared-prod"]),  # static never looks at the cluster
        ("dynamic", None, ["declared-prod"]),  # offline: what static selects
        # live ones with matching labels join, Terminating ones do not; a declared Namespace whose live
        # labels match is selected as Config Sync selects it (live first, then declared)
        ("dynamic", LIVE, ["declared-dev", "declared-prod", "live-prod"]),
    ],
)
def test_modes_select(
    tmp_path: Path,
    mode: str | None,
    live_namespaces: namespace_selection.LiveNamespaces | None,
    expected: list[str],
) -> None:
    assert copies(unstructured_repo(tmp_path, mode), live_namespaces) == expected


def test_only_dynamic_unstructured_sources_need_live_namespaces(tmp_path: Path) -> None:
    dynamic = declare.load(unstructured_repo(tmp_path / "d", "dynamic"), declare.UNSTRUCTURED)
    static = declare.load(unstructured_repo(tmp_path / "s", "static"), declare.UNSTRUCTURED)
    assert declare.needs_live_namespaces(dynamic, declare.UNSTRUCTURED)
    assert not declare.needs_live_namespaces(static, declare.UNSTRUCTURED)
    assert not declare.needs_live_namespaces(dynamic, declare.HIERARCHY)


@pytest.mark.parametrize(
    ("mode", "fmt", "message"),
    [
        ("dynamic", declare.HIERARCHY, "must not use the dynamic mode with the hierarchy"),
        ("sometimes", declare.HIERARCHY, "unknown mode 'sometimes'"),
        ("sometimes", declare.UNSTRUCTURED, "unknown mode 'sometimes'"),
    ],
)
def test_refused_modes_are_knv1014(tmp_path: Path, mode: str, fmt: str, message: str) -> None:
    if fmt == declare.HIERARCHY:
        hierarchy(
            tmp_path,
            {
                "namespaces/sel.yaml": selector(mode),
                "namespaces/alert.yaml": cm("pager", annotations=SELECTED),
                "namespaces/a/ns.yaml": ns("a", {"env": "prod"}),
            },
        )
    else:
        unstructured_repo(tmp_path, mode)
    result = declare.declare(
        declare.load(tmp_path, fmt), ClusterTarget(None), declare.Options(source_format=fmt)
    )
    found = [p for p in result.problems if p.code.id == "KNV1014"]
    assert result.blocking and found and message in found[0].message, [p.render() for p in found]


def test_copies_never_land_outside_a_tenant_or_in_a_reserved_namespace(tmp_path: Path) -> None:
    """A dynamic selector can pick any live Namespace: the namespace rules hold for its copies."""
    unstructured_repo(tmp_path, "dynamic")
    everything = live(
        ("team-a", {"env": "prod"}, "Active"),
        ("other", {"env": "prod"}, "Active"),
        ("config-management-system", {"env": "prod"}, "Active"),
    )
    loaded = declare.load(tmp_path, declare.UNSTRUCTURED)
    root = declare.declare(
        loaded,
        ClusterTarget(None),
        declare.Options(source_format=declare.UNSTRUCTURED, live_namespaces=everything),
    )
    assert root.blocking and {p.code.id for p in root.problems if p.blocking} == {"KNV1034"}
    (tmp_path / "ns.yaml").unlink()  # a tenant's repository declares no Namespaces
    tenant = declare.declare(
        declare.load(tmp_path, declare.UNSTRUCTURED),
        ClusterTarget(None),
        declare.Options(
            source_format=declare.UNSTRUCTURED, live_namespaces=everything, tenant_namespace="team-a"
        ),
    )
    refused = {p.message for p in tenant.problems if p.code.id == "KNV1058"}
    assert tenant.blocking and any("'other'" in m for m in refused), refused
