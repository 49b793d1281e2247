"""A Helm chart as a source (Config Sync's ``sourceType: helm``): the chart fetched from a Helm
repository over HTTP(S) or from an OCI registry (``oci://``), rendered by ``helm template`` into
an immutable snapshot of manifests.

From an HTTP repository, ``index.yaml`` is read and the version picked (an exact version, or a
constraint such as ``^1.2`` or ``>=1.0 <2``: the newest match; empty is the newest release); the
``.tgz`` is downloaded and checked against the index's digest. From a registry, the chart is the
image ``<repo>/<chart>:<version>`` (a constraint is matched against its tags), pulled by
``source.oci`` with its digests checked. Pulled charts are kept by digest under
``<cache>/helm/charts/``.

The chart is hostile: downloads are bounded, the archive may hold no link, no absolute path and
nothing leaving it, and ``helm template`` runs in a directory of its own with no credential in its
environment, no network (proxies pointing at a refusing loopback port), under a time limit
(``KNV2016`` when passed) and an output limit (``ACM1073``); helm's own failure is ``KNV1068``.

Without a release name the release is ``release-name``, as ``helm template`` (and so Config
Sync) names it. The snapshot's commit is ``<version>@<digest>`` (the chart's), so a newer chart matching the
constraint is a new commit at the next poll; when values (inline, files, or the text of the
ConfigMaps ``valuesFileRefs`` names, which the caller reads), a release name, a namespace, a deploy
namespace or ``includeCRDs`` are given, ``+<hash of them>`` follows, so that changing them is a
new commit too (and a new render, never one from the cache).

Values are passed to ``helm template`` in Config Sync's order: values files, then the
``valuesFileRefs`` in the order named (a later one overrides an earlier one), then the inline
``values``, which override them all. ``deployNamespace`` is applied to the output as Config
Sync's helm-sync applies it (kpt's ``set-namespace``), see ``deploy_to``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from acm_lite import api, bounded, errors
from acm_lite.errors import AcmError
from acm_lite.source import archive, oci, semver
from acm_lite.source.auth import strip_userinfo
from acm_lite.source.deploynamespace import deploy_to
from acm_lite.source.snapshot import Snapshot
from acm_lite.source.transfer import Client, Credentials

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
DEFAULT_NAMESPACE = "default"
DEFAULT_RELEASE = "release-name"  # helm template's own, which Config Sync keeps when none is named
MAX_INDEX = 64 << 20
MAX_CHART = int(os.environ.get("ACM_LITE_HELM_MAX_CHART_MB", "32")) << 20
MAX_OUTPUT = 64 << 20
TIMEOUT = float(os.environ.get("ACM_LITE_HELM_TIMEOUT", "120"))
KEEP_RENDERED = 8
_CHART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
Progress = Callable[[str], None]


AUTH_NONE, AUTH_TOKEN = api.AUTH_NONE, api.AUTH_TOKEN
CLOUD_AUTH = api.CLOUD_AUTH
HELM_AUTH = api.HELM_AUTH
DEFAULT_VALUES_KEY = api.DEFAULT_VALUES_KEY
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class ValuesFileRef:
    """A ConfigMap (in the RootSync's namespace) and the key of it holding a values file."""

    name: str
    data_key: str = DEFAULT_VALUES_KEY

    def to_spec(self) -> dict[str, str]:
        return {"name": self.name, "dataKey": self.data_key}


@dataclass(frozen=True)
class HelmSpec:
    """What Config Sync's ``spec.helm`` names, with local values files and a CA file for a
    private repository. ``auth`` and ``secret_ref`` (a Secret with ``username`` and
    ``password``) and ``values_file_refs`` are read from the cluster by the caller, which hands
    ``fetch`` the credentials and the values' text."""

    repo: str
    chart: str
    version: str = ""
    release_name: str = ""
    namespace: str = ""
    values: str = ""  # inline values, YAML or JSON text
    values_files: tuple[Path, ...] = ()
    include_crds: bool = False
    ca_file: Path | None = field(default=None)
    deploy_namespace: str = ""  # namespaced objects of the chart go here (RootSync only)
    values_file_refs: tuple[ValuesFileRef, ...] = ()
    auth: str = AUTH_NONE
    secret_ref: str = ""  # the Secret holding the credentials of auth ``token``

    @property
    def is_oci(self) -> bool:
        return self.repo.startswith("oci://")

    @property
    def display(self) -> str:
        """The repository and chart, as messages and the status name them."""
        return f"{strip_userinfo(self.repo).rstrip('/')}/{self.chart}"

    def to_spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "repo": strip_userinfo(self.repo),
            "chart": self.chart,
            "auth": self.auth,
            "includeCRDs": self.include_crds,
        }
        if self.deploy_namespace:
            out["deployNamespace"] = self.deploy_namespace
        else:
            out["namespace"] = self.namespace or DEFAULT_NAMESPACE
        if self.secret_ref:
            out["secretRef"] = {"name": self.secret_ref}
        if self.values_file_refs:
            out["valuesFileRefs"] = [ref.to_spec() for ref in self.values_file_refs]
        if self.version:
            out["version"] = self.version
        if self.release_name:
            out["releaseName"] = self.release_name
        values = parse_values(self.values, "inline values") if self.values else None
        if values:
            out["values"] = values
        return out

    def check(self, kind: str = "RootSync") -> None:
        """Config Sync's checks of the spec (``KNV1061``), with its messages."""
        if self.namespace and self.deploy_namespace:
            raise invalid_sync(
                f"{kind}s must specify only one of 'spec.helm.namespace' or 'spec.helm.deployNamespace'"
            )
        if self.deploy_namespace and not _DNS_LABEL.fullmatch(self.deploy_namespace):
            raise invalid_sync(
                f"spec.helm.deployNamespace {errors.shown(self.deploy_namespace)} is not a namespace name"
            )
        if self.auth not in HELM_AUTH:
            raise invalid_sync(
                f"{kind}s must specify spec.helm.auth to be one of {','.join(sorted(HELM_AUTH))}"
            )
        if self.auth == AUTH_TOKEN and not self.secret_ref:
            raise invalid_sync(
                f"{kind}s must specify spec.helm.secretRef.name when spec.helm.auth is 'token'"
            )
        if self.auth != AUTH_TOKEN and self.secret_ref:
            raise invalid_sync(
                f"{kind}s must not specify spec.helm.secretRef.name when spec.helm.auth is {self.auth!r}"
            )
        if any(not ref.name for ref in self.values_file_refs):
            raise invalid_sync(f"{kind}s must specify spec.helm.valuesFileRefs.name")
        # names go into API paths: nothing but an object name may reach them
        for field_name, name in [
            *(("spec.helm.valuesFileRefs.name", ref.name) for ref in self.values_file_refs),
            ("spec.helm.secretRef.name", self.secret_ref),
        ]:
            if name and not _DNS_SUBDOMAIN.fullmatch(name):
                raise invalid_sync(f"{field_name} {errors.shown(name)} is not an object name")


