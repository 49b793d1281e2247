"""Pure planning of a render: the paths a kustomization names, which of them are remote or leave
the source, the kustomize command line and environment, the origin-annotation edit of a
kustomization's text, and the cache key. No I/O happens here: the callers read and run.

Paths are slash-separated and relative to the snapshot root ("" is the root itself).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import yaml

from acm_lite import bounded

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
ROOT_ONLY = "LoadRestrictionsRootOnly"
NO_RESTRICTIONS = "LoadRestrictionsNone"
_HELM_DEFAULT_HOME = "charts"


class Kind(Enum):
    """How kustomize uses a path a kustomization names."""

    TARGET = "target"  # a file, or a directory holding a kustomization (resources, components)
    FILE = "file"  # a file read through kustomize's loader (patches, generator files, values)
    PLUGIN = "plugin"  # generators, transformers, validators: a plugin config or a kustomization
    DIRECTORY = "directory"  # a directory helm reads without the loader (chartHome)


class Where(Enum):
    """What a path names, from its text alone."""

    LOCAL = "local"
    REMOTE = "remote"  # a URL kustomize or helm would fetch
    OUTSIDE = "outside"  # an absolute path or a file:// URL: never inside the snapshot
    INLINE = "inline"  # an inline patch or plugin config, not a path


@dataclass(frozen=True)
class Ref:
    """One path named by a kustomization: ``field`` says where (``resources[2]``)."""

    field: str
    value: str
    kind: Kind


@dataclass(frozen=True)
class Chart:
    """One Helm chart a kustomization inflates; ``home`` is relative to the kustomization."""

    field: str
    name: str
    repo: str
    version: str
    home: str

    def directory(self) -> str:
        """Where kustomize looks for the chart before pulling it (its ``absChartHome``)."""
        if self.version and self.repo:
            return posixpath.join(self.home, f"{self.name}-{self.version}", self.name)
        return posixpath.join(self.home, self.name)


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_USER = re.compile(r"^[^/:@]+@[^/]")  # git@host:org/repo, SCP style


def where(value: str) -> Where:
    """Classify a path as kustomize's remote loaders would: a scheme (``https://``, ``ssh://``,
    ``git::`` forced), an SCP-style ``user@host``, or a bare ``github.com/`` host is remote."""
    text = value.strip()
    if "\n" in text:
        return Where.INLINE
    if text.lower().startswith("git::"):
        text = text[5:]
    lowered = text.lower()
    if lowered.startswith("file:") or text.startswith("/"):
        return Where.OUTSIDE
    if _SCHEME.match(text) or _USER.match(text) or lowered.startswith(("github.com/", "github.com:")):
        return Where.REMOTE
    return Where.LOCAL


def join(base: str, value: str) -> str | None:
    """``value`` resolved against the directory ``base``; None when it climbs above the root."""
    joined = posixpath.normpath(posixpath.join(base or ".", value.strip()))
    if joined == ".." or joined.startswith("../"):
        return None
    return "" if joined == "." else joined


def normalize(path: str) -> str | None:
    """A sync directory as given (``.``, ``apps/prod/``) in the form used here; None when it
    climbs above the root or is absolute."""
    if path.startswith("/"):
        return None
    return join("", path or ".")


def within(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or below it."""
    return not directory or path == directory or path.startswith(directory + "/")


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _listed(doc: Mapping[str, Any], keys: tuple[str, ...], kind: Kind) -> Iterator[Ref]:
    for key in keys:
        for i, value in enumerate(_strings(doc.get(key))):
            yield Ref(f"{key}[{i}]", value, kind)


def _generator_files(prefix: str, item: Mapping[str, Any]) -> Iterator[Ref]:
    """A ConfigMap or Secret generator's ``files`` (``key=path`` or ``path``) and env files."""
    for i, value in enumerate(_strings(item.get("files"))):
        yield Ref(f"{prefix}.files[{i}]", value.split("=", 1)[-1], Kind.FILE)
    for i, value in enumerate(_strings(item.get("envs"))):
        yield Ref(f"{prefix}.envs[{i}]", value, Kind.FILE)
    if _text(item.get("env")):
        yield Ref(f"{prefix}.env", item["env"], Kind.FILE)


def _chart_files(prefix: str, item: Mapping[str, Any]) -> Iterator[Ref]:
    if _text(item.get("valuesFile")):
        yield Ref(f"{prefix}.valuesFile", item["valuesFile"], Kind.FILE)
    for i, value in enumerate(_strings(item.get("additionalValuesFiles"))):
        yield Ref(f"{prefix}.additionalValuesFiles[{i}]", value, Kind.FILE)


def _path_items(doc: Mapping[str, Any], keys: tuple[str, ...]) -> Iterator[Ref]:
    for key in keys:
        for i, item in enumerate(_items(doc.get(key))):
            if _text(item.get("path")):
                yield Ref(f"{key}[{i}].path", item["path"], Kind.FILE)


