"""Commit to applied in a 100,000-object Git repository: one-file commits, each announced by a
signed GitHub push webhook to ``acm-lite serve``, timed until the changed ConfigMap's new value is
on the API server (a watch on that object), p50/p95/max, against a full pass of the same
repository in the same run. Targets: p95 <= 0.5 s and >= 20x faster than a full pass.

- The repository: unstructured, ConfigMaps in 10 namespaces, 100 per file, plus a few
  Deployments and the Namespaces; written directly and committed once.
- The first sync creates every object (``acm-lite sync --once``, ``--concurrency`` as a flag);
  then a no-op ``sync --once`` at the unchanged commit gives the full pass's time per stage.
- Each daemon polls every 300 s, so only the webhook starts a pass; its first pass (at an applied
  commit: a full pass adopting the objects, no write) is timed from its log, then the commits.
- With ``serve --no-incremental`` available (``acm-lite serve --help``), a second daemon, same
  sync name and cluster, runs the same kind of commits with every pass a full one, and the ratios
  between the two are printed; without it, only the default is measured and the output says so.
- Per commit it also prints what the daemon reports: the pass's seconds (its log), the source
  fetch (its ``/metrics``), each stage's time (the RootSync's ``status.durationSeconds``) and the
  write requests the API server counted.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apiserver_metrics  # bench/apiserver_metrics.py
import sync_5500  # bench/sync_5500.py: an empty control plane of its own

from acm_lite import api
from acm_lite.cluster.client import Cluster
from acm_lite.status import store

NAMESPACES = 10
PER_FILE = 100
DEPLOYMENTS = 10
SYNC = "bench"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
_FETCH_SUM = re.compile(r'^acm_lite_git_fetch_duration_seconds_sum\{sync="bench"\} ([0-9.e+-]+)$', re.M)
_WATCHES_SYNCED = re.compile(r'^acm_lite_watches_synced\{sync="bench"\} 1\.0$', re.M)


class Repo:
    """The repository on disk: ConfigMap ``cm-<i>`` lives in namespace ``bench-<i % 10>``, in
    the file ``bench-<i % 10>/cm-<n>.yaml`` with the ``PER_FILE`` ConfigMaps of its namespace
    that share ``n = (i // 10) // PER_FILE``."""

    def __init__(self, root: Path, configmaps: int):
        self.root, self.configmaps = root, configmaps
        self.values = [f"v0-{i}" for i in range(configmaps)]

    def file_of(self, i: int) -> tuple[int, int]:
        """(namespace, file number) of ConfigMap i: the k-th ConfigMap of a namespace is in its
        file k // PER_FILE."""
        return i % NAMESPACES, (i // NAMESPACES) // PER_FILE

    def members(self, ns: int, number: int) -> range:
        first = (number * PER_FILE) * NAMESPACES + ns
        return range(first, min(self.configmaps, first + PER_FILE * NAMESPACES), NAMESPACES)

    def path(self, ns: int, number: int) -> Path:
        return self.root / f"bench-{ns}" / f"cm-{number:04d}.yaml"

    def write_file(self, ns: int, number: int) -> None:
        docs = [
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: bench-{ns}\n"
            f'data:\n  value: "{self.values[i]}"\n  other: "{"x" * 32}"\n'
            for i in self.members(ns, number)
        ]
        self.path(ns, number).write_text("---\n".join(docs))

    def write_all(self) -> None:
        self.root.mkdir(parents=True)
        namespaces = []
        for ns in range(NAMESPACES):
            (self.root / f"bench-{ns}").mkdir()
            namespaces.append(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-{ns}\n")
        (self.root / "namespaces.yaml").write_text("---\n".join(namespaces))
        files = {self.file_of(i) for i in range(self.configmaps)}
        for ns, number in sorted(files):
            self.write_file(ns, number)
        (self.root / "deployments.yaml").write_text("---\n".join(_deployment(d) for d in range(DEPLOYMENTS)))
        for step in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "objects"]):
            subprocess.run([*GIT, *step], cwd=self.root, check=True)

    def edit(self, i: int, value: str) -> str:
        """Change ConfigMap i's value, rewrite its file, commit; the new commit's hash."""
        self.values[i] = value
        self.write_file(*self.file_of(i))
        subprocess.run([*GIT, "commit", "-qam", f"cm-{i}: {value}"], cwd=self.root, check=True)
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout.strip()


def _deployment(d: int) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{d}\n"
        f"  namespace: bench-{d % NAMESPACES}\n"
        f"spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app-{d}\n  template:\n"
        f"    metadata:\n      labels:\n        app: app-{d}\n    spec:\n      containers:\n"
        f"      - name: app\n        image: registry.example.com/app:{d}\n"
    )


