"""The render stage with the real kustomize and helm binaries: what renders, what is refused
before anything runs, the limits, and the cache. Every refusal is coded and names the file."""

from __future__ import annotations

import hashlib
import http.server
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from acm_lite import bounded, errors, render
from acm_lite.devcluster import binaries
from acm_lite.render import stage
from acm_lite.source.snapshot import Snapshot
from tests.unit.repo_builder import cm, ns, write


@pytest.fixture(scope="session")
def tools() -> dict[str, Path]:
    """kustomize and helm: from KUBEBUILDER_ASSETS, the cache, or built now."""
    return binaries.ensure_all(["kustomize", "helm"])


@pytest.fixture
def options(tools: dict[str, Path], tmp_path: Path) -> render.Options:
    (tmp_path / "work").mkdir()
    return render.Options(
        kustomize=tools["kustomize"], helm=tools["helm"], work_dir=tmp_path / "work", timeout_seconds=120
    )


pytestmark = pytest.mark.usefixtures("fresh_render_cache")


def fingerprint(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (or link target): to prove nothing wrote."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "nginx"}]},
            },
        },
    }


def only_problem(result: render.Rendered | None) -> errors.Problem:
    assert result is not None
    assert result.manifests == []
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


def by_name(result: render.Rendered | None) -> dict[str, Any]:
    assert result is not None
    assert result.problems == [], [p.render() for p in result.problems]
    return {f"{m.kind}/{m.name}": m for m in result.manifests}


OVERLAY = {
    "base/kustomization.yaml": {"resources": ["deploy.yaml", "cm.yaml"]},
    "base/deploy.yaml": deployment("web"),
    "base/cm.yaml": cm("settings"),
    "components/monitoring/kustomization.yaml": {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": ["monitor.yaml"],
        "commonLabels": {"monitored": "yes"},
    },
    "components/monitoring/monitor.yaml": cm("monitor"),
    "overlays/prod/kustomization.yaml": {
        "namespace": "prod",
        "resources": ["../../base", "ns.yaml"],
        "components": ["../../components/monitoring"],
        "patches": [
            {"path": "replicas.yaml"},
            {
                "patch": "- op: add\n  path: /data/tier\n  value: gold\n",
                "target": {"kind": "ConfigMap", "name": "settings"},
            },
        ],
    },
    "overlays/prod/ns.yaml": ns("prod"),
    "overlays/prod/replicas.yaml": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3},
    },
}