def kustomization_refs(doc: Mapping[str, Any]) -> list[Ref]:
    """Every path a Kustomization (or Component) names, in the fields kustomize loads from."""
    refs = [
        *_listed(doc, ("resources", "bases", "components"), Kind.TARGET),
        *_listed(doc, ("crds", "configurations", "patchesStrategicMerge"), Kind.FILE),
        *_listed(doc, ("generators", "transformers", "validators"), Kind.PLUGIN),
        *_path_items(doc, ("patches", "patchesJson6902", "replacements")),
    ]
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and _text(openapi.get("path")):
        refs.append(Ref("openapi.path", openapi["path"], Kind.FILE))
    for key in ("configMapGenerator", "secretGenerator"):
        for i, item in enumerate(_items(doc.get(key))):
            refs += _generator_files(f"{key}[{i}]", item)
    for i, item in enumerate(_items(doc.get("helmCharts"))):
        refs += _chart_files(f"helmCharts[{i}]", item)
    for i, item in enumerate(_items(doc.get("helmChartInflationGenerator"))):
        if _text(item.get("values")):
            refs.append(Ref(f"helmChartInflationGenerator[{i}].values", item["values"], Kind.FILE))
    home = _chart_home(doc)
    if home != _HELM_DEFAULT_HOME:
        refs.append(Ref("helmGlobals.chartHome", home, Kind.DIRECTORY))
    return refs


def _chart_home(doc: Mapping[str, Any]) -> str:
    globals_ = doc.get("helmGlobals")
    home = _text(globals_.get("chartHome")) if isinstance(globals_, dict) else ""
    for item in _items(doc.get("helmChartInflationGenerator")):  # the last one set wins
        home = _text(item.get("chartHome")) or home
    return home or _HELM_DEFAULT_HOME


def config_homes(doc: Mapping[str, Any]) -> list[str]:
    """Directories kustomize hands helm as HELM_CONFIG_HOME (relative to kustomize's own working
    directory, not to the kustomization)."""
    globals_ = doc.get("helmGlobals")
    homes = [_text(globals_.get("configHome"))] if isinstance(globals_, dict) else []
    legacy = _items(doc.get("helmChartInflationGenerator"))
    homes += [_text(item.get("helmHome")) for item in legacy]
    return [home for home in homes if home]


def charts(doc: Mapping[str, Any]) -> list[Chart]:
    """The Helm charts a Kustomization inflates (``helmCharts`` and the older generator field)."""
    home = _chart_home(doc)
    found = [
        Chart(f"helmCharts[{i}]", _text(c.get("name")), _text(c.get("repo")), _text(c.get("version")), home)
        for i, c in enumerate(_items(doc.get("helmCharts")))
    ]
    found += [
        Chart(
            f"helmChartInflationGenerator[{i}]",
            _text(c.get("chartName")),
            _text(c.get("chartRepoUrl")),
            _text(c.get("chartVersion")),
            home,
        )
        for i, c in enumerate(_items(doc.get("helmChartInflationGenerator")))
    ]
    return [chart for chart in found if chart.name]


def plugin_refs(doc: Mapping[str, Any]) -> list[Ref]:
    """Paths named by a builtin generator or transformer's configuration (a file listed under
    ``generators``/``transformers``/``validators``, or inline there)."""
    kind = _text(doc.get("kind"))
    if kind in ("PatchTransformer", "PatchJson6902Transformer") and _text(doc.get("path")):
        return [Ref("path", doc["path"], Kind.FILE)]
    if kind == "PatchStrategicMergeTransformer":
        return list(_listed(doc, ("paths",), Kind.FILE))
    if kind in ("ConfigMapGenerator", "SecretGenerator"):
        return list(_generator_files(kind, doc))
    if kind == "ReplacementTransformer":
        return list(_path_items(doc, ("replacements",)))
    if kind == "HelmChartInflationGenerator":
        refs = list(_chart_files(kind, doc))
        if _text(doc.get("chartHome")):
            refs.append(Ref("chartHome", doc["chartHome"], Kind.DIRECTORY))
        return refs
    return []


def plugin_chart(doc: Mapping[str, Any]) -> Chart | None:
    """The chart a HelmChartInflationGenerator configuration inflates."""
    if _text(doc.get("kind")) != "HelmChartInflationGenerator" or not _text(doc.get("name")):
        return None
    return Chart(
        "HelmChartInflationGenerator",
        doc["name"],
        _text(doc.get("repo")),
        _text(doc.get("version")),
        _text(doc.get("chartHome")) or _HELM_DEFAULT_HOME,
    )


