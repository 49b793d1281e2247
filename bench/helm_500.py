"""A Helm-source sync of a chart of 500 objects (a Namespace, ConfigMaps, Services, Deployments
and ServiceAccounts) served from a Helm repository on loopback, against ``helm template | kubectl
apply --server-side -f -`` of the same chart from the same repository, each into an empty local
control plane of its own, in the same run:

- ``acm-lite sync --once --source-type helm`` (a new process: index, chart download and digest
  check, ``helm template``, parse, validate, plan, apply, inventory and status), then a second
  ``sync --once`` of the same chart version (the no-op poll: the index read again, the render
  from its cache, nothing written);
- ``helm template NAME CHART --repo URL --version V --namespace NS | kubectl apply --server-side
  -f -`` (the same chart fetched and rendered by helm, applied by kubectl);

and, in this process, what the daemon does at a poll of the unchanged chart (fetch it and find
the same commit: the index read, no render, no pass).

acm-lite's own CRDs are installed before its clock starts, as the Helm chart installs them, and
its cache starts empty of charts and renders but with the machine's compiled schema validators
(compiled once per machine and acm-lite version, not per source). The rounds alternate which of
the two goes first.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from acm_lite import paths
from acm_lite.cluster.client import Cluster
from acm_lite.devcluster import binaries, controlplane
from acm_lite.reconcile import pipeline
from acm_lite.source.helm import HelmSpec
from acm_lite.status import store

SETTLE = 3.0
CHART, VERSION, NAMESPACE = "bench", "1.0.0", "helm-bench"
KINDS = {  # template file: (count value, the object)
    "configmaps.yaml": (
        "configmaps",
        """apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-{{ $i }}
  namespace: {{ $.Release.Namespace }}
  labels: {app: app-{{ $i }}, chart: {{ $.Chart.Name }}}
data:
  key: value-{{ $i }}
  other: {{ $.Values.filler | quote }}
""",
    ),
    "services.yaml": (
        "services",
        """apiVersion: v1
kind: Service
metadata:
  name: svc-{{ $i }}
  namespace: {{ $.Release.Namespace }}
spec:
  selector: {app: app-{{ $i }}}
  ports: [{port: 80, targetPort: 8080}]
""",
    ),
    "deployments.yaml": (
        "deployments",
        """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{{ $i }}
  namespace: {{ $.Release.Namespace }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: app-{{ $i }}}
  template:
    metadata:
      labels: {app: app-{{ $i }}}
    spec:
      serviceAccountName: sa-{{ $i }}
      containers:
      - name: app
        image: registry.example.com/app:{{ $i }}
        resources:
          requests: {cpu: 10m, memory: 16Mi}
""",
    ),
    "serviceaccounts.yaml": (
        "serviceaccounts",
        """apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa-{{ $i }}
  namespace: {{ $.Release.Namespace }}
