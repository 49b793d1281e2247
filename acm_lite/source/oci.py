"""An OCI artifact as a source (Config Sync's ``sourceType: oci``): an image whose layers are
tarballs of manifests, pulled over the OCI distribution API into an immutable snapshot.

The client is a small one of our own over urllib3 (already a dependency) rather than a registry
library or the ``oras`` binary: pulling an artifact is three kinds of GET (manifest, blobs, the
token of a registry's auth flow), each of which must be bounded, digest-checked and kept from
leaking credentials, and that is easier to hold to in a few hundred lines than around a client
that reads whole bodies into memory or writes straight to disk. ``push`` (the same API's uploads)
publishes an artifact, for tests and tooling.

A reference is ``host[:port]/path[:tag][@sha256:...]``. The registry is reached over https
(with ``ca_file`` for a private CA); a loopback registry without a CA file over plain http, as
Docker and Config Sync treat ``localhost``. Authentication answers the registry's challenge:
``Basic`` with the user name and password, or ``Bearer`` by fetching a token from the realm it
names with them (the distribution token flow). The snapshot's commit is the manifest's digest,
so a tag moved to a new image is a new commit at the next poll. Each digest is unpacked once
under ``<cache>/oci/<digest>/``; every layer is unpacked in order as Config Sync flattens an
image, with the hostile-archive checks of ``source.archive``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

from acm_lite import api, errors
from acm_lite.errors import AcmError
from acm_lite.source import archive
from acm_lite.source.snapshot import Snapshot
from acm_lite.source.transfer import Client, Credentials, status_error

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))
MAX_MANIFEST = 4 << 20
MAX_LAYER = int(os.environ.get("ACM_LITE_SOURCE_MAX_DOWNLOAD_MB", "256")) << 20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPOSITORY = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class Reference:
    """``registry/repository`` with a tag, a digest, or both (the digest wins)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        rest, _, digest = text.strip().partition("@")
        registry, slash, path = rest.partition("/")
        if not slash or not path or not ("." in registry or ":" in registry or registry == "localhost"):
            raise _invalid(text, "it names no registry host (host[:port]/path)")
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, _, tag = path.rpartition(":")
            if not _TAG.fullmatch(tag):
                raise _invalid(text, f"the tag {tag!r} is not a valid tag")
        if not _REPOSITORY.fullmatch(path):
            raise _invalid(text, f"the repository {path!r} is not a valid repository name")
        if digest and not _DIGEST.fullmatch(digest):
            raise _invalid(text, "the digest is not sha256:<64 hex digits>")
        return cls(registry, path, tag or (None if digest else "latest"), digest or None)

    @property
    def reference(self) -> str:
        """What the manifest is fetched by."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _invalid(text: str, why: str) -> AcmError:
    return AcmError(
        errors.ARTIFACT_NOT_FOUND,
        f"{errors.shown(text)} is not an OCI image reference: {why}",
        hint="write host[:port]/repository[:tag][@sha256:digest]",
    )


@dataclass(frozen=True)
class OciSpec:
    """What Config Sync's ``spec.oci`` names (with a CA file for a private registry)."""

    image: str
    dir: str = "."
    ca_file: Path | None = None
    auth: str = "none"  # none, or a cloud identity: gcenode, gcpserviceaccount, k8sserviceaccount

    def to_spec(self) -> dict[str, Any]:
        return {"image": self.image, "dir": self.dir, "auth": self.auth}

    def check(self, kind: str = "RootSync") -> None:
        """Config Sync's check of ``spec.oci.auth`` (``KNV1061``), with its message."""
        if self.auth not in OCI_AUTH:
            raise AcmError(
                errors.INVALID_SYNC,
                f"{kind}s must specify spec.oci.auth to be one of {','.join(sorted(OCI_AUTH))}",
                hint="fix the RootSync's spec (or the flags)",
            )