def inline_documents(value: str) -> list[dict[str, Any]]:
    """The mappings of an inline plugin configuration (``transformers: [|- kind: ...]``)."""
    try:
        docs = list(yaml.load_all(value, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError:
        return []
    return [doc for doc in docs if isinstance(doc, dict)]


@dataclass(frozen=True)
class Switches:
    """What a render may do: the choices that change kustomize's command line or environment."""

    network: bool = False
    exec_plugins: bool = False
    alpha_plugins: bool = False


def command(
    kustomize: str, helm: str, target: str, switches: Switches, restrictor: str = ROOT_ONLY
) -> list[str]:
    """``kustomize build`` with Helm inflation; plugins only when switched on."""
    argv = [
        kustomize,
        "build",
        target,
        "--enable-helm",
        "--helm-command",
        helm,
        "--load-restrictor",
        restrictor,
    ]
    if switches.alpha_plugins or switches.exec_plugins:
        argv.append("--enable-alpha-plugins")
    if switches.exec_plugins:
        argv.append("--enable-exec")
    return argv


def environment(
    parent: Mapping[str, str], work: str, switches: Switches, closed_port: int | None
) -> dict[str, str]:
    """The whole environment of kustomize and helm: ``bounded.sealed_environment`` (nothing of
    the parent's but what a tool needs, git sealed, and with the network off every proxy
    refusing), with kustomize's plugin home inside the render directory."""
    env = bounded.sealed_environment(parent, work, network=switches.network, closed_port=closed_port)
    env["KUSTOMIZE_PLUGIN_HOME"] = posixpath.join(work, "plugins")
    return env


_TOP_KEY = re.compile(r"^buildMetadata\s*:(.*)$", re.MULTILINE)
_FLOW = re.compile(r"^\s*\[(.*)\]\s*(#.*)?$")
_ITEM = re.compile(r"^(\s*)-\s")


def with_origin_annotations(text: str) -> str | None:
    """The kustomization's text with ``buildMetadata: [originAnnotations]`` added, or None when
    it is there already or the file cannot be edited without changing anything else (checked by
    parsing both texts: every other field must stay equal)."""
    before = _parsed(text)
    if before is None:
        return None
    listed = before.get("buildMetadata")
    if isinstance(listed, list) and "originAnnotations" in listed:
        return None
    edited = _edited(text, "buildMetadata" in before)
    after = _parsed(edited) if edited is not None else None
    if after is None:
        return None
    wanted = dict(before, buildMetadata=["originAnnotations", *(listed or [])])
    return edited if after == wanted else None


def _parsed(text: str) -> dict[str, Any] | None:
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) else None


def _edited(text: str, present: bool) -> str | None:
    if not present:
        return (
            text
            + ("" if text.endswith("\n") or not text else "\n")
            + ("buildMetadata: [originAnnotations]\n")
        )
    found = _TOP_KEY.search(text)
    if found is None:
        return None
    rest = found.group(1)
    flow = _FLOW.match(rest)
    if flow:
        inner = flow.group(1).strip()
        items = f"originAnnotations, {inner}" if inner else "originAnnotations"
        return f"{text[: found.start()]}buildMetadata: [{items}]{text[found.end() :]}"
    if rest.strip() and not rest.strip().startswith("#"):
        return None
    following = text[found.end() + 1 :].split("\n", 1)[0]
    item = _ITEM.match(following)
    indent = item.group(1) if item else ""
    if item is None:
        return f"{text[: found.start()]}buildMetadata: [originAnnotations]{text[found.end() :]}"
    return f"{text[: found.end()]}\n{indent}- originAnnotations{text[found.end() :]}"


def origin_file(annotation: str) -> str:
    """The file kustomize records in an origin annotation: ``path`` for a resource read from a
    file, ``configuredIn`` for one a generator (a Helm chart) made."""
    for line in annotation.splitlines():
        key, _, value = line.partition(":")
        if key in ("path", "configuredIn") and value.strip():
            return _unquoted(value.strip())
    return ""


def _unquoted(value: str) -> str:
    if value[:1] in ("'", '"'):
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return loaded if isinstance(loaded, str) else value
    return value


def cache_key(
    commit: str, sync_dir: str, tools: Mapping[str, str], switches: Switches, max_output_bytes: int
) -> str:
    """The identity of a rendered output: the same commit and directory rendered by the same
    binaries with the same choices gives the same objects."""
    material = {
        "commit": commit,
        "dir": sync_dir,
        "tools": dict(sorted(tools.items())),
        "network": switches.network,
        "exec": switches.exec_plugins,
        "alpha": switches.alpha_plugins,
        "max_output": max_output_bytes,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def scrub(text: str, paths: Mapping[str, str]) -> str:
    """A tool's message as shown: private directories replaced by what they stand for, and the
    user part of any URL (``https://user:token@host``) masked."""
    for private, shown in sorted(paths.items(), key=lambda p: -len(p[0])):
        text = text.replace(private, shown)
    return _USERINFO.sub(r"\1***@", text)