def invalid_sync(message: str) -> AcmError:
    return AcmError(errors.INVALID_SYNC, message, hint="fix the RootSync's spec (or the flags)")


def parse_values(text: str, about: str) -> dict[str, Any]:
    try:
        values = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        raise AcmError(errors.RENDER_FAILED, f"the Helm {about} are not YAML: {e}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise AcmError(errors.RENDER_FAILED, f"the Helm {about} are not a mapping")
    return values


@dataclass(frozen=True)
class _Chart:
    version: str
    digest: str  # sha256:<hex> of the manifest (OCI) or of the .tgz (HTTP)
    archive: Path  # the .tgz in the cache


def fetch(
    spec: HelmSpec,
    *,
    helm: Path | None,
    cache: Path,
    credentials: Credentials | None = None,
    progress: Progress = lambda _m: None,
    ref_values: tuple[tuple[str, str], ...] = (),
) -> Snapshot:
    """The chart ``spec`` names, at the version it asks for, rendered. ``ref_values`` are the
    values files ``spec.values_file_refs`` name, read by the caller: (what names it, its text)."""
    spec.check()
    if not _CHART_NAME.fullmatch(spec.chart):
        raise AcmError(errors.ARTIFACT_NOT_FOUND, f"{errors.shown(spec.chart)} is not a chart name")
    progress(f"fetching {spec.display}")
    charts = cache / "helm" / "charts"
    charts.mkdir(parents=True, exist_ok=True)
    chart = (
        _from_registry(spec, charts, credentials)
        if spec.is_oci
        else _from_repository(spec, charts, credentials)
    )
    inputs = _inputs(spec, ref_values)
    commit = f"{chart.version}@{chart.digest}"
    if inputs:
        commit += "+" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]
    if helm is None:
        found = shutil.which("helm")
        helm = Path(found) if found else None
    if helm is None:
        raise AcmError(
            errors.RENDER_INTERNAL,
            "the helm binary is not available",
            hint="run `acm-lite dev build helm` or set KUBEBUILDER_ASSETS",
        )
    root = _rendered(spec, chart, commit, helm, cache / "helm" / "rendered", ref_values=ref_values)
    return Snapshot(root, spec.display, spec.version or "(newest)", commit, ".")


