"""Read + validate + hydrate a generated 10,000-object hierarchical repo (target: under 10 s).

Baseline: plain ``yaml.safe_load_all`` (C loader) of the same files, in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from acm_lite import declare
from acm_lite.cli.hydrate import write
from acm_lite.parse.clusters import ClusterTarget

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
        ports: [{{containerPort: 8080}}]
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
          limits: {{cpu: 500m, memory: 128Mi}}
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{i}\ndata:\n  key: value-{i}\n"
SERVICE = (
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\nspec:\n  selector: {{app: app-{i}}}\n"
    "  ports: [{{port: 80, targetPort: 8080}}]\n"
)


def generate(root: Path, namespaces: int, per_namespace: int) -> int:
    """``namespaces`` namespaces under abstract team directories, each with ``per_namespace``
    objects of its own and two inherited ones."""
    (root / "system").mkdir(parents=True)
    (root / "system/repo.yaml").write_text(
        "apiVersion: configmanagement.gke.io/v1\nkind: Repo\nmetadata: {name: repo}\nspec: {version: 1.0.0}\n"
    )
    count = 0
    for team in range(namespaces // 10):
        team_dir = root / "namespaces" / f"team-{team}"
        team_dir.mkdir(parents=True)
        (team_dir / "inherited.yaml").write_text(
            CONFIGMAP.format(i=f"team-{team}") + "---\n" + SERVICE.format(i=f"team-{team}")
        )
        for n in range(10):
            ns = f"ns-{team}-{n}"
            d = team_dir / ns
            d.mkdir()
            (d / "namespace.yaml").write_text(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
            docs = []
            for i in range(per_namespace):
                template = (DEPLOYMENT, CONFIGMAP, SERVICE)[i % 3]
                docs.append(template.format(i=i))
            (d / "objects.yaml").write_text("---\n".join(docs))
            count += 1 + per_namespace + 2
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--per-namespace", type=int, default=97)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    try:
        total = generate(work / "repo", args.namespaces, args.per_namespace)
        files = sorted((work / "repo").rglob("*.yaml"))

        started = time.perf_counter()
        docs = sum(1 for f in files for d in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader) if d)
        baseline = time.perf_counter() - started

        started = time.perf_counter()
        source = declare.load(work / "repo", declare.HIERARCHY)
        read_done = time.perf_counter()
        result = declare.declare(source, ClusterTarget(None), declare.Options())
        declared = time.perf_counter()
        assert not result.blocking, [p.render() for p in result.problems[:5]]
        write(work / "out", "defaultcluster", result.objects, flat=False)
        finished = time.perf_counter()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    full = finished - started
    print(f"objects declared: {len(result.objects)} (expected {total}); YAML documents: {docs}")
    print(f"baseline yaml.safe_load_all: {baseline:.2f}s")
    print(
        f"read {read_done - started:.2f}s, validate+resolve {declared - read_done:.2f}s, "
        f"hydrate write {finished - declared:.2f}s"
    )
    print(
        f"total {full:.2f}s = {full / baseline:.1f}x the YAML baseline "
        f"({'under' if full < 10 else 'OVER'} the 10 s target)"
    )


if __name__ == "__main__":
    main()
