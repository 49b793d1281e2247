"""The render stage's pure decisions: what a path names, which paths a kustomization names, the
command line, the environment, the origin-annotation edit, and how messages are shown."""

from __future__ import annotations

import pytest
import yaml

from acm_lite.render import plan
from acm_lite.render.plan import Kind, Ref, Switches, Where


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("base", Where.LOCAL),
        ("../base", Where.LOCAL),
        ("deploy.yaml", Where.LOCAL),
        ("https://example.com/x.yaml", Where.REMOTE),
        ("HTTP://example.com/x.yaml", Where.REMOTE),
        ("ssh://git@example.com/repo.git", Where.REMOTE),
        ("git::https://example.com/repo.git", Where.REMOTE),
        ("git@github.com:org/repo.git//base", Where.REMOTE),
        ("github.com/org/repo//base?ref=v1", Where.REMOTE),
        ("oci://registry.example.com/charts", Where.REMOTE),
        ("/etc/passwd", Where.OUTSIDE),
        ("file:///etc", Where.OUTSIDE),
        ("git::file:///etc", Where.OUTSIDE),
        ("apiVersion: v1\nkind: X\n", Where.INLINE),
    ],
)
def test_where_a_path_leads(value: str, expected: Where) -> None:
    assert plan.where(value) is expected


def test_join_refuses_climbing_above_the_root() -> None:
    assert plan.join("apps/prod", "../../base") == "base"
    assert plan.join("apps/prod", "../../../base") is None
    assert plan.join("", ".") == ""
    assert plan.join("apps", "./x/../y.yaml") == "apps/y.yaml"
    assert plan.normalize(".") == "" and plan.normalize("apps/") == "apps"
    assert plan.normalize("/abs") is None and plan.normalize("../x") is None


def test_every_path_field_of_a_kustomization_is_found() -> None:
    doc = yaml.safe_load("""
resources: [a.yaml, ../base]
bases: [old]
components: [../comp]
crds: [crd.yaml]
configurations: [conf.yaml]
patchesStrategicMerge: [psm.yaml]
generators: [gen.yaml]
transformers: [tr.yaml]
validators: [val.yaml]
patches: [{path: p.yaml}, {patch: "inline"}]
patchesJson6902: [{path: j.yaml}]
replacements: [{path: r.yaml}]
openapi: {path: schema.json}
configMapGenerator: [{name: c, files: [k=f.txt, g.txt], envs: [e.env], env: old.env}]
secretGenerator: [{name: s, files: [s.txt]}]
helmGlobals: {chartHome: vendor}
helmCharts: [{name: c, valuesFile: v.yaml, additionalValuesFiles: [more.yaml]}]
""")
    refs = {(r.field, r.value, r.kind) for r in plan.kustomization_refs(doc)}
    assert refs == {
        ("resources[0]", "a.yaml", Kind.TARGET),
        ("resources[1]", "../base", Kind.TARGET),
        ("bases[0]", "old", Kind.TARGET),
        ("components[0]", "../comp", Kind.TARGET),
        ("crds[0]", "crd.yaml", Kind.FILE),
        ("configurations[0]", "conf.yaml", Kind.FILE),
        ("patchesStrategicMerge[0]", "psm.yaml", Kind.FILE),
        ("generators[0]", "gen.yaml", Kind.PLUGIN),
        ("transformers[0]", "tr.yaml", Kind.PLUGIN),
        ("validators[0]", "val.yaml", Kind.PLUGIN),
        ("patches[0].path", "p.yaml", Kind.FILE),
        ("patchesJson6902[0].path", "j.yaml", Kind.FILE),
        ("replacements[0].path", "r.yaml", Kind.FILE),
        ("openapi.path", "schema.json", Kind.FILE),
        ("configMapGenerator[0].files[0]", "f.txt", Kind.FILE),
        ("configMapGenerator[0].files[1]", "g.txt", Kind.FILE),
        ("configMapGenerator[0].envs[0]", "e.env", Kind.FILE),
        ("configMapGenerator[0].env", "old.env", Kind.FILE),
        ("secretGenerator[0].files[0]", "s.txt", Kind.FILE),
        ("helmCharts[0].valuesFile", "v.yaml", Kind.FILE),
        ("helmCharts[0].additionalValuesFiles[0]", "more.yaml", Kind.FILE),
        ("helmGlobals.chartHome", "vendor", Kind.DIRECTORY),
    }


