"""Policies against a real API server, as Gatekeeper's webhook would see the pass: an object that
exists is reviewed as an UPDATE of its live self (a Rego and a CEL template guarding an immutable
field), and ``data.inventory`` holds live objects the repository does not declare (a uniqueness
template, a Config naming the kinds to read, the budget's warning)."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from acm_lite import metadata
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster.controlplane import APIServer
from acm_lite.reconcile import pipeline
from acm_lite.reconcile.pipeline import SyncOptions, SyncSpec
from tests.support.kube import get
from tests.unit.repo_builder import cm, ns, write

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "unit" / "policy" / "update_suite"
INGRESS = ROOT / "policies" / "templates" / "unique-ingress-host"


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _run(cluster: Cluster, repo: Path, name: str, tmp_path: Path, **options: Any) -> pipeline.SyncResult:
    spec = SyncSpec(repo=str(repo), name=name, source_format="unstructured")
    return pipeline.run(spec, cluster, SyncOptions(git_cache=tmp_path / "cache", **options))


def _codes(result: pipeline.SyncResult) -> list[str]:
    return [p.code.id for p in result.problems]


def _deployment(name: str, namespace: str, app: str) -> dict[str, Any]:
    labels = {"app": app}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.acme.io/web:1"}]},
            },
        },
    }


def _ingress(name: str, namespace: str, host: str) -> dict[str, Any]:
    body = copy.deepcopy(_load(INGRESS / "samples" / "shop.yaml"))
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["rules"][0]["host"] = host
    return body


@pytest.mark.parametrize("engine", ["rego", "cel"])
def test_changing_an_immutable_field_of_a_live_object_is_blocked_before_any_write(
    control_plane: APIServer, tmp_path: Path, engine: str
) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"upd-{engine}-{suffix}", f"upd-{engine}-{suffix}"
    deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    policies = {
        "policy/template.yaml": _load(SUITE / f"template-{engine}.yaml"),
        "policy/constraint.yaml": _load(SUITE / f"constraint-{engine}.yaml"),
    }
    repo = write(
        tmp_path / "repo",
        {**policies, "ns.yaml": ns(namespace), "web.yaml": _deployment("web", namespace, "web")},
    )

    created = _run(cluster, repo, name, tmp_path)  # a CREATE: any selector is allowed
    assert created.ok, [p.render() for p in created.problems]
    assert get(cluster, f"{deployments}/web") is not None

    # The selector changes in Git, with a new ConfigMap in the same commit.
    write(repo, {"web.yaml": _deployment("web", namespace, "web2"), "extra.yaml": cm("extra", namespace)})
    for plan_only in (True, False):  # diff, then sync
        blocked = _run(cluster, repo, name, tmp_path, plan_only=plan_only)
        assert not blocked.ok and blocked.status.stage == "policy"
        violations = [p for p in blocked.problems if p.code.id == "ACM3100"]
        assert len(violations) == 1, [p.render() for p in blocked.problems]
        assert "spec.selector of Deployment web is immutable (by acm-lite)" in violations[0].message
        assert violations[0].obj is not None
        assert (violations[0].obj["kind"], violations[0].obj["namespace"], violations[0].obj["name"]) == (
            "Deployment",
            namespace,
            "web",
        )
        assert blocked.changeset is None and not blocked.results
    live = get(cluster, f"{deployments}/web")
    assert live is not None and live["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/extra") is None  # nothing written

    # Once the live Deployment is gone, the same commit creates it afresh: a CREATE passes.
    cluster.request("DELETE", f"{deployments}/web", query={"propagationPolicy": "Background"})
    fresh = _run(cluster, repo, name, tmp_path)
    assert fresh.ok, [p.render() for p in fresh.problems]
    after = get(cluster, f"{deployments}/web")
    assert after is not None and after["spec"]["selector"] == {"matchLabels": {"app": "web2"}}
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/extra") is not None


def test_a_declared_object_conflicting_with_a_live_one_outside_the_repository_is_blocked(
    control_plane: APIServer, tmp_path: Path
) -> None:
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, mine, theirs = f"uniq-{suffix}", f"uniq-mine-{suffix}", f"uniq-theirs-{suffix}"
    host = f"shop-{suffix}.acme.io"
    cluster.request("POST", "/api/v1/namespaces", body=ns(theirs))
    theirs_path = f"/apis/networking.k8s.io/v1/namespaces/{theirs}/ingresses"
    cluster.request("POST", theirs_path, body=_ingress("theirs", theirs, host))
    repo = write(
        tmp_path / "repo",
        {
            "policy/template.yaml": _load(INGRESS / "template.yaml"),
            "policy/constraint.yaml": _load(INGRESS / "samples" / "constraint.yaml"),
            "ns.yaml": ns(mine),
            "shop.yaml": _ingress("shop", mine, host),
        },
    )

    blocked = _run(cluster, repo, name, tmp_path)
    assert not blocked.ok and blocked.status.stage == "policy"
    [violation] = [p for p in blocked.problems if p.code.id == "ACM3100"]
    assert f"host {host} is already served by Ingress {theirs}/theirs" in violation.message
    assert violation.obj is not None and (violation.obj["namespace"], violation.obj["name"]) == (mine, "shop")
    assert get(cluster, f"/api/v1/namespaces/{mine}") is None  # nothing written

    cluster.request("DELETE", f"{theirs_path}/theirs")
    passed = _run(cluster, repo, name, tmp_path)
    assert passed.ok, [p.render() for p in passed.problems]
    assert get(cluster, f"/apis/networking.k8s.io/v1/namespaces/{mine}/ingresses/shop") is not None

    # A pass over the object it applied is an UPDATE of itself: no conflict with its live self.
    again = _run(cluster, repo, name, tmp_path)
    assert again.ok, [p.render() for p in again.problems]


def test_an_object_the_pass_prunes_is_not_in_data_inventory(control_plane: APIServer, tmp_path: Path) -> None:
    """Moving a host from one managed Ingress to another in one commit: the old one is pruned by
    the same pass, so it does not conflict."""
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"move-{suffix}", f"move-{suffix}"
    host = f"move-{suffix}.acme.io"
    policies = {
        "policy/template.yaml": _load(INGRESS / "template.yaml"),
        "policy/constraint.yaml": _load(INGRESS / "samples" / "constraint.yaml"),
    }
    repo = write(
        tmp_path / "repo",
        {**policies, "ns.yaml": ns(namespace), "old.yaml": _ingress("old", namespace, host)},
    )
    first = _run(cluster, repo, name, tmp_path)
    assert first.ok, [p.render() for p in first.problems]
    (repo / "old.yaml").unlink()
    write(repo, {"new.yaml": _ingress("new", namespace, host)})
    moved = _run(cluster, repo, name, tmp_path)
    assert moved.ok, [p.render() for p in moved.problems]
    ingresses = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses"
    assert get(cluster, f"{ingresses}/old") is None and get(cluster, f"{ingresses}/new") is not None


EXISTING_NAMESPACE_TEMPLATE = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "namespacerefexists"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "NamespaceRefExists"}}},
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": (
                    "package namespacerefexists\n"
                    'violation[{"msg": msg}] {\n'
                    "  ref := input.review.object.data.target\n"
                    '  not data.inventory.cluster["v1"].Namespace[ref]\n'
                    '  msg := sprintf("namespace %v does not exist", [ref])\n'
                    "}\n"
                ),
            }
        ],
    },
}


def test_a_gatekeeper_config_names_the_kinds_data_inventory_holds(
    control_plane: APIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template over ConfigMaps that reads Namespaces: by default only ConfigMaps are read (the
    kinds its constraint matches), so a live Namespace outside the repository is unknown; a Config
    whose syncOnly names Namespaces makes it known. The budget's limit is a coded warning."""
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace, target = f"cfg-{suffix}", f"cfg-{suffix}", f"cfg-target-{suffix}"
    cluster.request("POST", "/api/v1/namespaces", body=ns(target))
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "NamespaceRefExists",
        "metadata": {"name": "refs"},
        "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]}},
    }
    ref = {**cm("ref", namespace), "data": {"target": target}}
    files = {"policy/template.yaml": EXISTING_NAMESPACE_TEMPLATE, "policy/constraint.yaml": constraint}
    repo = write(tmp_path / "repo", {**files, "ns.yaml": ns(namespace), "ref.yaml": ref})

    unknown = _run(cluster, repo, name, tmp_path, plan_only=True)
    assert "ACM3100" in _codes(unknown)
    assert any(f"namespace {target} does not exist" in p.message for p in unknown.problems)

    config = {
        "apiVersion": "config.gatekeeper.sh/v1alpha1",
        "kind": "Config",
        "metadata": {"name": "config", "namespace": "gatekeeper-system"},
        "spec": {"sync": {"syncOnly": [{"group": "", "version": "v1", "kind": "Namespace"}]}},
    }
    write(repo, {"policy/config.yaml": config})
    known = _run(cluster, repo, name, tmp_path)
    assert known.ok, [p.render() for p in known.problems]
    assert get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/ref") is not None
    assert get(cluster, "/apis/config.gatekeeper.sh/v1alpha1") is None  # the Config is read, never applied

    # A budget of one object: the namespace may be left out; a coded warning says so, and the
    # policy fails as it would without the data (the warning alone never blocks).
    monkeypatch.setenv("ACM_LITE_POLICY_INVENTORY_OBJECTS", "1")
    limited = _run(cluster, repo, name, tmp_path, plan_only=True)
    assert "ACM3011" in _codes(limited)
    warning = next(p for p in limited.problems if p.code.id == "ACM3011")
    assert not warning.blocking and "Namespace" in warning.message


