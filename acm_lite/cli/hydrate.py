"""`acm-lite hydrate`: write the fully resolved objects of each cluster, as `nomos hydrate` does."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from acm_lite.cli import output, rendering
from acm_lite.cli.exitcodes import ExitStatus
from acm_lite.objects import Manifest

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "hydrate", help="write the resolved objects per cluster",
        description="Resolve inheritance, selectors and namespaces, then write one file per "
                    "object under OUTPUT/<cluster>/ (defaultcluster when no cluster is named).")
    rendering.add_arguments(parser)
    parser.add_argument("--output", "--dest", dest="dest", type=Path, required=True,
                        metavar="DIR", help="directory to write to")
    parser.add_argument("--flat", action="store_true",
                        help="write one file per cluster, OUTPUT/<cluster>.yaml")
    parser.add_argument("-o", dest="output", choices=output.FORMATS, default="text",
                        help="format of the summary printed (default: text)")
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


def write(dest: Path, cluster: str, objs: list[Manifest], flat: bool) -> list[str]:
    """Write one cluster's objects, replacing what an earlier run wrote for it."""
    if flat:
        path = dest / f"{cluster}.yaml"
        dest.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump(objs))
        return [str(path)]
    root = dest / cluster
    shutil.rmtree(root, ignore_errors=True)
    written = []
    for obj, rel in zip(objs, file_names(objs), strict=True):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump([obj]))
        written.append(str(path))
    return written


def handle(args: argparse.Namespace) -> int:
    results = rendering.render_all(args)
    summary = []
    for result in results:
        cluster = rendering.cluster_name(result)
        if result.blocking:
            summary.append({"cluster": cluster, "objects": 0, "written": False})
            continue
        files = write(args.dest, cluster, result.objects, args.flat)
        summary.append({"cluster": cluster, "objects": len(result.objects), "written": True,
                        "files": len(files)})
    problems = rendering.problems_text(results)
    if problems and args.output == "text":
        print(problems, file=sys.stderr)
    data = {"output": str(args.dest), "clusters": summary,
            "errors": rendering.problems_json(results)}
    output.emit(data, args.output, lambda d: output.table(
        [[c["cluster"], str(c["objects"]), "yes" if c["written"] else "no (blocking errors)"]
         for c in d["clusters"]], ["CLUSTER", "OBJECTS", "WRITTEN"]))
    return ExitStatus.FAILURE if any(r.blocking for r in results) else ExitStatus.SUCCESS