def test_values_of_the_wrong_type_name_no_path() -> None:
    assert plan.kustomization_refs({"resources": "a.yaml", "patches": ["x"], "openapi": 3}) == []


def test_charts_and_where_kustomize_looks_for_them() -> None:
    doc = {
        "helmGlobals": {"chartHome": "vendor"},
        "helmCharts": [
            {"name": "a"},
            {"name": "b", "repo": "https://x", "version": "1.2"},
            {"repo": "https://x"},
        ],
        "helmChartInflationGenerator": [{"chartName": "c", "chartRepoUrl": "oci://y"}],
    }
    found = plan.charts(doc)
    assert [(c.field, c.directory()) for c in found] == [
        ("helmCharts[0]", "vendor/a"),
        ("helmCharts[1]", "vendor/b-1.2/b"),
        ("helmChartInflationGenerator[0]", "vendor/c"),
    ]
    assert plan.charts({"helmCharts": [{"name": "d"}]})[0].directory() == "charts/d"


def test_builtin_plugin_configurations_name_their_files() -> None:
    assert plan.plugin_refs({"kind": "PatchTransformer", "path": "p.yaml"}) == [
        Ref("path", "p.yaml", Kind.FILE)
    ]
    assert plan.plugin_refs({"kind": "PatchStrategicMergeTransformer", "paths": ["a", "b"]}) == [
        Ref("paths[0]", "a", Kind.FILE),
        Ref("paths[1]", "b", Kind.FILE),
    ]
    assert plan.plugin_refs({"kind": "SomethingElse", "path": "/etc/passwd"}) == []
    chart = plan.plugin_chart({"kind": "HelmChartInflationGenerator", "name": "n", "repo": "r"})
    assert chart is not None and chart.directory() == "charts/n"
    inline = "kind: PatchTransformer\npath: x.yaml\n---\n- not a map\n"
    assert plan.inline_documents(inline) == [{"kind": "PatchTransformer", "path": "x.yaml"}]
    assert plan.inline_documents("{unclosed") == []


def test_the_command_line_enables_plugins_only_when_switched_on() -> None:
    argv = plan.command("kustomize", "/bin/helm", "/w/src", Switches())
    assert argv == [
        "kustomize",
        "build",
        "/w/src",
        "--enable-helm",
        "--helm-command",
        "/bin/helm",
        "--load-restrictor",
        "LoadRestrictionsRootOnly",
    ]
    both = plan.command("k", "h", "t", Switches(exec_plugins=True), plan.NO_RESTRICTIONS)
    assert both[-4:] == [
        "--load-restrictor",
        "LoadRestrictionsNone",
        "--enable-alpha-plugins",
        "--enable-exec",
    ]
    assert plan.command("k", "h", "t", Switches(alpha_plugins=True))[-1] == "--enable-alpha-plugins"


PARENT = {
    "PATH": "/usr/bin",
    "HOME": "/root",
    "KUBECONFIG": "/k",
    "GITHUB_TOKEN": "t",
    "HTTPS_PROXY": "http://proxy:3128",
    "no_proxy": "internal",
    "SSL_CERT_FILE": "/ca",
}


def test_with_the_network_off_every_proxy_refuses_and_nothing_of_the_parent_leaks() -> None:
    env = plan.environment(PARENT, "/w", Switches(), 4242)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == "http://127.0.0.1:4242"
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    assert env["GIT_ALLOW_PROTOCOL"] == "none" and env["GIT_SSH_COMMAND"] == "false"
    assert env["HOME"] == "/w/home" and env["TMPDIR"] == "/w/tmp"
    assert env["PATH"] == "/usr/bin" and env["SSL_CERT_FILE"] == "/ca"
    assert "KUBECONFIG" not in env and "GITHUB_TOKEN" not in env
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_TERMINAL_PROMPT"] == "0"