def _inputs(spec: HelmSpec, ref_values: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """What besides the chart decides the output (empty when all are defaults)."""
    inputs: dict[str, Any] = {}
    if spec.deploy_namespace:
        inputs["deployNamespace"] = spec.deploy_namespace
    if ref_values:
        inputs["valuesFileRefs"] = [hashlib.sha256(text.encode()).hexdigest() for _, text in ref_values]
    if spec.release_name and spec.release_name != DEFAULT_RELEASE:
        inputs["release"] = spec.release_name
    if spec.namespace and spec.namespace != DEFAULT_NAMESPACE:
        inputs["namespace"] = spec.namespace
    if spec.include_crds:
        inputs["includeCRDs"] = True
    if spec.values.strip():
        inputs["values"] = spec.values
    for path in spec.values_files:
        try:
            inputs.setdefault("files", []).append(hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError as e:
            raise AcmError(
                errors.PATH_NOT_FOUND, f"cannot read the Helm values file {path}: {e.strerror}"
            ) from None
    return inputs


# HTTP repositories


def _from_repository(spec: HelmSpec, charts: Path, credentials: Credentials | None) -> _Chart:
    repo = strip_userinfo(spec.repo).rstrip("/")
    if urlsplit(repo).scheme not in ("http", "https"):
        raise AcmError(
            errors.ARTIFACT_NOT_FOUND,
            f"the Helm repository {errors.shown(repo)} is neither an http(s):// nor an oci:// URL",
        )
    client = Client(f"the Helm repository {repo}", ca_file=spec.ca_file, credentials=credentials)
    authorization = credentials.header() if credentials else None
    index_url = repo + "/index.yaml"
    resp = client.get(index_url, limit=MAX_INDEX, authorization=authorization, origin=repo)
    entries = _entries(resp.body, repo, spec.chart)
    versions = [str(e.get("version", "")) for e in entries]
    picked = semver.newest(versions, _wanted(spec))
    if picked is None:
        raise _no_version(spec, versions)
    entry = entries[versions.index(picked)]
    urls = entry.get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise AcmError(
            errors.ARTIFACT_REJECTED, f"the index of {repo} names no URL for {spec.chart} {picked}"
        )
    digest = str(entry.get("digest") or "")
    if digest and not digest.startswith("sha256:"):
        digest = "sha256:" + digest
    if digest and (charts / f"{digest[7:]}.tgz").is_file():
        return _Chart(picked, digest, charts / f"{digest[7:]}.tgz")
    url = urljoin(repo + "/", urls[0])
    about = f"chart {spec.chart} {picked} from {repo}"
    data = client.get(url, limit=MAX_CHART, authorization=authorization, origin=repo, about=about).body
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest and got != digest:
        raise AcmError(
            errors.DIGEST_MISMATCH,
            f"{about} has digest {got}, not {digest} as the repository's index says",
            hint="the repository or something between it and acm-lite altered the chart",
        )
    return _Chart(picked, got, _store(charts, got, data))


def _entries(body: bytes, repo: str, chart: str) -> list[dict[str, Any]]:
    about = f"the index of the Helm repository {repo}"
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(body, Loader=_LOADER)):
            raise AcmError(errors.ARTIFACT_REJECTED, f"{about} uses YAML aliases")
        index = yaml.load(body, Loader=_LOADER)
    except yaml.YAMLError as e:
        raise AcmError(errors.ARTIFACT_REJECTED, f"{about} is not YAML: {str(e)[:200]}") from None
    entries = index.get("entries") if isinstance(index, dict) else None
    if not isinstance(entries, dict):
        raise AcmError(errors.ARTIFACT_REJECTED, f"{about} has no entries")
    found = entries.get(chart)
    if not found:
        raise AcmError(
            errors.ARTIFACT_NOT_FOUND,
            f"the Helm repository {repo} has no chart {errors.shown(chart)}",
            hint="check the chart name",
        )
    if not isinstance(found, list):
        raise AcmError(errors.ARTIFACT_REJECTED, f"{about}: the entry of {chart} is not a list")
    return [e for e in found if isinstance(e, dict)]


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _wanted(spec: HelmSpec) -> str:
    """The version or constraint asked for; ``latest`` (as in Config Sync) and empty mean the
    newest release."""
    return "" if spec.version.strip() == "latest" else spec.version


def _no_version(spec: HelmSpec, versions: list[str]) -> AcmError:
    shown = ", ".join(versions[:10]) + (", ..." if len(versions) > 10 else "")
    wanted = repr(spec.version) if spec.version else "a release"
    return AcmError(
        errors.ARTIFACT_NOT_FOUND,
        f"chart {spec.display} has no version matching {wanted} (versions: {shown or 'none'})",
        hint="check the chart version or constraint",
    )


def _store(charts: Path, digest: str, data: bytes) -> Path:
    target = charts / f"{digest[7:]}.tgz"
    with tempfile.NamedTemporaryFile(dir=charts, prefix=".partial-", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, target)
    return target


# OCI registries


def _from_registry(spec: HelmSpec, charts: Path, credentials: Credentials | None) -> _Chart:
    base = strip_userinfo(spec.repo).removeprefix("oci://").rstrip("/")
    parsed = oci.Reference.parse(f"{base}/{spec.chart}")
    ref = oci.Reference(parsed.registry, parsed.repository)  # no tag yet: messages name the chart
    registry = oci.Registry(ref, credentials=credentials, ca_file=spec.ca_file)
    if semver.is_exact(_wanted(spec)):
        version = spec.version.strip()
    else:
        tags = [t.replace("_", "+") for t in registry.tags()]
        picked = semver.newest(tags, _wanted(spec))
        if picked is None:
            raise _no_version(spec, tags)
        version = picked
    tagged = oci.Reference(ref.registry, ref.repository, version.replace("+", "_"))
    registry.ref = tagged
    digest, manifest = registry.manifest()
    layers = [layer for layer in manifest["layers"] if layer.get("mediaType") == CHART_LAYER]
    if len(layers) != 1:
        raise AcmError(errors.ARTIFACT_REJECTED, f"{tagged} is not a Helm chart (no single chart layer)")
    layer = str(layers[0]["digest"])
    stored = charts / f"{layer[7:]}.tgz"
    if not stored.is_file():
        stored = _store(charts, layer, registry.blob(layer, MAX_CHART))
    return _Chart(version, digest, stored)


# rendering


def _rendered(
    spec: HelmSpec,
    chart: _Chart,
    commit: str,
    helm: Path,
    rendered: Path,
    *,
    ref_values: tuple[tuple[str, str], ...] = (),
) -> Path:
    """``helm template`` of the chart, once per commit and binary; the directory it wrote."""
    info = helm.stat()
    key = hashlib.sha256(f"{commit}\0{helm}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:32]
    target = rendered / key
    if (target / "manifests.yaml").is_file():
        os.utime(target)
        return target
    rendered.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=rendered) as tmp:
        work = Path(tmp)
        chart_dir = _unpacked(chart, spec, work / "chart")
        out = work / "out"
        out.mkdir()
        values = _values(spec, work, ref_values)
        argv = [str(helm), "template", spec.release_name or DEFAULT_RELEASE, str(chart_dir)]
        argv += ["--namespace", spec.namespace or DEFAULT_NAMESPACE]
        if spec.include_crds:
            argv.append("--include-crds")
        for path in values:
            argv += ["--values", str(path)]
        output = _run(argv, work, spec)
        if spec.deploy_namespace:
            output = deploy_to(output, spec.deploy_namespace, f"helm template of {spec.display}")
        (out / "manifests.yaml").write_bytes(output)
        with contextlib.suppress(OSError):
            os.replace(out, target)
    _prune(rendered)
    return target


def _unpacked(chart: _Chart, spec: HelmSpec, into: Path) -> Path:
    into.mkdir()
    about = f"chart {spec.display} {chart.version}"
    archive.unpack(chart.archive.read_bytes(), into, about, symlinks=False)
    tops = [p for p in into.iterdir()]
    if len(tops) != 1 or not (tops[0] / "Chart.yaml").is_file():
        raise AcmError(errors.ARTIFACT_REJECTED, f"{about}: not one chart directory with a Chart.yaml")
    return tops[0]


def _values(spec: HelmSpec, work: Path, ref_values: tuple[tuple[str, str], ...] = ()) -> list[Path]:
    """The values files in Config Sync's order: local files, the ConfigMaps' in the order named,
    then the inline values (the last one given wins, as with ``helm --values``)."""
    paths = list(spec.values_files)
    for i, (about, text) in enumerate(ref_values):
        parse_values(text, f"values of {about}")
        path = work / f"values.ref-{i}.yaml"
        path.write_text(text)
        paths.append(path)
    if spec.values.strip():
        parse_values(spec.values, "inline values")
        inline = work / "values.inline.yaml"
        inline.write_text(spec.values)
        paths.append(inline)
    return paths


def _env(work: Path, closed_port: int) -> dict[str, str]:
    """helm's environment: the sealed one every tool a chart drives gets (no network), with
    helm's own homes inside it."""
    env = bounded.sealed_environment(os.environ, str(work), network=False, closed_port=closed_port)
    for directory in (env["HOME"], env["TMPDIR"]):
        Path(directory).mkdir(parents=True, exist_ok=True)
    home = Path(env["HOME"])
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
    )
    return env