""",
    ),
}


def make_chart(where: Path, counts: dict[str, int]) -> Path:
    chart = where / CHART
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        f"apiVersion: v2\nname: {CHART}\nversion: {VERSION}\ntype: application\n"
    )
    values = {**counts, "filler": "x" * 64}
    (chart / "values.yaml").write_text(json.dumps(values))
    (chart / "templates" / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Release.Namespace }}\n"
    )
    for file, (count, body) in KINDS.items():
        (chart / "templates" / file).write_text(
            f"{{{{- range $i := until (int .Values.{count}) }}}}\n---\n{body}{{{{- end }}}}\n"
        )
    return chart


@contextmanager
def served(directory: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def empty_cluster(name: str) -> Iterator[tuple[str, Cluster]]:
    env = controlplane.start(
        [name],
        etcd_binary=str(binaries.ensure("etcd")),
        apiserver_binary=str(binaries.ensure("kube-apiserver")),
    )
    try:
        kubeconfig = env.clusters[0].kubeconfig
        cluster = Cluster.connect(kubeconfig)
        time.sleep(SETTLE)  # let the new API server finish its start-up work first
        yield kubeconfig, cluster
    finally:
        controlplane.stop(env)


def count(cluster: Cluster) -> int:
    paths = [
        f"/api/v1/namespaces/{NAMESPACE}/configmaps",
        f"/api/v1/namespaces/{NAMESPACE}/services",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
    ]
    return sum(len(cluster.request("GET", p)["items"]) for p in paths) + 1  # and the Namespace


def helm_env(work: Path) -> dict[str, str]:
    home = work / "helm-home"
    return {
        **os.environ,
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def baseline(work: Path, url: str) -> float:
    helm, kubectl = binaries.ensure("helm"), binaries.ensure("kubectl")
    with empty_cluster("kubectl") as (kubeconfig, cluster):
        shutil.rmtree(work / "helm-home", ignore_errors=True)
        started = time.perf_counter()
        template = subprocess.Popen(
            [
                str(helm),
                "template",
                "rel",
                CHART,
                "--repo",
                url,
                "--version",
                VERSION,
                "--namespace",
                NAMESPACE,
            ],
            stdout=subprocess.PIPE,
            env=helm_env(work),
            cwd=work,  # not where a directory named like the chart could be taken for it
        )
        subprocess.run(
            [str(kubectl), "apply", "--server-side", "--field-manager=bench", "-f", "-"],
            stdin=template.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "KUBECONFIG": kubeconfig, "HOME": str(work / "kubectl-home")},
        )
        assert template.stdout is not None
        template.stdout.close()
        assert template.wait() == 0
        seconds = time.perf_counter() - started
        assert count(cluster) == 500, count(cluster)
    return seconds


def acm_lite(work: Path, url: str, n: int) -> tuple[float, float, float, dict[str, float]]:
    cache = work / f"acm-cache-{n}"  # a cold cache for the first sync: no chart, no render,
    schemas = paths.cache_dir() / "schemas"  # but the machine's compiled schema validators, as a
    if schemas.is_dir():  # daemon has them after its first pass of any source
        shutil.copytree(schemas, cache / "schemas")
    with empty_cluster("acm-lite") as (kubeconfig, cluster):
        store.install(cluster)
        time.sleep(SETTLE)
        argv = [
            sys.executable, "-m", "acm_lite", "sync", "--once",
            "--source-type", "helm", "--helm-repo", url, "--helm-chart", CHART,
            "--helm-version", VERSION, "--helm-release", "rel", "--helm-namespace", NAMESPACE,
            "--name", "bench", "--kubeconfig", kubeconfig, "-o", "json",
        ]  # fmt: skip
        assets = work / "assets"  # the cache is cold, so helm is named through KUBEBUILDER_ASSETS
        if not assets.is_dir():
            assets.mkdir()
            (assets / "helm").symlink_to(binaries.ensure("helm"))
        env = {**os.environ, "ACM_LITE_CACHE": str(cache), "KUBEBUILDER_ASSETS": str(assets)}
        timings, stages = [], []
        for _ in range(2):
            started = time.perf_counter()
            done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env)
            timings.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            stages.append(json.loads(done.stdout).get("durationSeconds") or {})
        result = json.loads(done.stdout)
        assert result["state"] == "SYNCED", result
        assert count(cluster) == 500, count(cluster)
        # what the daemon does at a poll of an unchanged chart: fetch it, find the same commit
        chart = HelmSpec(repo=url, chart=CHART, version=VERSION, release_name="rel", namespace=NAMESPACE)
        spec = pipeline.SyncSpec(repo=chart.display, source_type="helm", helm=chart)
        options = pipeline.SyncOptions(git_cache=cache)
        pipeline.fetch_source(spec, options, lambda _m: None, cluster=cluster)  # this process's first
        started = time.perf_counter()
        snapshot = pipeline.fetch_source(spec, options, lambda _m: None, cluster=cluster)
        poll = time.perf_counter() - started
        assert snapshot.commit == result["commit"], (snapshot.commit, result["commit"])
    return timings[0], timings[1], poll, stages[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    counts = {"configmaps": 200, "services": 100, "deployments": 100, "serviceaccounts": 99}
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-helm-"))
    try:
        repo = work / "repo"
        repo.mkdir()
        chart = make_chart(work / "src", counts)
        helm = str(binaries.ensure("helm"))
        subprocess.run([helm, "package", str(chart), "-d", str(repo)], check=True, capture_output=True)
        subprocess.run([helm, "repo", "index", str(repo)], check=True, capture_output=True)
        rounds: list[dict[str, float]] = []
        passes: list[dict[str, float]] = []
        with served(repo) as url:
            for n in range(args.rounds):
                if n % 2 == 0:
                    base = baseline(work, url)
                    first, noop, poll, stages = acm_lite(work, url, n)
                else:
                    first, noop, poll, stages = acm_lite(work, url, n)
                    base = baseline(work, url)
                rounds.append({"baseline": base, "sync": first, "noop": noop, "poll": poll})
                passes.append(stages)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    per_round = ", ".join(f"{r['sync'] / r['baseline']:.2f}x" for r in rounds)
    ratio = statistics.median(r["sync"] / r["baseline"] for r in rounds)
    cores = len(os.sched_getaffinity(0))
    print(
        f"a Helm chart of 500 objects from a loopback Helm repository, each into a fresh local API "
        f"server, {cores} cores, median of {args.rounds} rounds"
    )
    print(f"helm template | kubectl apply --server-side: {m['baseline']:6.2f}s")
    print(
        f"acm-lite sync --once (first sync):          {m['sync']:6.2f}s  = {m['sync'] / m['baseline']:.2f}x "
        f"the pipe (per round: {per_round}; median {ratio:.2f}x)"
    )
    print(
        f"acm-lite sync --once (no-op poll):          {m['noop']:6.2f}s  = "
        f"{100 * m['noop'] / m['sync']:.0f}% of the first sync, {m['noop'] / m['baseline']:.2f}x the pipe"
    )
    names = [k for k in passes[0] if k != "total" and all(k in p for p in passes)]
    shown = ", ".join(f"{k} {statistics.median(p[k] for p in passes):.2f}s" for k in names)
    print(f"  the first sync's stages (median): {shown}; the rest is the process starting and connecting")
    print(
        f"the daemon's poll of the unchanged chart:   {1000 * m['poll']:6.1f}ms (index read, same commit, "
        "no render, no pass)"
    )


if __name__ == "__main__":
    main()
