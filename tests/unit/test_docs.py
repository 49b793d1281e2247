"""The examples in docs/*.md are real: every YAML block parses, every RootSync is one the CRD the
chart installs accepts (no field it would prune) and the daemon's reader turns into a sync, every
Fleet loads with acm-lite's fleet reader, every `acm-lite` command line parses with acm-lite's own
parser, and every `helm install ... charts/acm-lite --set` names values the chart has and its
schema accepts."""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from acm_lite import api
from acm_lite.cli.main import build_parser
from acm_lite.fleet import registry
from acm_lite.reconcile import rootsyncs

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
CRD = ROOT / "acm_lite" / "data" / "crds" / "rootsyncs.acm-lite.io.yaml"
CHART = ROOT / "charts" / "acm-lite"
CONFIG_SYNC_API = "configsync.gke.io/v1beta1"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(lang: str) -> list[Block]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if m.group(1) == lang:
                found.append(Block(path.name, text.count("\n", 0, m.start()) + 1, lang, m.group(2)))
    return found


def yaml_documents() -> list[tuple[Block, Any]]:
    return [(b, doc) for b in blocks("yaml") for doc in yaml.safe_load_all(b.text) if doc is not None]


def commands() -> list[tuple[Block, list[str]]]:
    """Each shell command of the docs, continuation lines joined, comments and leading VAR=value
    assignments dropped."""
    out = []
    for block in blocks("sh"):
        for line in block.text.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and _ENV.match(words[0]):
                words.pop(0)
            if words:
                out.append((block, words))
    return out