def test_with_the_network_on_the_parents_proxies_are_kept() -> None:
    env = plan.environment(PARENT, "/w", Switches(network=True), None)
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["no_proxy"] == "internal"
    assert "HTTP_PROXY" not in env and "GIT_ALLOW_PROTOCOL" not in env
    assert "GITHUB_TOKEN" not in env


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resources: [a.yaml]\n", "resources: [a.yaml]\nbuildMetadata: [originAnnotations]\n"),
        ("resources: [a.yaml]", "resources: [a.yaml]\nbuildMetadata: [originAnnotations]\n"),
        (
            "buildMetadata: [managedByLabel]\nresources: []\n",
            "buildMetadata: [originAnnotations, managedByLabel]\nresources: []\n",
        ),
        ("buildMetadata: []\n", "buildMetadata: [originAnnotations]\n"),
        (
            "buildMetadata:\n  - managedByLabel\nnamespace: a\n",
            "buildMetadata:\n  - originAnnotations\n  - managedByLabel\nnamespace: a\n",
        ),
        ("buildMetadata:\nnamespace: a\n", "buildMetadata: [originAnnotations]\nnamespace: a\n"),
    ],
)
def test_origin_annotations_are_added_to_the_kustomization(text: str, expected: str) -> None:
    assert plan.with_origin_annotations(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "buildMetadata: [originAnnotations]\n",  # there already
        "{resources: [a.yaml]}",  # a flow mapping cannot take a block key appended
        "resources: [a.yaml]\n---\nkind: X\n",  # two documents: kustomize refuses it anyway
        "- a list\n",
        "key: [unclosed\n",
        "images: [{name: x, newTag: 1.20}]\n...\n",  # a document end marker before the append
    ],
)
def test_a_kustomization_that_cannot_be_edited_safely_is_left_alone(text: str) -> None:
    assert plan.with_origin_annotations(text) is None


def test_the_origin_file_is_read_from_the_annotation() -> None:
    assert plan.origin_file("path: ../base/deploy.yaml\n") == "../base/deploy.yaml"
    assert plan.origin_file("path: 'a: b.yaml'\n") == "a: b.yaml"
    assert plan.origin_file("configuredIn: kustomization.yaml\nconfiguredBy:\n  kind: X\n") == (
        "kustomization.yaml"
    )
    assert plan.origin_file("repo: https://x\n") == ""


def test_the_cache_key_changes_with_everything_that_changes_the_output() -> None:
    tools = {"kustomize": "/k:1:2", "helm": "/h:1:2"}
    key = plan.cache_key("c1", "apps", tools, Switches(), 100)
    assert key == plan.cache_key("c1", "apps", dict(reversed(tools.items())), Switches(), 100)
    others = [
        plan.cache_key("c2", "apps", tools, Switches(), 100),
        plan.cache_key("c1", "other", tools, Switches(), 100),
        plan.cache_key("c1", "apps", {**tools, "helm": "/h:1:3"}, Switches(), 100),
        plan.cache_key("c1", "apps", tools, Switches(network=True), 100),
        plan.cache_key("c1", "apps", tools, Switches(exec_plugins=True), 100),
        plan.cache_key("c1", "apps", tools, Switches(), 101),
    ]
    assert len({key, *others}) == 7


def test_messages_show_no_private_path_and_no_credentials() -> None:
    shown = plan.scrub(
        "open /w/src/apps/x.yaml in /w/src and /w/tmp: "
        "https://bot:hunter2@git.example.com/repo.git ssh://me@host/x",
        {"/w/src/": "", "/w/src": ".", "/w": "<render-dir>"},
    )
    assert shown == (
        "open apps/x.yaml in . and <render-dir>/tmp: https://***@git.example.com/repo.git ssh://***@host/x"
    )