def test_the_live_objects_of_declared_identities_keep_their_managed_fields(
    control_plane: APIServer, tmp_path: Path
) -> None:
    """The oldObject is the live object as the API server sends it to admission: with its
    metadata, managedFields included."""
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"old-{suffix}", f"old-{suffix}"
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "showsold"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "ShowsOld"}}},
            "targets": [
                {
                    "target": "admission.k8s.gatekeeper.sh",
                    "rego": (
                        "package showsold\n"
                        'violation[{"msg": msg}] {\n'
                        '  input.review.operation == "UPDATE"\n'
                        "  managers := {m.manager | m := input.review.oldObject.metadata.managedFields[_]}\n"
                        '  msg := sprintf("old object by %v, labelled %v", [concat(",", sort(managers)),'
                        f' input.review.oldObject.metadata.labels["{metadata.SYNC_LABEL}"]])\n'
                        "}\n"
                    ),
                }
            ],
        },
    }
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "ShowsOld",
        "metadata": {"name": "show"},
        "spec": {
            "enforcementAction": "warn",
            "match": {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]},
        },
    }
    repo = write(
        tmp_path / "repo",
        {"t.yaml": template, "c.yaml": constraint, "ns.yaml": ns(namespace), "cm.yaml": cm("one", namespace)},
    )
    first = _run(cluster, repo, name, tmp_path)
    assert first.ok and "ACM3101" not in _codes(first)  # a CREATE: no old object
    second = _run(cluster, repo, name, tmp_path)
    warnings = [p.message for p in second.problems if p.code.id == "ACM3101"]
    assert warnings == [f"[warn] ShowsOld/show: old object by acm-lite, labelled {name}"]