OCI_AUTH = api.OCI_AUTH


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Registry:
    """One repository of one registry, with its credentials and the token it was given."""

    def __init__(
        self, ref: Reference, *, credentials: Credentials | None = None, ca_file: Path | None = None
    ) -> None:
        self.ref = ref
        self.credentials = credentials
        scheme = "http" if _loopback(ref.registry) and ca_file is None else "https"
        self.base = f"{scheme}://{ref.registry}"
        self.client = Client(str(ref), ca_file=ca_file, credentials=credentials)
        self.authorization: str | None = None

    def request(
        self,
        path: str,
        *,
        limit: int,
        about: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        ok: tuple[int, ...] = (200,),
        url: str | None = None,
    ) -> Any:
        """A request to the registry, answering its authentication challenge once."""
        url = url or self.base + path
        kwargs = {"headers": headers, "method": method, "body": body, "about": about, "origin": self.base}
        resp = self.client.get(url, limit=limit, authorization=self.authorization, ok=(*ok, 401), **kwargs)  # type: ignore[arg-type]
        if resp.status != 401:
            return resp
        self.authorization = self._answer(resp.headers.get("www-authenticate", ""), about)
        return self.client.get(url, limit=limit, authorization=self.authorization, ok=ok, **kwargs)  # type: ignore[arg-type]

    def _answer(self, challenge: str, about: str) -> str:
        scheme = challenge.split(" ", 1)[0].strip().lower()
        if self.credentials is None and scheme != "bearer":
            raise AcmError(
                errors.SOURCE_AUTH_FAILED,
                f"{about} asks for credentials and none were given",
                hint="set ACM_LITE_OCI_USERNAME and ACM_LITE_OCI_PASSWORD (or _PASSWORD_FILE)",
            )
        if scheme == "basic":
            assert self.credentials is not None
            if not self.client.may_send(self.base, self.base):
                raise AcmError(
                    errors.CREDENTIALS_WITHHELD,
                    f"{about} asks for credentials over plain http; they are sent only over https",
                    hint="use TLS (a CA file for a private CA), or set ACM_LITE_SOURCE_ALLOW_HTTP=1 "
                    "on a trusted network",
                )
            return self.credentials.header()
        if scheme != "bearer":
            raise status_error(401, about, f"unsupported authentication scheme {scheme!r}")
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise status_error(401, about, "the registry's token realm is not an http(s) URL")
        token_url = realm + ("&" if "?" in realm else "?") + urlencode(params)
        basic = None
        if self.credentials is not None and not self.credentials.token:
            basic = Credentials(self.credentials.username, self.credentials.password).header()
        elif self.credentials is not None:
            return self.credentials.header()
        resp = self.client.get(
            token_url, limit=1 << 20, authorization=basic, origin=realm, about=f"the token service of {about}"
        )
        try:
            answer = json.loads(resp.body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise status_error(401, about, "the token service answered without a token")
        return f"Bearer {token}"

    # pulling

    def manifest(self, reference: str | None = None) -> tuple[str, dict[str, Any]]:
        """The manifest named by ``reference`` (the reference's own by default), checked against
        its digest, with an index narrowed to its first image."""
        reference = reference or self.ref.reference
        about = str(self.ref)
        resp = self.request(
            f"/v2/{self.ref.repository}/manifests/{reference}",
            limit=MAX_MANIFEST,
            about=about,
            headers={"Accept": _ACCEPT},
        )
        digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        expected = reference if reference.startswith("sha256:") else resp.headers.get("docker-content-digest")
        if expected and expected != digest:
            raise AcmError(
                errors.DIGEST_MISMATCH,
                f"the manifest of {about} has digest {digest}, not {expected}",
                hint="the registry or something between it and acm-lite altered the manifest",
            )
        try:
            body = json.loads(resp.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AcmError(errors.ARTIFACT_REJECTED, f"the manifest of {about} is not a JSON object")
        media = body.get("mediaType") or resp.headers.get("content-type", "")
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in body:
            entries = body.get("manifests") or []
            if (
                not entries
                or not isinstance(entries[0], dict)
                or not _DIGEST.fullmatch(str(entries[0].get("digest")))
            ):
                raise AcmError(errors.ARTIFACT_REJECTED, f"the index of {about} names no image")
            return self.manifest(str(entries[0]["digest"]))
        layers = body.get("layers")
        if not isinstance(layers, list) or not all(
            isinstance(layer, dict) and _DIGEST.fullmatch(str(layer.get("digest"))) for layer in layers
        ):
            raise AcmError(errors.ARTIFACT_REJECTED, f"the manifest of {about} has no valid list of layers")
        return digest, body

    def blob(self, digest: str, limit: int = MAX_LAYER) -> bytes:
        about = f"layer {digest[:19]} of {self.ref}"
        resp = self.request(f"/v2/{self.ref.repository}/blobs/{digest}", limit=limit, about=about)
        got = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        if got != digest:
            raise AcmError(
                errors.DIGEST_MISMATCH,
                f"{about} has digest {got}",
                hint="the registry or something between it and acm-lite altered the layer",
            )
        return bytes(resp.body)

    def tags(self) -> list[str]:
        """Every tag of the repository, following the registry's pages (at most 50 of them)."""
        found: list[str] = []
        path: str | None = f"/v2/{self.ref.repository}/tags/list?n=1000"
        for _ in range(50):
            if path is None:
                break
            resp = self.request(path, limit=8 << 20, about=str(self.ref))
            try:
                tags = json.loads(resp.body).get("tags") or []
            except (ValueError, AttributeError):
                tags = []
            found += [t for t in tags if isinstance(t, str)]
            following = _NEXT.search(resp.headers.get("link", ""))
            path = following.group(1) if following and following.group(1).startswith("/v2/") else None
        return found

    # pushing

    def upload(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        about = f"an upload to {self.ref}"
        head = self.request(
            f"/v2/{self.ref.repository}/blobs/{digest}", limit=0, about=about, method="HEAD", ok=(200, 404)
        )
        if head.status == 200:
            return digest
        started = self.request(
            f"/v2/{self.ref.repository}/blobs/uploads/", limit=1 << 16, about=about, method="POST", ok=(202,)
        )
        location = urljoin(self.base + "/", started.headers.get("location", ""))
        url = location + ("&" if "?" in location else "?") + urlencode({"digest": digest})
        self.request(
            "",
            url=url,
            limit=1 << 16,
            about=about,
            method="PUT",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            ok=(201,),
        )
        return digest


def push(
    image: str,
    layer: bytes,
    *,
    credentials: Credentials | None = None,
    ca_file: Path | None = None,
    layer_type: str = LAYER_TAR_GZIP,
    config: bytes | None = None,
    config_type: str = OCI_CONFIG,
) -> str:
    """Publish one layer (by default a gzip-compressed tarball) as ``image``; its manifest's
    digest."""
    ref = Reference.parse(image)
    registry = Registry(ref, credentials=credentials, ca_file=ca_file)
    config = (
        config
        if config is not None
        else json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
    )
    config_digest = registry.upload(config)
    layer_digest = registry.upload(layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    registry.request(
        f"/v2/{ref.repository}/manifests/{ref.reference}",
        limit=1 << 16,
        about=f"the manifest of {ref}",
        method="PUT",
        body=manifest,
        headers={"Content-Type": OCI_MANIFEST},
        ok=(201,),
    )
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def fetch(
    spec: OciSpec,
    *,
    cache: Path,
    credentials: Credentials | None = None,
    progress: Any = lambda _m: None,
) -> Snapshot:
    """The image ``spec`` names, unpacked (once per digest) and narrowed to ``spec.dir``."""
    spec.check()
    ref = Reference.parse(spec.image)
    progress(f"pulling {ref}")
    registry = Registry(ref, credentials=credentials, ca_file=spec.ca_file)
    digest, manifest = registry.manifest()
    home = cache / "oci" / digest.replace(":", "-")
    files = home / "files"
    if not files.is_dir():
        _unpack_layers(registry, manifest, home, str(ref))
    else:
        os.utime(home)
    narrowed = (files / spec.dir).resolve()
    root = files.resolve()
    if not narrowed.is_dir() or not (narrowed == root or root in narrowed.parents):
        raise AcmError(
            errors.SOURCE_DIR_NOT_FOUND,
            f"directory {spec.dir!r} does not exist in {ref} ({digest[:19]})",
            hint="check the OCI dir",
        )
    return Snapshot(narrowed, str(ref), ref.tag or ref.reference, digest, spec.dir)


def _unpack_layers(registry: Registry, manifest: dict[str, Any], home: Path, about: str) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=home.parent))
    try:
        budget = [archive.MAX_UNPACKED]
        (staging / "files").mkdir()
        for layer in manifest["layers"]:
            declared = layer.get("size")
            if isinstance(declared, int) and declared > MAX_LAYER:
                raise AcmError(
                    errors.ARTIFACT_REJECTED,
                    f"a layer of {about} is {declared} bytes, more than {MAX_LAYER >> 20} MiB",
                )
            data = registry.blob(str(layer["digest"]))
            archive.unpack(
                data, staging / "files", f"layer {str(layer['digest'])[:19]} of {about}", budget=budget
            )
        home.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # another process unpacked it first
            os.replace(staging / "files", home / "files")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
