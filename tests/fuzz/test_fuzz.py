"""Mutated repositories and policies never crash, hang or trip an internal error (exit 70).

A fixed seed makes every run try the same cases; a time budget bounds the run. The worker runs in a
process of its own, so a crash shows as a signal and a hang as silence; either names the case, and
`python tests/fuzz/worker.py --seed 1 --first N --cases 1` replays it.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from acm_lite.devcluster.controlplane import APIServer

WORKER = Path(__file__).with_name("worker.py")
SEED = 20261202
CASE_SECONDS = 30.0  # one command of one case; the slowest seen take well under a second
OK_CODES = {"0", "1"}


@dataclass
class Run:
    """What the watcher saw: every case's steps, every command's exit code, and what went wrong."""

    cases: dict[str, str] = field(default_factory=dict)
    ended: int = 0
    failures: list[str] = field(default_factory=list)
    done: bool = False


def _lines(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line.rstrip("\n"))
    into.put(None)


def _read(run: Run, line: str, running: list[str]) -> None:
    kind, _, rest = line.partition(" ")
    if kind == "case":
        index, _, steps = rest.partition(" ")
        run.cases[index] = steps
    elif kind == "start":
        running[:] = rest.split()
    elif kind == "end":
        index, code, _seconds, *escaped = rest.split(" ")
        run.ended += 1
        where = f"case {index} ({run.cases.get(index, '?')}) {' '.join(running[1:])}"
        if code not in OK_CODES:
            run.failures.append(f"exit {code}: {where}")
        if escaped and escaped[0]:
            run.failures.append(f"wrote outside its output ({escaped[0]}): {where}")
    elif kind == "done":
        run.done = True


def fuzz(*extra: str, cases: int, budget: float) -> Run:
    """Run the worker and watch it; a silent worker past CASE_SECONDS is a hang."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            "--seed",
            str(SEED),
            "--cases",
            str(cases),
            "--budget",
            str(budget),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    run, running = Run(), []
    while True:
        try:
            line = lines.get(timeout=CASE_SECONDS)
        except queue.Empty:
            proc.kill()
            run.failures.append(f"hang: no progress in {CASE_SECONDS:.0f} s during {running}")
            break
        if line is None:
            break
        _read(run, line, running)
    code = proc.wait(timeout=CASE_SECONDS)
    if code != 0 and not run.failures:
        run.failures.append(f"worker died ({code}) during {running}: {proc.stderr.read()[-2000:]}")
    return run


def _check(run: Run, least: int) -> None:
    assert not run.failures, "\n".join(run.failures[:40])
    assert run.done, "the worker stopped before its last case"
    assert run.ended >= least, f"only {run.ended} commands ran"


def fuzz_in_parallel(*extra: str, first: int, cases: int, budget: float, workers: int = 2) -> Run:
    """``fuzz`` over the cases ``first`` .. ``first + cases - 1``, split between ``workers`` worker
    processes running at once (the same cases as one worker would run, on every core)."""
    share = -(-cases // workers)
    starts = range(first, first + cases, share)
    with ThreadPoolExecutor(len(starts)) as pool:
        runs = list(
            pool.map(
                lambda start: fuzz(
                    *extra, "--first", str(start), cases=min(share, first + cases - start), budget=budget
                ),
                starts,
            )
        )
    return Run(
        cases={k: v for run in runs for k, v in run.cases.items()},
        ended=sum(run.ended for run in runs),
        failures=[f for run in runs for f in run.failures],
        done=all(run.done for run in runs),
    )


def test_offline_commands_survive_mutated_inputs() -> None:
    """vet, hydrate and policy verify over mutated hierarchical and unstructured repositories and
    policy directories."""
    _check(fuzz_in_parallel(first=0, cases=300, budget=150), least=300)


def test_sync_survives_mutated_inputs(control_plane: APIServer) -> None:
    """What vet lets through, `sync --once --dry-run` must handle against a real API server."""
    _check(
        fuzz("--kubeconfig", str(control_plane.kubeconfig), "--first", "1000", cases=60, budget=120), least=60
    )
