"""Hostile repositories against `vet` and `hydrate`, run in-process: every case ends in exit 0 or 1
within a time bound (never exit 70, an exception or a hang) and nothing outside --output changes.

The static cases live in tests/hostile/reader/ (see its README.md); cases Git cannot hold (FIFOs,
devices, symlink loops, bombs) are generated here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml

from acm_lite.cli.main import main
from acm_lite.parse import reader
from tests.unit.repo_builder import REPO, cm, ns, write

CORPUS = Path(__file__).parents[1] / "hostile" / "reader"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
TIME_BOUND = 20.0  # seconds per command; generous for a loaded CI machine
VICTIM = Path("/tmp/acm-lite-hostile-victim")  # named by the cluster-name-absolute case
VICTIM_LOCK = Path("/tmp/acm-lite-hostile-victim.lock")


class TooSlowError(BaseException):
    """Raised by the alarm; a BaseException so main's catch-all cannot swallow it."""


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    def fire(_signum: int, _frame: FrameType | None) -> None:
        raise TooSlowError(f"took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def base_repo(root: Path) -> Path:
    return write(
        root,
        {
            "system/repo.yaml": REPO,
            "namespaces/ns-a/namespace.yaml": ns("ns-a"),
            "namespaces/ns-a/cm.yaml": cm("base"),
        },
    )


@contextmanager
def sentinels(tmp_path: Path) -> Iterator[list[Path]]:
    """Directories outside the output that must survive every command unchanged.

    The victim's path is fixed (the corpus names it), so test runs on one machine take turns with
    it: one run's cleanup must not remove the directory another run is checking.
    """
    made = []
    with VICTIM_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for path in (tmp_path / "sentinel", VICTIM):
            created = not path.exists()
            path.mkdir(parents=True, exist_ok=True)
            (path / "keep").write_text("keep\n")
            made.append((path, created))
        try:
            yield [p for p, _ in made]
        finally:
            for path, created in made:
                if created:
                    shutil.rmtree(path, ignore_errors=True)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with time_bound(TIME_BOUND):
        code = main(args)
    out, err = capsys.readouterr()
    assert code in (0, 1), f"{args}: exit {code}\n{out}\n{err}"
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


def vet_codes(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, set[str]]:
    code, out, _ = run(["vet", str(repo), "-o", "json"], capsys)
    return code, {e["code"] for e in json.loads(out)["errors"]}


def check_case(repo: Path, expect: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sentinels(tmp_path) as kept:
        code, found = vet_codes(repo, capsys)
        if expect == "ok":
            assert code == 0, found
        elif expect == "error":
            assert code == 1
        elif expect != "any":
            assert code == 1 and expect in found, found
        out = tmp_path / "out"
        for extra in ([], ["--flat"]):
            run(["hydrate", str(repo), "--output", str(out), *extra], capsys)
        for path in kept:
            assert (path / "keep").read_text() == "keep\n", f"{path} was changed"
        assert VICTIM.is_dir()


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = base_repo(tmp_path / "repo")
    shutil.copytree(CORPUS / case, repo, dirs_exist_ok=True)
    check_case(repo, (CORPUS / case / "EXPECT").read_text().strip(), tmp_path, capsys)


def _fifo(at: Path) -> None:
    os.mkfifo(at / "x.yaml")


def _char_device(at: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(at / "x.yaml", 0o600 | 0o020000, os.makedev(1, 5))  # S_IFCHR: /dev/zero


def _socket(at: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(at / "x.yaml"))
    sock.close()


def _devzero_link(at: Path) -> None:
    os.symlink("/dev/zero", at / "x.yaml")


def _symlink_loop(at: Path) -> None:
    os.symlink("b.yaml", at / "a.yaml")
    os.symlink("a.yaml", at / "b.yaml")


def _symlink_dangling(at: Path) -> None:
    os.symlink("missing.yaml", at / "x.yaml")


def _alias_string_bomb(at: Path) -> None:
    big = "x" * (1 << 20)
    (at / "x.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bomb}}\ndata:\n  a0: &s {big}\n"
        + "".join(f"  a{i}: *s\n" for i in range(1, 257))
    )


def _deep_at_limit(at: Path) -> None:
    """An unknown kind (a warning only), so the object goes through every stage and is written."""
    depth = reader.Limits().max_depth - 1  # the document is level 0, spec's lists 1 to 99
    (at / "x.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: deep}\n"
        "spec: " + "[" * depth + "]" * depth + "\n"
    )


def _deep_directories(at: Path) -> None:
    deep = at
    for _ in range(1200):  # one by one: Path.mkdir(parents=True) recurses
        deep = deep / "d"
        deep.mkdir()
    (deep / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n")


GENERATED: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "ACM1010"),
    "char-device": (_char_device, "ACM1010"),
    "socket": (_socket, "ACM1010"),
    "devzero-link": (_devzero_link, "ACM1004"),
    "symlink-loop": (_symlink_loop, "ACM1011"),
    "symlink-dangling": (_symlink_dangling, "ACM1011"),
    "alias-string-bomb": (_alias_string_bomb, "ACM1003"),
    "deep-at-limit": (_deep_at_limit, "ok"),
    "deep-directories": (_deep_directories, "error"),
}


def _remove_deep(top: Path) -> None:
    """Remove a deep chain of ``d`` directories deepest first: shutil.rmtree (and so pytest's own
    clean-up of old temporary directories) recurses, and fails on it in Python 3.11."""
    chain = [top]
    while (chain[-1] / "d").is_dir():
        chain.append(chain[-1] / "d")
    for directory in reversed(chain[1:]):
        for entry in directory.iterdir():
            if not entry.is_dir():
                entry.unlink()
        directory.rmdir()


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_generated_case(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = base_repo(tmp_path / "repo")
    make, expect = GENERATED[case]
    try:
        make(repo / "namespaces" / "ns-a")
        check_case(repo, expect, tmp_path, capsys)
    finally:
        _remove_deep(repo / "namespaces" / "ns-a")


def test_an_object_just_under_the_depth_limit_is_read(tmp_path: Path) -> None:
    repo = base_repo(tmp_path / "repo")
    _deep_at_limit(repo / "namespaces" / "ns-a")
    result = reader.read(repo)
    assert [p.code.id for p in result.problems] == []
    assert "deep" in {m.name for m in result.manifests}


DEEP = {
    "deep-json": (
        "x.json",
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, '
        '"data": ' + "[" * 10_000 + "]" * 10_000 + "}",
        "ACM1013",
    ),
    "deep-yaml": (
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: " + "[" * 995 + "]" * 995 + "\n",
        "ACM1013",
    ),
    "deep-yaml-over-libyaml": (
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: " + "[" * 5000 + "]" * 5000 + "\n",
        "KNV1006",
    ),
    "deep-block-yaml": (
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata:\n"
        + "".join(" " * i + "-\n" for i in range(990)),
        "ACM1013",
    ),
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_nesting_in_a_subprocess(case: str, tmp_path: Path) -> None:
    """A RecursionError in C code can take the interpreter down: run the real CLI apart."""
    name, text, expect = DEEP[case]
    repo = base_repo(tmp_path / "repo")
    (repo / "namespaces" / "ns-a" / name).write_text(text)
    for args in (
        ["vet", str(repo), "-o", "json"],
        ["hydrate", str(repo), "--output", str(tmp_path / "out"), "-o", "json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-c", "from acm_lite.cli.main import run; run()", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr
        assert expect in {e["code"] for e in json.loads(proc.stdout)["errors"]}, proc.stdout
        assert "x." + name.rpartition(".")[2] in proc.stdout


SAMPLE = Path(__file__).parents[2] / "sample-repo"
SAMPLE_FILES = sorted(
    p.relative_to(SAMPLE).as_posix()
    for p in SAMPLE.rglob("*.yaml")
    if p.relative_to(SAMPLE).parts[0] in ("cluster", "namespaces", "clusterregistry")
)
Doc = dict[str, Any]


def _meta(doc: Doc, **fields: Any) -> Any:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return {**doc, "metadata": {**meta, **fields}}


def _annotate(doc: Doc, key: str, value: Any) -> Any:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return _meta(doc, annotations={**(meta.get("annotations") or {}), key: value})


def _nest(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


DOC_MUTATIONS: dict[str, Callable[[Doc], Any]] = {
    "doc-as-list": lambda d: [d],
    "doc-as-scalar": lambda d: "hello",
    "metadata-int": lambda d: {**d, "metadata": 5},
    "kind-list": lambda d: {**d, "kind": ["a"]},
    "kind-path": lambda d: {**d, "kind": "../../Evil"},
    "api-version-int": lambda d: {**d, "apiVersion": 5},
    "name-int": lambda d: _meta(d, name=5),
    "name-slash": lambda d: _meta(d, name="a/../../b"),
    "name-nul": lambda d: _meta(d, name="a\0b"),
    "namespace-path": lambda d: _meta(d, namespace="../x"),
    "labels-list": lambda d: _meta(d, labels=["a"]),
    "labels-nested": lambda d: _meta(d, labels={"a": {"b": "c"}}),
    "annotation-int": lambda d: _annotate(d, "a", 5),
    "selector-path": lambda d: _annotate(d, "configsync.gke.io/cluster-name-selector", f"eks-prod,{VICTIM}"),
    "selector-int": lambda d: _annotate(d, "configsync.gke.io/cluster-name-selector", 7),
    "cluster-selector-list": lambda d: _annotate(d, "configmanagement.gke.io/cluster-selector", ["x"]),
    "int-key": lambda d: {**d, "data": {1: "x"}},
    "bool-key": lambda d: {**d, "spec": {True: "x"}},
    "null-key": lambda d: _meta(d, labels={None: "x"}),
    "deep-spec": lambda d: {**d, "spec": _nest(150)},
    "spec-scalar": lambda d: {**d, "spec": "x"},
    "spec-list": lambda d: {**d, "spec": [1, 2]},
    "owner-references-string": lambda d: _meta(d, ownerReferences="x"),
    "list-of-scalars": lambda d: {"apiVersion": "v1", "kind": "List", "items": [5, d]},
    "status-field": lambda d: {**d, "status": {"phase": 5}},
}

TEXT_MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda b: b[: len(b) // 2],
    "nul-byte": lambda b: b.replace(b"\n", b"\n\0", 1),
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "latin1-byte": lambda b: b + b"# caf\xe9\n",
    "tab-indent": lambda b: b.replace(b"\n  ", b"\n\t", 1),
    "python-tag": lambda b: b + b"---\nx: !!python/object/apply:os.system ['true']\n",
    "custom-tag": lambda b: b + b"---\napiVersion: v1\nkind: ConfigMap\nmetadata: !Ref x\n",
    "alias-bomb": lambda b: b + b"---\n" + BOMB.encode(),
    "big-int": lambda b: (
        b + b"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: n}\nx: " + b"7" * 5000 + b"\n"
    ),
    "surrogate": lambda b: b + b'---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: "\\ud800"}\n',
    "merge-key": lambda b: (
        b + b"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  labels: {<<: {a: b}, 1: c}\n"
    ),
}
BOMB = (
    "\n".join(
        [f"l0: &l0 [{', '.join(['x'] * 9)}]"]
        + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    + "\n"
)
MUTATIONS = sorted(DOC_MUTATIONS) + sorted(TEXT_MUTATIONS)
# each mutation lands on two sample files, rotating so every file is mutated by something
MUTATION_CASES = [
    (m, SAMPLE_FILES[(i * 2 + k) % len(SAMPLE_FILES)]) for i, m in enumerate(MUTATIONS) for k in range(2)
]


def _mutate(path: Path, mutation: str) -> None:
    if mutation in TEXT_MUTATIONS:
        path.write_bytes(TEXT_MUTATIONS[mutation](path.read_bytes()))
        return
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    docs[0] = DOC_MUTATIONS[mutation](docs[0])
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


@pytest.mark.parametrize(("mutation", "rel"), MUTATION_CASES)
def test_mutated_sample_repo(
    mutation: str, rel: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo)
    _mutate(repo / rel, mutation)
    check_case(repo, "any", tmp_path, capsys)