def test_an_overlay_with_a_base_outside_the_sync_directory_components_and_patches(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(tmp_path / "repo", OVERLAY)
    before = fingerprint(root)
    result = render.render(root, "overlays/prod", options)
    objs = by_name(result)
    assert sorted(objs) == ["ConfigMap/monitor", "ConfigMap/settings", "Deployment/web", "Namespace/prod"]
    assert objs["Deployment/web"].body["spec"]["replicas"] == 3
    assert objs["ConfigMap/settings"].body["data"] == {"k": "v", "tier": "gold"}
    assert objs["ConfigMap/monitor"].labels == {"monitored": "yes"}
    assert {m.namespace for m in objs.values() if m.kind != "Namespace"} == {"prod"}
    assert {m.source for m in objs.values()} == {"kustomization.yaml"}
    origins = {key: m.extra["origin"] for key, m in objs.items()}
    assert origins == {
        "ConfigMap/monitor": "../../components/monitoring/monitor.yaml",
        "ConfigMap/settings": "../../base/cm.yaml",
        "Deployment/web": "../../base/deploy.yaml",
        "Namespace/prod": "ns.yaml",
    }
    annotation = objs["Deployment/web"].annotations["config.kubernetes.io/origin"]
    assert annotation == "path: ../../base/deploy.yaml\n"
    assert fingerprint(root) == before  # the snapshot was not written, origin edit included
    assert os.listdir(tmp_path / "work") == []  # the private render directory is gone


def test_a_file_outside_its_kustomization_renders_once_checked_inside_the_snapshot(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(
        tmp_path / "repo",
        {
            "shared/cm.yaml": cm("shared"),
            "clusters/a/kustomization.yaml": {
                "resources": ["../../shared/cm.yaml"],
                "buildMetadata": ["managedByLabel"],
            },
        },
    )
    objs = by_name(render.render(root, "clusters/a", options))
    assert objs["ConfigMap/shared"].extra == {"origin": "../../shared/cm.yaml"}
    assert objs["ConfigMap/shared"].labels == {"app.kubernetes.io/managed-by": "kustomize-v5.8.2"}


def test_a_sync_directory_without_a_kustomization_is_left_to_the_reader(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(tmp_path / "repo", {"apps/cm.yaml": cm("plain")})
    assert render.render(root, "apps", options) is None


def test_a_kustomization_only_in_a_sub_directory_is_actionable(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(
        tmp_path / "repo", {"apps/cm.yaml": cm("plain"), "apps/team/kustomization.yaml": {"resources": []}}
    )
    problem = only_problem(render.render(root, "apps", options))
    assert problem.code is errors.RENDER_FAILED
    assert problem.code.id == "KNV1068"
    assert problem.source == "team/kustomization.yaml"
    assert "Kustomization config file is missing from the sync directory apps" in problem.message


def test_a_hierarchical_source_with_a_kustomization_is_refused(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(tmp_path / "repo", {"kustomization.yaml": {"resources": ["ns.yaml"]}, "ns.yaml": ns("a")})
    problem = only_problem(render.render(root, ".", options, source_format="hierarchy"))
    assert problem.code is errors.RENDER_NEEDS_UNSTRUCTURED
    assert problem.source == "kustomization.yaml"
    assert "sourceFormat must be unstructured" in problem.message


def test_duplicate_resources_across_bases_are_kustomizes_own_refusal(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(
        tmp_path / "repo",
        {
            "a/kustomization.yaml": {"resources": ["cm.yaml"]},
            "a/cm.yaml": cm("same"),
            "b/kustomization.yaml": {"resources": ["cm.yaml"]},
            "b/cm.yaml": cm("same"),
            "sync/kustomization.yaml": {"resources": ["../a", "../b"]},
        },
    )
    problem = only_problem(render.render(root, "sync", options))
    assert problem.code.id == "KNV1068"
    assert problem.source == "kustomization.yaml"
    assert "failed to run kustomize build in sync" in problem.message
    assert "may not add resource with an already registered id" in problem.message
    assert str(tmp_path) not in problem.message  # private and snapshot paths are not shown


CHART = {
    "Chart.yaml": {"apiVersion": "v2", "name": "web", "version": "0.1.0"},
    "values.yaml": {"replicas": 1, "message": "hello"},
    "values.schema.json": '{"type": "object", "properties": {"replicas": {"type": "integer"}}}',
    "templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        "  name: {{ .Release.Name }}-web\n"
        "data:\n  message: {{ .Values.message | quote }}\n"
        "  replicas: {{ .Values.replicas | quote }}\n"
        '{{- if .Values.fail }}\n  x: {{ required "fail needs a reason" nil }}\n'
        "{{- end }}\n"
    ),
}


def chart_repo(root: Path, values: dict[str, Any], **chart: Any) -> Path:
    files = {f"charts/web/{name}": content for name, content in CHART.items()}
    entry = {"name": "web", "releaseName": "rel", "valuesInline": values, **chart}
    return write(root, {**files, "kustomization.yaml": {"helmCharts": [entry]}})


def test_a_local_helm_chart_with_inline_values(tmp_path: Path, options: render.Options) -> None:
    root = chart_repo(tmp_path / "repo", {"message": "from kustomize", "replicas": 4})
    before = fingerprint(root)
    objs = by_name(render.render(root, ".", options))
    assert objs["ConfigMap/rel-web"].body["data"] == {"message": "from kustomize", "replicas": "4"}
    assert objs["ConfigMap/rel-web"].extra == {"origin": "kustomization.yaml"}
    origin = yaml.safe_load(objs["ConfigMap/rel-web"].annotations["config.kubernetes.io/origin"])
    assert origin["configuredBy"]["kind"] == "HelmChartInflationGenerator"
    assert fingerprint(root) == before


def test_a_chart_that_fails_to_render_shows_helms_message(tmp_path: Path, options: render.Options) -> None:
    root = chart_repo(tmp_path / "repo", {"fail": True})
    problem = only_problem(render.render(root, ".", options))
    assert problem.code.id == "KNV1068"
    assert problem.source == "kustomization.yaml"
    assert "fail needs a reason" in problem.message
    assert str(tmp_path) not in problem.message


def test_values_of_the_wrong_type_against_the_charts_schema(tmp_path: Path, options: render.Options) -> None:
    root = chart_repo(tmp_path / "repo", {"replicas": "three"})
    problem = only_problem(render.render(root, ".", options))
    assert problem.code.id == "KNV1068"
    assert problem.source == "kustomization.yaml"
    assert "schema" in problem.message and "replicas" in problem.message


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_error(404)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records what is asked of it."""
    handler = type("Handler", (_Counting,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "remote",
    [
        "{url}/base.yaml",
        "github.com/example/config//base?ref=v1",
        "git@github.com:example/config.git//base",
        "ssh://git@git.example.com/config.git",
    ],
)
def test_a_remote_base_is_refused_with_the_network_off_and_nothing_is_fetched(
    tmp_path: Path, options: render.Options, web: tuple[str, list[str]], runs: list[list[str]], remote: str
) -> None:
    url, requests = web
    root = write(
        tmp_path / "repo",
        {
            "base/kustomization.yaml": {"resources": [remote.format(url=url)]},
            "kustomization.yaml": {"resources": ["base"]},
        },
    )
    problem = only_problem(render.render(root, ".", options))
    assert problem.code is errors.RENDER_REMOTE_REFUSED
    assert problem.source == "base/kustomization.yaml"
    assert "resources[0]" in problem.message
    assert requests == [] and runs == []


def test_a_remote_helm_chart_is_refused_with_the_network_off(
    tmp_path: Path, options: render.Options, web: tuple[str, list[str]], runs: list[list[str]]
) -> None:
    url, requests = web
    root = write(
        tmp_path / "repo",
        {
            "kustomization.yaml": {
                "helmCharts": [{"name": "nginx", "repo": url, "version": "1.0.0", "releaseName": "x"}]
            }
        },
    )
    problem = only_problem(render.render(root, ".", options))
    assert problem.code is errors.RENDER_REMOTE_REFUSED
    assert "helmCharts[0]" in problem.message and "charts/nginx-1.0.0/nginx" in (problem.hint or "")
    assert requests == [] and runs == []


def test_kustomize_itself_cannot_reach_the_network_when_it_is_off(
    tmp_path: Path, options: render.Options
) -> None:
    """Behind the check: kustomize runs with every proxy pointing at a port that refuses, so a
    URL that slipped through goes nowhere (not even a name lookup)."""
    root = write(tmp_path / "repo", {"kustomization.yaml": {"resources": ["ns.yaml"]}, "ns.yaml": ns("a")})
    env = stage.plan.environment(os.environ, str(tmp_path), options.switches(), 1)
    assert options.kustomize is not None
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    write(root, {"kustomization.yaml": {"resources": ["https://config.render-test.invalid/base.yaml"]}})
    finished = bounded.run(
        [str(options.kustomize), "build", str(root)], cwd=tmp_path, env=env, timeout=60, max_stdout=1 << 20
    )
    assert finished.returncode == 1
    assert b"proxyconnect tcp" in finished.stderr and b"127.0.0.1:1" in finished.stderr


def test_with_the_network_allowed_a_remote_resource_is_fetched_and_credentials_are_masked(
    tmp_path: Path, options: render.Options, web: tuple[str, list[str]]
) -> None:
    url, requests = web
    with_user = url.replace("http://", "http://deploy:s3cret@")
    root = write(tmp_path / "repo", {"kustomization.yaml": {"resources": [f"{with_user}/base.yaml"]}})
    opts = render.Options(**{**options.__dict__, "allow_network": True})
    problem = only_problem(render.render(root, ".", opts))
    assert problem.code.id == "KNV1068"
    assert requests == ["/base.yaml"]
    assert "s3cret" not in problem.message


def exec_transformer(root: Path, marker: Path, script: str = "cat") -> Path:
    return write(
        root,
        {
            "kustomization.yaml": {"resources": ["ns.yaml"], "transformers": ["fn.yaml"]},
            "ns.yaml": ns("a"),
            "fn.yaml": {
                "apiVersion": "example.com/v1",
                "kind": "Stamp",
                "metadata": {
                    "name": "stamp",
                    "annotations": {"config.kubernetes.io/function": ("exec:\n  path: ./stamp.sh\n")},
                },
            },
            "stamp.sh": f"#!/bin/sh\necho ran > {marker}\n{script}\n",
        },
    )


def test_exec_plugins_are_off_unless_opted_in(tmp_path: Path, options: render.Options) -> None:
    marker = tmp_path / "ran"
    root = exec_transformer(tmp_path / "repo", marker)
    (root / "stamp.sh").chmod(0o755)
    problem = only_problem(render.render(root, ".", options))
    assert problem.code.id == "KNV1068"
    assert "external plugins disabled" in problem.message
    assert not marker.exists()
    opted_in = render.Options(**{**options.__dict__, "allow_exec": True})
    assert sorted(by_name(render.render(root, ".", opted_in))) == ["Namespace/a"]
    assert marker.exists()


def test_an_exec_plugins_environment_holds_no_secret_of_the_process(
    tmp_path: Path, options: render.Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    monkeypatch.setenv("KUBECONFIG", "/secret/kubeconfig")
    root = exec_transformer(tmp_path / "repo", tmp_path / "ran", script="env >&2; exit 1")
    (root / "stamp.sh").chmod(0o755)
    opted_in = render.Options(**{**options.__dict__, "allow_exec": True})
    problem = only_problem(render.render(root, ".", opted_in))
    assert problem.code.id == "KNV1068"
    assert "HOME=<render-dir>/home" in problem.message  # the environment was printed ...
    assert "very-secret-value" not in problem.message  # ... without the process's own
    assert "/secret/kubeconfig" not in problem.message


def test_a_symbolic_link_leaving_the_snapshot_is_refused_before_running(
    tmp_path: Path, options: render.Options, runs: list[list[str]]
) -> None:
    outside = write(tmp_path / "outside", {"secret.yaml": cm("secret")})
    root = write(
        tmp_path / "repo", {"app/kustomization.yaml": {"resources": ["cm.yaml"]}, "app/cm.yaml": cm("a")}
    )
    (root / "app" / "stolen.yaml").symlink_to(outside / "secret.yaml")
    problem = only_problem(render.render(root, "app", options))
    assert problem.code is errors.SYMLINK_OUTSIDE_SOURCE
    assert problem.source == "stolen.yaml"
    assert runs == []


def test_a_symbolic_link_inside_the_snapshot_is_followed_in_the_copy(
    tmp_path: Path, options: render.Options
) -> None:
    root = write(
        tmp_path / "repo",
        {"shared/cm.yaml": cm("shared"), "app/kustomization.yaml": {"resources": ["cm.yaml"]}},
    )
    (root / "app" / "cm.yaml").symlink_to("../shared/cm.yaml")
    assert sorted(by_name(render.render(root, "app", options))) == ["ConfigMap/shared"]


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("/etc/hostname", "outside the source"),
        ("../../../../etc/hostname", "leads outside the source"),
        ("file:///etc/hostname", "outside the source"),
    ],
)
def test_paths_leaving_the_snapshot_are_refused_before_running(
    tmp_path: Path, options: render.Options, runs: list[list[str]], resource: str, message: str
) -> None:
    root = write(tmp_path / "repo", {"app/kustomization.yaml": {"resources": [resource]}})
    problem = only_problem(render.render(root, "app", options))
    assert problem.code is errors.RENDER_PATH_OUTSIDE_SOURCE
    assert problem.source == "kustomization.yaml"
    assert message in problem.message
    assert runs == []


def test_a_render_past_its_time_limit_is_stopped_with_every_process_it_started(
    tmp_path: Path, options: render.Options
) -> None:
    pid_file = tmp_path / "helm.pid"
    slow_helm = tmp_path / "slow-helm"
    slow_helm.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    slow_helm.chmod(slow_helm.stat().st_mode | stat.S_IXUSR)
    root = chart_repo(tmp_path / "repo", {})
    limited = render.Options(**{**options.__dict__, "helm": slow_helm, "timeout_seconds": 2})
    started = time.monotonic()
    problem = only_problem(render.render(root, ".", limited))
    assert time.monotonic() - started < 20
    assert problem.code is errors.RENDER_TRANSIENT
    assert problem.code.id == "KNV2016"
    assert problem.source == "kustomization.yaml"
    assert "did not finish within 2s" in problem.message
    assert not running(int(pid_file.read_text()))


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a killed process its parent has not reaped yet is a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_output_bigger_than_the_limit_is_stopped(tmp_path: Path, options: render.Options) -> None:
    root = write(
        tmp_path / "repo",
        {
            "kustomization.yaml": {"resources": [f"cm{i}.yaml" for i in range(20)]},
            **{f"cm{i}.yaml": cm(f"c{i}", data={"big": "x" * 10_000}) for i in range(20)},
        },
    )
    limited = render.Options(**{**options.__dict__, "max_output_bytes": 50_000})
    problem = only_problem(render.render(root, ".", limited))
    assert problem.code is errors.RENDER_OUTPUT_TOO_LARGE
    assert problem.source == "kustomization.yaml"
    assert "more than 50000 bytes" in problem.message


def test_a_second_render_of_the_same_key_runs_nothing(
    tmp_path: Path, options: render.Options, runs: list[list[str]]
) -> None:
    root = write(tmp_path / "repo", OVERLAY)
    on_disk = render.Options(**{**options.__dict__, "cache_dir": tmp_path / "cache"})
    first = render.render(root, "overlays/prod", on_disk, commit="c1")
    assert first is not None and first.cached == "" and len(runs) == 1
    second = render.render(root, "overlays/prod", on_disk, commit="c1")
    assert second is not None and second.cached == "memory" and len(runs) == 1
    assert second.manifests == first.manifests
    first.manifests.clear()
    second.manifests.clear()  # a caller's list is its own: the cached result keeps its objects
    again = render.render(root, "overlays/prod", on_disk, commit="c1")
    assert again is not None and len(again.manifests) == 4 and len(runs) == 1
    first = again
    render.clear_cache()
    third = render.render(root, "overlays/prod", on_disk, commit="c1")
    assert third is not None and third.cached == "disk" and len(runs) == 1
    assert [m.extra for m in third.manifests] == [m.extra for m in first.manifests]
    assert third.manifests == first.manifests
    render.render(root, "overlays/prod", on_disk, commit="c2")
    render.render(
        root, "overlays/prod", render.Options(**{**on_disk.__dict__, "allow_network": True}), commit="c1"
    )
    render.render(root, "overlays/prod", on_disk)  # no commit: never cached
    render.render(root, "overlays/prod", on_disk)
    assert len(runs) == 5


def test_failures_are_not_cached(tmp_path: Path, options: render.Options, runs: list[list[str]]) -> None:
    root = chart_repo(tmp_path / "repo", {"fail": True})
    for _ in range(2):
        assert only_problem(render.render(root, ".", options, commit="c1")).code.id == "KNV1068"
    assert len(runs) == 2


def test_a_vendored_chart_of_a_remote_repository_renders_without_the_network(
    tmp_path: Path, options: render.Options, runs: list[list[str]]
) -> None:
    """With ``repo`` and ``version`` set, kustomize looks in charts/<name>-<version>/<name>
    first and pulls nothing when the chart is there."""
    files = {f"charts/web-0.1.0/web/{name}": content for name, content in CHART.items()}
    root = write(
        tmp_path / "repo",
        {
            **files,
            "kustomization.yaml": {
                "helmCharts": [
                    {
                        "name": "web",
                        "repo": "https://charts.render-test.invalid",
                        "version": "0.1.0",
                        "releaseName": "vendored",
                    }
                ]
            },
        },
    )
    assert sorted(by_name(render.render(root, ".", options))) == ["ConfigMap/vendored-web"]
    assert len(runs) == 1


def test_a_snapshot_from_the_source_stage_renders_the_same(tmp_path: Path, options: render.Options) -> None:
    root = write(tmp_path / "repo", OVERLAY)
    snapshot = Snapshot(root / "overlays" / "prod", "repo", "main", "c0ffee", "overlays/prod")
    from_snapshot = render.render_snapshot(snapshot, options)
    assert from_snapshot is not None
    assert from_snapshot.manifests == by_name_list(render.render(root, "overlays/prod", options))


def by_name_list(result: render.Rendered | None) -> list[Any]:
    assert result is not None and result.problems == []
    return result.manifests


def test_a_missing_binary_is_an_internal_error(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"kustomization.yaml": {"resources": []}})
    problem = only_problem(
        render.render(
            root,
            ".",
            render.Options(kustomize=tmp_path / "no-such-kustomize", helm=tmp_path / "no-such-helm"),
        )
    )
    assert problem.code is errors.RENDER_INTERNAL
    assert problem.code.id == "KNV2015"
    assert "kustomize binary is not available" in problem.message


def test_a_source_with_too_many_files_is_refused_before_running(
    tmp_path: Path, options: render.Options, runs: list[list[str]]
) -> None:
    root = write(
        tmp_path / "repo",
        {"kustomization.yaml": {"resources": ["a.yaml"]}, **{f"{c}.yaml": cm(c) for c in "abcd"}},
    )
    limited = render.Options(**{**options.__dict__, "max_source_files": 3})
    assert only_problem(render.render(root, ".", limited)).code is errors.TOO_MANY_FILES
    assert runs == []