def run_sync(repo: Path, kubeconfig: str, work: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    """One ``acm-lite sync --once -o json`` process: its seconds and its result."""
    started = time.perf_counter()
    proc = subprocess.run(
        [
            *_acm_lite("sync", repo, kubeconfig),
            "--once",
            "-o",
            "json",
            *extra,
        ],
        capture_output=True,
        env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")},
        check=False,
    )
    seconds = time.perf_counter() - started
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        sys.exit(f"sync --once exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    if proc.returncode != 0 or result["errors"]:
        sys.exit(f"sync --once exited {proc.returncode}: {result['errors'][:3]}")
    return seconds, result


def _acm_lite(command: str, repo: Path, kubeconfig: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "acm_lite",
        command,
        "--repo",
        str(repo),
        "--revision",
        "main",
        "--source-format",
        "unstructured",
        "--name",
        SYNC,
        "--kubeconfig",
        kubeconfig,
    ]


def has_no_incremental() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "acm_lite", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return "--no-incremental" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Daemon:
    """``acm-lite serve`` as a user runs it, its JSON log read on a thread of its own."""

    def __init__(self, repo: Path, kubeconfig: str, work: Path, secret_file: Path, extra: list[str]):
        self.port = free_port()
        self.passes: queue.Queue[dict[str, Any]] = queue.Queue()
        self.tail: list[str] = []
        self.proc = subprocess.Popen(
            [
                *_acm_lite("serve", repo, kubeconfig),
                "--period",
                "300",
                "--metrics-address",
                f"127.0.0.1:{self.port}",
                "--webhook-secret-file",
                str(secret_file),
                "--log-format",
                "json",
                *extra,
            ],
            env={**os.environ, "ACM_LITE_CACHE": str(work / "cache")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail = [*self.tail[-20:], line]
            if '"message": "pass"' in line:
                try:
                    self.passes.put(json.loads(line))
                except ValueError:
                    continue

    def next_pass(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.passes.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    time.sleep(0.5)  # the rest of its log
                    sys.exit(f"the daemon exited {self.proc.returncode}; its log ends:\n{''.join(self.tail)}")
        self.stop()
        sys.exit(f"no pass logged within {timeout:.0f}s; the daemon's log ends:\n{''.join(self.tail)}")

    def fetch_seconds(self) -> float:
        """The daemon's total time fetching the source so far (its /metrics)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
            match = _FETCH_SUM.search(answer.read().decode())
        return float(match.group(1)) if match else 0.0

    def wait_watches(self, timeout: float) -> float:
        """Seconds until the daemon says its drift watches hold the whole current state
        (``acm_lite_watches_synced``): from then on it runs as it does for the rest of its life."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as answer:
                if _WATCHES_SYNCED.search(answer.read().decode()):
                    return time.monotonic() - started
            time.sleep(0.2)
        self.stop()
        sys.exit(f"the drift watches were not synced within {timeout:.0f}s")

    def push(self, secret: bytes, commit: str) -> None:
        body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
        signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhook",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": signature,
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202, answer.status

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        sys.exit(f"the daemon did not answer /healthz; its log ends:\n{''.join(self.tail)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Run:
    """What one daemon measured."""

    label: str
    first_pass: float = 0.0  # its first pass: a full one at an applied commit
    watches: float = 0.0  # then until its drift watches held the whole state (before any commit)
    first_writes: int = 0
    latencies: list[float] = field(default_factory=list)  # commit -> value on the API server
    pass_seconds: list[float] = field(default_factory=list)  # the daemon's log, fetch included
    fetches: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)


def applied(cluster: Cluster, i: int, value: str, resource_version: str, timeout: float) -> float:
    """Block until ConfigMap i holds ``value`` (a watch from ``resource_version``); the
    ``time.perf_counter()`` at which the event arrived."""
    ns = f"bench-{i % NAMESPACES}"
    stop = threading.Event()
    events: Iterator[Any] = cluster.watch(
        f"/api/v1/namespaces/{ns}/configmaps",
        {
            "fieldSelector": f"metadata.name=cm-{i}",
            "resourceVersion": resource_version,
            "timeoutSeconds": int(timeout),
        },
        stop,
    )
    for event in events:
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            sys.exit(f"the watch of cm-{i} failed: {obj.get('message')}")
        if (obj.get("data") or {}).get("value") == value:
            arrived = time.perf_counter()
            stop.set()
            return arrived
    sys.exit(f"cm-{i} did not get {value!r} within {timeout:.0f}s")


def rootsync_status(cluster: Cluster) -> dict[str, Any]:
    obj = store.read(cluster, SYNC, api.SYSTEM_NAMESPACE)
    return dict((obj or {}).get("status") or {})


@dataclass
class Setup:
    """What both daemons share: the repository, the synced cluster, the webhook's secret."""

    repo: Repo
    kubeconfig: str
    cluster: Cluster
    work: Path
    secret: bytes
    secret_file: Path
    rng: random.Random
    timeout: float


def measure(setup: Setup, label: str, extra: list[str], commits: int) -> Run:
    """One daemon: its first pass, then ``commits`` one-file commits, each pushed by the webhook
    and waited for until applied and until the daemon has logged its pass."""
    repo, cluster, rng, timeout, secret = setup.repo, setup.cluster, setup.rng, setup.timeout, setup.secret
    run = Run(label)
    before = apiserver_metrics.server_writes(cluster)
    daemon = Daemon(repo.root, setup.kubeconfig, setup.work, setup.secret_file, extra)
    try:
        first = daemon.next_pass(timeout)
        if first.get("errors") or first.get("state") != "SYNCED":
            sys.exit(f"{label}: the first pass failed: {first}")
        run.first_pass = float(first["seconds"])
        run.first_writes = apiserver_metrics.server_writes(cluster) - before
        note(f"{label}: first pass {run.first_pass:.2f}s")
        daemon.wait_ready(60)
        run.watches = daemon.wait_watches(timeout)
        note(f"{label}: drift watches synced {run.watches:.1f}s after the first pass")
        for n in range(commits):
            i = rng.randrange(repo.configmaps)
            value = f"{label[:3]}{n}-{rng.randrange(10**9)}"
            # the list's resourceVersion, not the object's own: a watch from an old one is refused
            live = cluster.request(
                "GET",
                f"/api/v1/namespaces/bench-{i % NAMESPACES}/configmaps",
                query={"fieldSelector": f"metadata.name=cm-{i}"},
            )
            fetched = daemon.fetch_seconds()
            writes = apiserver_metrics.server_writes(cluster)
            commit = repo.edit(i, value)
            started = time.perf_counter()
            daemon.push(secret, commit)
            arrived = applied(cluster, i, value, live["metadata"]["resourceVersion"], timeout)
            run.latencies.append(arrived - started)
            logged = daemon.next_pass(timeout)
            if logged.get("commit") != commit or logged.get("errors"):
                sys.exit(f"{label}: the pass after commit {commit[:12]} logged {logged}")
            run.pass_seconds.append(float(logged["seconds"]))
            run.fetches.append(daemon.fetch_seconds() - fetched)
            run.writes.append(apiserver_metrics.server_writes(cluster) - writes)
            note(
                f"{label}: commit {n + 1}: applied after {run.latencies[-1]:.3f}s, pass {logged['seconds']}s"
            )
            status = rootsync_status(cluster)
            if status.get("commit") == commit:
                run.stages.append({k: float(v) for k, v in (status.get("durationSeconds") or {}).items()})
    finally:
        daemon.stop()
    return run


def note(message: str) -> None:
    """Progress on stderr, for a run that takes most of an hour."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


STAGES = (
    "source",
    "render",
    "changes",
    "parse",
    "live",
    "policy",
    "plan",
    "apply",
    "status",
    "health",
    "wait",
    "total",
)


def in_order(durations: dict[str, float]) -> list[str]:
    """The stage names of a pass in the order the pass runs them (the status keeps them sorted)."""
    known = [k for k in STAGES if k in durations and k != "total"]
    others = sorted(set(durations) - set(STAGES))  # stages this list does not know yet
    return known + others + (["total"] if "total" in durations else [])


def report(run: Run, full_pass: float) -> None:
    lat = run.latencies
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    print(f"\n{run.label}:")
    print(
        f"  first pass (full, at the applied commit): {run.first_pass:.2f}s, drift watches synced "
        f"{run.watches:.1f}s later, "
        f"{run.first_writes} write requests"
    )
    print(
        f"  commit -> applied over {len(lat)} one-file commits: p50 {p50:.3f}s, p95 {p95:.3f}s, "
        f"max {max(lat):.3f}s (target p95 <= 0.5 s: {'met' if p95 <= 0.5 else 'not met'})"
    )
    print(
        f"  full pass / p95 = {full_pass / p95:.1f}x, full pass / p50 = {full_pass / p50:.1f}x "
        f"(target >= 20x: {'met' if full_pass / p95 >= 20 else 'not met'}); this daemon's first "
        f"pass / p95 = {run.first_pass / p95:.1f}x"
    )
    print(
        f"  the daemon's passes (median): {statistics.median(run.pass_seconds):.3f}s logged, of which "
        f"the source fetch {statistics.median(run.fetches):.3f}s; "
        f"{statistics.median(run.writes):.0f} write requests per commit"
    )
    if run.stages:
        names = [k for k in in_order(run.stages[0]) if all(k in s for s in run.stages)]
        medians = ", ".join(f"{k} {statistics.median(s[k] for s in run.stages):.3f}" for k in names)
        print(f"  stages (status.durationSeconds, median s): {medians}")


@dataclass
class Baseline:
    """The first sync and the full pass at the unchanged commit (``sync --once`` processes)."""

    create: float
    noop: float
    noop_writes: int
    stages: dict[str, float]

    @property
    def full_pass(self) -> float:
        return self.stages["total"]


def first_sync(setup: Setup, objects: int, concurrency: int) -> Baseline:
    """Create every object, then time a no-op full pass of the same commit."""
    root, kubeconfig, work, cluster = setup.repo.root, setup.kubeconfig, setup.work, setup.cluster
    create, created = run_sync(root, kubeconfig, work, "--concurrency", str(concurrency))
    assert created["counts"].get("created") == objects, created["counts"]
    note(f"first sync: {create:.1f}s")
    before = apiserver_metrics.server_writes(cluster)
    noop, result = run_sync(root, kubeconfig, work)
    writes = apiserver_metrics.server_writes(cluster) - before
    assert result["counts"].get("unchanged") == objects, result["counts"]
    note(f"no-op sync --once: {result['durationSeconds']}")
    return Baseline(create, noop, writes, {k: float(v) for k, v in result["durationSeconds"].items()})


def summary(
    args: argparse.Namespace, repo: Repo, written: float, baseline: Baseline, runs: list[Run]
) -> None:
    files = len({repo.file_of(i) for i in range(repo.configmaps)}) + 2
    print(
        f"{args.objects} objects ({repo.configmaps} ConfigMaps, {DEPLOYMENTS} Deployments, {NAMESPACES} "
        f"namespaces) in {files} files of one Git repository (written and committed in {written:.1f}s); "
        f"one local API server, {len(os.sched_getaffinity(0))} cores"
    )
    print(f"first sync (`sync --once --concurrency {args.concurrency}`, creates all): {baseline.create:.1f}s")
    stages = ", ".join(f"{k} {baseline.stages[k]:.2f}" for k in in_order(baseline.stages))
    print(
        f"full pass at the unchanged commit (`sync --once`, no-op): {baseline.full_pass:.2f}s in the "
        f"pass ({baseline.noop:.2f}s with the process's start), {baseline.noop_writes} write "
        f"requests; stages (s): {stages}"
    )
    for run in runs:
        report(run, baseline.full_pass)
    if len(runs) == 2:
        default, full = runs
        p50 = percentile(full.latencies, 50) / percentile(default.latencies, 50)
        p95 = percentile(full.latencies, 95) / percentile(default.latencies, 95)
        print(
            f"\n--no-incremental / default: p50 {p50:.1f}x, p95 {p95:.1f}x, "
            f"first pass {full.first_pass / default.first_pass:.2f}x"
        )
    else:
        print(
            "\n`acm-lite serve` has no --no-incremental flag in this build: only the default was "
            "measured; the baseline is the full pass at the unchanged commit above"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000, help="objects in the repository")
    parser.add_argument("--commits", type=int, default=20, help="one-file commits per daemon")
    parser.add_argument(
        "--full-commits",
        type=int,
        help="commits for the --no-incremental daemon (default: --commits; each is a full pass)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="the first sync's --concurrency")
    parser.add_argument("--timeout", type=float, default=1800, help="bound on one pass, seconds")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    configmaps = args.objects - NAMESPACES - DEPLOYMENTS
    if configmaps < 1 or args.commits < 1:
        parser.error("--objects must exceed 20 and --commits be at least 1")
    full_commits = args.commits if args.full_commits is None else args.full_commits
    no_incremental = has_no_incremental()
    work = Path(tempfile.mkdtemp(prefix="acm-lite-bench-"))
    try:
        repo = Repo(work / "repo", configmaps)
        started = time.perf_counter()
        repo.write_all()
        written = time.perf_counter() - started
        secret = os.urandom(32).hex().encode()
        (work / "webhook-secret").write_bytes(secret)
        runs: list[Run] = []
        with sync_5500.empty_cluster("commit100k") as (kubeconfig, cluster, _):
            store.install(cluster)  # acm-lite's own CRDs, as the Helm chart installs them
            time.sleep(sync_5500.SETTLE)
            setup = Setup(
                repo,
                kubeconfig,
                cluster,
                work,
                secret,
                work / "webhook-secret",
                random.Random(args.seed),
                args.timeout,
            )
            baseline = first_sync(setup, args.objects, args.concurrency)
            runs.append(measure(setup, "default", [], args.commits))
            if no_incremental and full_commits > 0:
                runs.append(measure(setup, "--no-incremental", ["--no-incremental"], full_commits))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary(args, repo, written, baseline, runs)


if __name__ == "__main__":
    main()