def _kinds(kind: str) -> list[tuple[Block, dict[str, Any]]]:
    return [(b, d) for b, d in yaml_documents() if isinstance(d, dict) and d.get("kind") == kind]


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _pruned(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the API server would drop from ``value`` (structural pruning): keys its schema does
    not name, where the schema does not preserve unknown fields."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        out = []
        for key, item in value.items():
            sub = schema["properties"].get(key)
            out += [f"{path}.{key}"] if sub is None else _pruned(item, sub, f"{path}.{key}")
        return out
    if isinstance(value, list) and "items" in schema:
        return [p for i, item in enumerate(value) for p in _pruned(item, schema["items"], f"{path}[{i}]")]
    return []


def test_the_docs_exist_and_the_readme_links_each() -> None:
    names = {p.name for p in DOCS}
    assert {
        "install.md",
        "sources.md",
        "troubleshooting.md",
        "migrating-from-config-sync.md",
        "fleet.md",
    } <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [n for n in sorted(names) if f"(docs/{n})" not in readme] == []


def test_every_yaml_block_parses() -> None:
    found = blocks("yaml")
    assert len(found) >= 15
    for block in found:
        try:
            list(yaml.safe_load_all(block.text))
        except yaml.YAMLError as e:
            pytest.fail(f"{block}: {e}")


def test_every_source_has_a_rootsync_example() -> None:
    specs = [rootsyncs.spec_of(d) for b, d in _kinds("RootSync") if b.doc == "sources.md"]
    assert all(s is not None for s in specs)
    kinds = {(s.source_type, (s.helm.repo.split(":")[0] if s.helm else "")) for s in specs if s}
    assert {("git", ""), ("helm", "https"), ("helm", "oci"), ("oci", "")} <= kinds
    git = [s for s in specs if s and s.source_type == "git"]
    assert {s.revision for s in git} >= {"main", "v1.4.2", "3f2c9d1e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"}
    assert any(s.dir != "." for s in git) and any(s.repo.startswith("git@") for s in git)
    assert any(s.namespace for s in specs if s)


def test_every_rootsync_is_accepted_by_the_crd_and_read_by_the_daemon() -> None:
    schema = _schema()
    found = _kinds("RootSync")
    assert len(found) >= 10
    for block, doc in found:
        spec = rootsyncs.spec_of(doc)
        assert spec is not None, f"{block}: the daemon reads no sync from {doc['metadata']['name']}"
        if doc.get("apiVersion") == CONFIG_SYNC_API:
            continue  # Config Sync's own object, shown as `serve --config` reads it
        assert doc.get("apiVersion") == api.API_VERSION, block
        assert doc["metadata"].get("namespace") == api.SYSTEM_NAMESPACE, block
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
        assert errors == [], f"{block}: {errors}"
        spec_schema = schema["properties"]["spec"]
        assert _pruned(doc["spec"], spec_schema, ".spec") == [], f"{block}: fields the CRD does not have"
        if spec.helm is not None:
            spec.helm.check()
        if spec.oci is not None:
            spec.oci.check()


def test_a_config_sync_rootsync_example_is_read_by_serve_config(tmp_path: Path) -> None:
    found = [(b, d) for b, d in _kinds("RootSync") if d.get("apiVersion") == CONFIG_SYNC_API]
    assert found
    for block, doc in found:
        path = tmp_path / "rootsyncs.yaml"
        path.write_text(yaml.safe_dump(doc))
        [spec] = rootsyncs.from_config(path)
        git = doc["spec"]["git"]
        expected = git.get("revision") if git.get("revision") not in (None, "", "HEAD") else git.get("branch")
        assert (spec.repo, spec.revision) == (git["repo"], expected or "HEAD"), block


def test_the_pruning_check_finds_a_field_the_crd_lacks() -> None:
    spec = {"git": {"repo": "x", "brnach": "main"}, "override": {"reconcileTimeout": "5m"}}
    assert _pruned(spec, _schema()["properties"]["spec"], ".spec") == [".spec.git.brnach"]


def test_every_fleet_example_loads(tmp_path: Path) -> None:
    found = _kinds("Fleet")
    assert len(found) >= 2
    for i, (block, doc) in enumerate(found):
        path = tmp_path / f"fleet-{i}.yaml"
        path.write_text(yaml.safe_dump(doc))
        fleet = registry.load(path)
        assert [c.name for c in fleet.clusters] == [c["name"] for c in doc["spec"]["clusters"]], block
    members = {
        c.sync.source_type
        for i in range(len(found))
        for c in registry.load(tmp_path / f"fleet-{i}.yaml").clusters
    }
    assert members == {"git", "helm", "oci"}


def test_every_acm_lite_command_parses() -> None:
    found = [(b, words) for b, words in commands() if words[0] == "acm-lite"]
    assert len(found) >= 40
    seen = set()
    for block, words in found:
        try:
            args = build_parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"{block}: `{shlex.join(words)}` does not parse")
        seen.add(args.command)
    assert {"sync", "diff", "vet", "hydrate", "status", "serve", "fleet", "dev", "errors"} <= seen


def test_the_command_check_refuses_a_wrong_flag() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sync", "--once", "--branch", "main"])


def _set(values: dict[str, Any], key: str, raw: str) -> None:
    *parents, last = key.split(".")
    node = values
    for part in parents:
        assert isinstance(node.get(part), dict), f"no chart value {key}"
        node = node[part]
    assert last in node, f"no chart value {key}"
    if raw.startswith("{") and raw.endswith("}"):
        node[last] = [v for v in raw[1:-1].split(",") if v]
    elif raw in ("true", "false"):
        node[last] = raw == "true"
    elif re.fullmatch(r"-?[0-9]+", raw):
        node[last] = int(raw)
    else:
        node[last] = raw


def test_every_helm_install_of_the_chart_sets_values_it_has() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    schema = yaml.safe_load((CHART / "values.schema.json").read_text(encoding="utf-8"))
    installs = [
        (b, w)
        for b, w in commands()
        if w[:2] in (["helm", "install"], ["helm", "upgrade"]) and "charts/acm-lite" in w
    ]
    assert len(installs) >= 3
    for block, words in installs:
        values = copy.deepcopy(defaults)
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        assert sets, block
        for item in sets:
            key, _, raw = item.partition("=")
            try:
                _set(values, key, raw)
            except AssertionError as e:
                pytest.fail(f"{block}: {e}")
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(values)]
        assert errors == [], f"{block}: {errors}"


def test_relative_links_between_the_docs_resolve() -> None:
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).exists(), f"{path.name}: a link to {target} leads nowhere"
