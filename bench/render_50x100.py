"""The render stage on 50 kustomizations of 100 objects each (target: at most 1.2x a bare
``kustomize build`` of the same tree), and a second render of the same commit (target: ~0).

Two layouts of the same 50 x 100 objects: one tree (a root kustomization over the 50, rendered
once) and the 50 rendered one by one (a sync per application). Baselines, in the same run and
alternating with the stage: ``kustomize build`` of the same directory by the same binary, output
read from a pipe and nothing else ("bare"), and the same with ``buildMetadata:
[originAnnotations]`` added, the kustomize work the stage asks for ("bare+origin"): the stage's
own overhead (checks, private copy, parsing into objects) is the distance from the latter.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from acm_lite import render
from acm_lite.devcluster import binaries
from acm_lite.render import plan, stage

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels: {{app: app-{i}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app-{i}}}
  template:
    metadata:
      labels: {{app: app-{i}}}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:{i}
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{i}\ndata:\n  key: value-{i}\n"
SERVICE = (
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\nspec:\n"
    "  selector: {{app: app-{i}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
)


def generate(root: Path, apps: int, per_app: int, files_per_app: int = 10) -> int:
    """A root kustomization over ``apps`` app kustomizations, each putting ``per_app`` objects
    (in ``files_per_app`` files) into a namespace of its own, with labels and a patch."""
    root.mkdir(parents=True)
    for a in range(apps):
        app = root / "apps" / f"app-{a}"
        app.mkdir(parents=True)
        files = []
        for f in range(files_per_app):
            docs = [
                (DEPLOYMENT, CONFIGMAP, SERVICE)[i % 3].format(i=i)
                for i in range(f * per_app // files_per_app, (f + 1) * per_app // files_per_app)
            ]
            (app / f"objects-{f}.yaml").write_text("---\n".join(docs))
            files.append(f"objects-{f}.yaml")
        (app / "kustomization.yaml").write_text(
            f"namespace: app-{a}\nlabels:\n- pairs: {{team: team-{a % 5}}}\n"
            f"resources: [{', '.join(files)}]\n"
            "patches:\n- target: {kind: Deployment}\n  patch: |-\n"
            "    - op: replace\n      path: /spec/replicas\n      value: 3\n"
        )
    (root / "kustomization.yaml").write_text(
        "resources:\n" + "".join(f"- apps/app-{a}\n" for a in range(apps))
    )
    return apps * per_app


def with_origin(root: Path, dest: Path) -> Path:
    """A copy of the tree whose kustomizations record origins, as the stage's copy does."""
    shutil.copytree(root, dest)
    for kustomization in dest.rglob("kustomization.yaml"):
        edited = plan.with_origin_annotations(kustomization.read_text())
        if edited is not None:
            kustomization.write_text(edited)
    return dest


def bare(kustomize: Path, root: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(kustomize), "build", str(root)], capture_output=True, check=True)
    return time.perf_counter() - started


def staged(
    root: Path, sync_dir: str, options: render.Options, commit: str | None = None
) -> tuple[float, render.Rendered]:
    started = time.perf_counter()
    result = render.render(root, sync_dir, options, commit=commit)
    elapsed = time.perf_counter() - started
    assert result is not None and not result.problems, result and result.problems[:3]
    return elapsed, result


@dataclass
class Timings:
    bare: list[float] = field(default_factory=list)
    origin: list[float] = field(default_factory=list)
    stage: list[float] = field(default_factory=list)

    def line(self, what: str) -> str:
        b, o, s = (statistics.median(x) for x in (self.bare, self.origin, self.stage))
        ratios = statistics.median(st / bt for st, bt in zip(self.stage, self.bare, strict=True))
        return (
            f"{what}: bare {b:.3f}s, bare+origin {o:.3f}s, stage {s:.3f}s (medians of "
            f"{len(self.stage)}) -> stage/bare {s / b:.2f}x (median of ratios "
            f"{ratios:.2f}x), stage/bare+origin {s / o:.2f}x, origin tracking alone "
            f"{o / b:.2f}x"
        )


def tree(kustomize: Path, root: Path, origin_root: Path, options: render.Options, rounds: int) -> Timings:
    timings = Timings()
    for _ in range(rounds):
        timings.bare.append(bare(kustomize, root))
        timings.origin.append(bare(kustomize, origin_root))
        timings.stage.append(staged(root, ".", options)[0])
    return timings


def one_by_one(
    kustomize: Path, root: Path, origin_root: Path, options: render.Options, *, apps: int, rounds: int
) -> Timings:
    timings = Timings()
    for _ in range(rounds):
        b = o = s = 0.0
        for a in range(apps):
            b += bare(kustomize, root / "apps" / f"app-{a}")
            o += bare(kustomize, origin_root / "apps" / f"app-{a}")
            s += staged(root, f"apps/app-{a}", options)[0]
        timings.bare.append(b)
        timings.origin.append(o)
        timings.stage.append(s)
    return timings


def cached(root: Path, options: render.Options, cache_dir: Path) -> str:
    stage.clear_cache()
    first, result = staged(root, ".", options, "commit-1")
    second, again = staged(root, ".", options, "commit-1")
    assert again.cached == "memory" and again.manifests == result.manifests
    on_disk = render.Options(**{**options.__dict__, "cache_dir": cache_dir})
    staged(root, ".", on_disk, "commit-2")
    stage.clear_cache()
    from_disk, reread = staged(root, ".", on_disk, "commit-2")
    assert reread.cached == "disk" and len(reread.manifests) == len(result.manifests)
    return (
        f"same commit again (whole tree): first {first:.3f}s, second {second * 1000:.2f} ms "
        f"from memory ({second / first:.5f}x), {from_disk:.3f}s from the disk cache "
        f"({from_disk / first:.3f}x: parsing only, nothing run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--per-app", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the one-by-one layout")
    parser.add_argument(
        "--tree-rounds",
        type=int,
        default=2,
        help="rounds of the whole tree (kustomize's own time grows faster than the object count there)",
    )
    args = parser.parse_args()
    tools = binaries.ensure_all(["kustomize", "helm"])
    kustomize = tools["kustomize"]
    options = render.Options(kustomize=kustomize, helm=tools["helm"], timeout_seconds=1800)
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    try:
        root = work / "repo"
        total = generate(root, args.apps, args.per_app)
        origin_root = with_origin(root, work / "origin")
        objects = len(staged(root, ".", options)[1].manifests)  # also warms the page cache
        print(f"{total} objects in {args.apps} kustomizations; the stage renders {objects}")
        print(
            one_by_one(kustomize, root, origin_root, options, apps=args.apps, rounds=args.rounds).line(
                f"one by one ({args.apps} renders of {args.per_app})"
            )
        )
        print(
            tree(kustomize, root, origin_root, options, args.tree_rounds).line(
                f"whole tree (1 render of {total})"
            )
        )
        print(cached(root, options, work / "cache"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
