"""`acm-lite hydrate`: write the fully resolved objects of each cluster, as `nomos hydrate` does."""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from acm_lite import errors
from acm_lite.cli import Subcommands, output, percluster
from acm_lite.cli.clusterargs import UsageError
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.errors import AcmError

if TYPE_CHECKING:
    from acm_lite.objects import Manifest

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NAME_MAX = 255  # bytes in one file name (Linux, macOS)


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
        "hydrate",
        help="write the resolved objects per cluster",
        description="Resolve inheritance, selectors and namespaces, then write one file per "
        "object under OUTPUT/<cluster>/ (defaultcluster when no cluster is named); the source is a "
        "directory, or a Helm chart or OCI image (--source-type helm|oci).",
    )
    percluster.add_arguments(parser)
    parser.add_argument(
        "--output",
        "--dest",
        dest="dest",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory to write to",
    )
    parser.add_argument(
        "--flat", action="store_true", help="write one file per cluster, OUTPUT/<cluster>.yaml"
    )
    parser.add_argument(
        "-o",
        dest="output",
        choices=output.FORMATS,
        default="text",
        help="format of the summary printed (default: text)",
    )
    parser.set_defaults(handler=handle)


def file_names(objs: list[Manifest]) -> list[str]:
    """``[namespace/]kind_name.yaml``, lower-case; the group is added where names would clash."""

    def name(obj: Manifest, with_group: bool) -> str:
        kind = f"{obj.kind}.{obj.group}" if with_group and obj.group else obj.kind
        base = f"{kind}_{obj.name}.yaml".lower()
        return f"{obj.namespace}/{base}" if obj.namespace else base

    plain = [name(o, False) for o in objs]
    counts = Counter(plain)
    return [name(o, True) if counts[p] > 1 else p for o, p in zip(objs, plain, strict=True)]


def _dump(objs: list[Manifest]) -> str:
    return "".join("---\n" + yaml.dump(o.body, Dumper=_Dumper, sort_keys=False) for o in objs)


def _check_cluster(cluster: str) -> None:
    from acm_lite.validate import cluster_names

    if not cluster_names.valid(cluster):
        raise AcmError(
            errors.INVALID_CLUSTER_NAME,
            f"{cluster!r} is not a valid cluster name: {cluster_names.RULE}",
            subject=f"cluster {cluster!r}",
        )


def _check_segments(rel: str, cluster: str) -> None:
    """Each part of a file name made from an object must stay one plain path component."""
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\0" in part or len(part.encode("utf-8", "replace")) > _NAME_MAX:
            raise AcmError(
                errors.UNSAFE_OUTPUT_PATH,
                f"the object file name {rel!r} is not a safe path below --output",
                subject=f"cluster {cluster}",
                hint="object names, namespaces and kinds may not hold '/', '..' or NUL "
                f"and a file name is at most {_NAME_MAX} bytes",
            )


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise AcmError(
            errors.UNSAFE_OUTPUT_PATH,
            f"{path} is a symbolic link; hydrate neither follows nor removes it",
            hint="remove the link, or write to another --output",
        )


def _write_file(path: Path, text: str) -> None:
    """Create or replace ``path``; a symbolic link there is refused, never followed."""
    try:
        fd = os.open(path, _WRITE_FLAGS, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            _refuse_link(path)
        raise
    try:
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _replace_dir(root: Path) -> None:
    """Remove what an earlier run wrote at ``root`` (a directory below --output, never a link)."""
    _refuse_link(root)
    if root.is_dir():
        shutil.rmtree(root)
    elif root.exists():
        root.unlink()
    root.mkdir()


def write(dest: Path, cluster: str, objs: list[Manifest], flat: bool) -> list[str]:
    """Write one cluster's objects, replacing what an earlier run wrote for it. Every name is
    checked before anything is removed; nothing outside ``dest`` is written or removed."""
    _check_cluster(cluster)
    names = [] if flat else file_names(objs)
    for rel in names:
        _check_segments(rel, cluster)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if flat:
            path = dest / f"{cluster}.yaml"
            _write_file(path, _dump(objs))
            return [str(path)]
        root = dest / cluster
        _replace_dir(root)
        written = []
        made = {root}
        for obj, rel in zip(objs, names, strict=True):
            path = root / rel
            if path.parent not in made:  # a namespace directory, new in the fresh root
                path.parent.mkdir(exist_ok=True)
                made.add(path.parent)
            _write_file(path, _dump([obj]))
            written.append(str(path))
        return written
    except OSError as e:
        raise AcmError(
            errors.OUTPUT_WRITE_FAILED,
            f"cannot write {e.filename or dest}: {e.strerror or e}",
            subject=f"cluster {cluster}",
        ) from None


def handle(args: argparse.Namespace) -> int:
    percluster.prepare(args, UsageError)
    results = percluster.declare_all(args)
    summary = []
    for result in results:
        cluster = percluster.cluster_name(result)
        if result.blocking:
            summary.append({"cluster": cluster, "objects": 0, "written": False})
            continue
        files = write(args.dest, cluster, result.objects, args.flat)
        summary.append(
            {"cluster": cluster, "objects": len(result.objects), "written": True, "files": len(files)}
        )
    problems = percluster.problems_text(results)
    if problems and args.output == "text":
        print(problems, file=sys.stderr)
    data = {"output": str(args.dest), "clusters": summary, "errors": percluster.problems_json(results)}
    output.emit(
        data,
        args.output,
        lambda d: output.table(
            [
                [c["cluster"], str(c["objects"]), "yes" if c["written"] else "no (blocking errors)"]
                for c in d["clusters"]
            ],
            ["CLUSTER", "OBJECTS", "WRITTEN"],
        ),
    )
    return ExitStatus.FAILURE if any(r.blocking for r in results) else ExitStatus.SUCCESS