NO_CONFIGMAPS_TEMPLATE = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "noconfigmaps"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "NoConfigMaps"}}},
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": (
                    "package noconfigmaps\n"
                    'violation[{"msg": msg}] {\n'
                    '  msg := sprintf("no ConfigMaps here: %v", [input.review.object.metadata.name])\n'
                    "}\n"
                ),
            }
        ],
    },
}


def test_a_namespace_selector_matches_namespaces_that_exist_only_in_the_cluster(
    control_plane: APIServer, tmp_path: Path
) -> None:
    """As Gatekeeper's webhook (its cache holds the cluster's Namespaces): a constraint selecting
    namespaces by label applies to a declared object in a Namespace the repository does not
    declare, by that live Namespace's labels."""
    cluster = Cluster.connect(control_plane.kubeconfig)
    suffix = uuid.uuid4().hex[:6]
    prod, dev = f"prod-{suffix}", f"dev-{suffix}"
    for name, env in ((prod, "prod"), (dev, "dev")):
        body = ns(name)
        body["metadata"]["labels"] = {"env": env}
        cluster.request("POST", "/api/v1/namespaces", body=body)
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "NoConfigMaps",
        "metadata": {"name": "prod-only"},
        "spec": {
            "match": {
                "kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}],
                "namespaceSelector": {"matchLabels": {"env": "prod"}},
            }
        },
    }
    files = {"policy/template.yaml": NO_CONFIGMAPS_TEMPLATE, "policy/constraint.yaml": constraint}
    repo = write(tmp_path / "repo", {**files, "dev.yaml": cm("settings", dev)})
    allowed = _run(cluster, repo, f"nss-{suffix}", tmp_path)
    assert allowed.ok, [p.render() for p in allowed.problems]
    assert get(cluster, f"/api/v1/namespaces/{dev}/configmaps/settings") is not None

    write(repo, {"prod.yaml": cm("settings", prod)})
    blocked = _run(cluster, repo, f"nss-{suffix}", tmp_path)
    assert _codes(blocked) == ["ACM3100"], [p.render() for p in blocked.problems]
    assert "no ConfigMaps here: settings" in blocked.problems[0].message
    assert get(cluster, f"/api/v1/namespaces/{prod}/configmaps/settings") is None
