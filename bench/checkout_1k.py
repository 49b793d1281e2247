"""A new commit's checkout built from the previous one against the full export, on a repository of
1,000 files holding 100,000 ConfigMaps (~30 MB), each new commit changing one file.

Baseline: the full export (``git archive`` extracted) of the same commits, in the same run.
Rounds alternate the two so a machine's drift affects both alike.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from acm_lite.source import git as gitsource

CONFIGMAP = """---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{f}-{i}
  namespace: ns-{ns}
  labels: {{app: bench, file: "{f}"}}
data:
  key: "value {f} {i} {pad}"
  other: "{pad}"
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _file(f: int, per_file: int, salt: str = "") -> str:
    pad = ("x" * 120) + salt
    return "".join(CONFIGMAP.format(f=f, i=i, ns=f % 50, pad=pad) for i in range(per_file))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--objects-per-file", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acm-lite-bench-") as scratch:
        work = Path(scratch) / "work"
        work.mkdir()
        _git(work, "init", "-q", "-b", "main")
        for f in range(args.files):
            (work / f"ns-{f % 50}").mkdir(exist_ok=True)
            (work / f"ns-{f % 50}" / f"f{f}.yaml").write_text(_file(f, args.objects_per_file))
        _git(work, "add", "-A")
        _git(work, "commit", "-qm", "all")
        size = sum(p.stat().st_size for p in work.rglob("*.yaml"))
        commits = []
        for r in range(args.rounds + 1):
            f = (r * 37) % args.files
            (work / f"ns-{f % 50}" / f"f{f}.yaml").write_text(_file(f, args.objects_per_file, f"round{r}"))
            _git(work, "commit", "-qam", f"round {r}")
            commits.append(_git(work, "rev-parse", "HEAD"))
        source = gitsource.GitSource(str(work), Path(scratch) / "cache")
        source.update()
        source.checkout(commits[0])  # the kept checkout the first round builds on
        full, incremental = [], []
        for r, commit in enumerate(commits[1:]):
            target = Path(scratch) / f"full-{r}"
            target.mkdir()
            started = time.perf_counter()
            source._export(commit, target)
            full.append(time.perf_counter() - started)
            started = time.perf_counter()
            built = source.checkout(commit)
            incremental.append(time.perf_counter() - started)
            shutil.rmtree(target)
            assert (built / f"ns-{(r + 1) * 37 % args.files % 50}").is_dir()
        f_med, i_med = statistics.median(full), statistics.median(incremental)
        print(
            f"{args.files} files, {args.files * args.objects_per_file} objects, {size / 1e6:.1f} MB; "
            f"one file changed per commit, {args.rounds} rounds"
        )
        print(
            f"full export (git archive + extract): median {f_med * 1000:.0f} ms  "
            f"{[round(t * 1000) for t in full]}"
        )
        print(
            f"built from the previous checkout:    median {i_med * 1000:.0f} ms  "
            f"{[round(t * 1000) for t in incremental]}"
        )
        print(f"ratio full / incremental: {f_med / i_med:.1f}x")


if __name__ == "__main__":
    main()