def _run(argv: list[str], work: Path, spec: HelmSpec) -> bytes:
    """helm's standard output, within the time and output limits."""
    try:
        with bounded.closed_port() as port:
            finished = bounded.run(
                argv, cwd=work, env=_env(work, port), timeout=TIMEOUT, max_stdout=MAX_OUTPUT
            )
    except OSError as e:
        raise AcmError(errors.RENDER_INTERNAL, f"cannot run helm: {e.strerror}") from None
    about = f"helm template of {spec.display}"
    if finished.timed_out:
        raise AcmError(
            errors.RENDER_TRANSIENT, f"{about} ran past its limit of {TIMEOUT:.0f} s and was stopped"
        )
    if finished.too_large:
        raise AcmError(errors.RENDER_OUTPUT_TOO_LARGE, f"{about} printed more than {MAX_OUTPUT >> 20} MiB")
    if finished.returncode != 0:
        message = finished.stderr.decode("utf-8", "replace").replace(str(work) + "/", "").strip()
        raise AcmError(errors.RENDER_FAILED, f"{about} failed: {message[-1500:]}")
    return finished.stdout


def _prune(rendered: Path) -> None:
    kept = sorted(
        (p for p in rendered.iterdir() if not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in kept[KEEP_RENDERED:]:
        shutil.rmtree(old, ignore_errors=True)
