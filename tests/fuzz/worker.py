"""Run the CLI on mutated repositories and policies, one case after another, in this process.

A separate process so that a crash (a signal) or a hang shows as such to the test that watches it.
Progress goes to the file descriptor given by ``--progress-fd``: ``start N TARGET COMMAND`` before a
command, ``end N CODE SECONDS`` after, so the watcher knows which case was running when anything went
wrong. Run it alone to fuzz longer or with another seed::

    python tests/fuzz/worker.py --seed 7 --cases 2000 --budget 900
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "fuzz")]

import mutate  # noqa: E402

from acm_lite.cli.main import main  # noqa: E402

BASES = {
    "hierarchy": ROOT / "sample-repo",
    "unstructured": ROOT / "tests" / "fuzz" / "bases" / "unstructured",
    "policies": ROOT / "policies" / "templates",
}
POLICY_TEMPLATES = ("required-labels", "block-nodeport", "unique-ingress-host", "container-limits")


def _policy_base(work: Path) -> Path:
    """A few library templates with their suites: Rego, CEL and a referential one."""
    base = work / "policy-base"
    for name in POLICY_TEMPLATES:
        shutil.copytree(BASES["policies"] / name, base / name)
    return base


def commands(target: str, case: Path, scratch: Path, kubeconfig: str | None) -> list[list[str]]:
    """The commands each target's mutated tree is put through."""
    if target == "policies":
        return [
            ["vet", str(BASES["unstructured"]), "--source-format", "unstructured", "--policies", str(case)],
            ["policy", "verify", str(case)],
        ]
    fmt = ["--source-format", target]
    out = [["vet", str(case), *fmt], ["hydrate", str(case), *fmt, "--output", str(scratch / "out")]]
    if kubeconfig:
        out.append(
            [
                "sync",
                "--once",
                "--dry-run",
                "--repo",
                str(case),
                *fmt,
                "--name",
                "fuzz",
                "--kubeconfig",
                kubeconfig,
                "--cluster",
                "eks-prod",
            ]
        )
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _escaped(scratch: Path) -> list[str]:
    """Anything hydrate left beside its output directory (it may write only inside it)."""
    return sorted(p.name for p in scratch.iterdir() if p.name not in ("out", "sentinel"))


def run_case(
    index: int, target: str, base: Path, work: Path, *, kubeconfig: str | None, report: io.TextIOBase
) -> None:
    case = mutate.make_case(base, work, seed=ARGS.seed, index=index)
    scratch = work / f"scratch-{index}"
    (scratch / "sentinel").mkdir(parents=True)
    report.write(f"case {index} {target} {' | '.join(case.steps)}\n")
    for argv in commands(target, case.root, scratch, kubeconfig):
        report.write(f"start {index} {target} {' '.join(argv[:1])}\n")
        report.flush()
        began = time.monotonic()
        with _quiet():
            code = main(argv)
        escaped = _escaped(scratch) + ([] if (scratch / "sentinel").is_dir() else ["sentinel removed"])
        report.write(f"end {index} {code} {time.monotonic() - began:.3f} {','.join(escaped)}\n")
        report.flush()
    shutil.rmtree(case.root, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds; no new case after it")
    parser.add_argument("--kubeconfig", help="also run `sync --once --dry-run` against this cluster")
    parser.add_argument("--progress-fd", type=int, default=1)
    return parser.parse_args()


def run() -> None:
    report = os.fdopen(ARGS.progress_fd, "w", buffering=1, closefd=False)
    targets = ("hierarchy", "unstructured", "policies")
    deadline = time.monotonic() + ARGS.budget
    with tempfile.TemporaryDirectory(prefix="acm-fuzz-") as tmp:
        work = Path(tmp)
        bases = {**BASES, "policies": _policy_base(work)}
        for index in range(ARGS.first, ARGS.first + ARGS.cases):
            if time.monotonic() > deadline:
                break
            target = targets[index % len(targets)]
            run_case(index, target, bases[target], work, kubeconfig=ARGS.kubeconfig, report=report)
    report.write("done\n")
    report.flush()


ARGS = parse_args() if __name__ == "__main__" else argparse.Namespace(seed=1)

if __name__ == "__main__":
    run()
