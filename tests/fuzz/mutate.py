"""Seeded mutations of repositories and policy directories: the same (seed, case) gives the same tree.

Each case copies a base tree and applies one to three mutations, at three levels: the parsed objects
(a value replaced by a hostile one, a key dropped or renamed), the bytes of a file (truncated,
spliced, duplicated lines, odd characters), and the file system (symbolic links, a directory named
like a manifest, an empty or binary file, deep nesting). Pure apart from writing the case's tree.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _deep(depth: int) -> Any:
    node: Any = "leaf"
    for _ in range(depth):
        node = {"a": node}
    return node


# Values a hostile author would try: wrong types, path tricks, names that are not names, odd numbers.
HOSTILE_VALUES: tuple[Any, ...] = (
    "",
    "x",
    " ",
    0,
    -1,
    5,
    2**63,
    10**40,
    1.5,
    float("inf"),
    True,
    False,
    None,
    [],
    {},
    [1, "a"],
    {"a": 1},
    {1: "integer key"},
    {True: "bool key"},
    {None: "null key"},
    "../../etc",
    "/tmp/abs",
    "a/b",
    "..",
    "UPPER",
    "a" * 300,
    "é",
    "a\nb",
    "*",
    "${HOME}",
    "{{ .Values }}",
    "0x10",
    "1e400",
    "-",
    "kube-system",
    "acm-lite-system",
    "default",
    "::",
    "[",
    _deep(60),
    ["x"] * 50,
)

ODD_TEXT = (
    "\x00",
    "\t",
    "\ufeff",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!python/object:os.system ",
    "!custom ",
    "? ",
    "--- ",
    "...\n",
    "%YAML 1.1\n",
    "{",
    "[",
    "'",
    '"',
    "\\",
    "\u2028",
    "\xff",
    ": ",
    "- ",
    "#",
)


@dataclass(frozen=True)
class Case:
    """One generated input: its number, its tree, and what was done to it."""

    index: int
    root: Path
    steps: tuple[str, ...]


def manifests(root: Path) -> list[Path]:
    """The tree's own manifests (not those a mutation added: they are hostile by design)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and p.suffix in MANIFEST_SUFFIXES
        and not p.name.startswith("fuzz-")
    )


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of a parsed document (bounded: documents here are small)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


def _load(path: Path) -> list[Any] | None:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return docs if docs else None


def _dump(path: Path, docs: list[Any]) -> None:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True))


def _mutate_tree(rng: random.Random, root: Path, edit: Callable[[Any, tuple[Any, ...]], str]) -> str:
    files = manifests(root)
    if not files:
        return "no manifest to mutate"
    path = rng.choice(files)
    docs = _load(path)
    if docs is None:
        return f"{path.name}: unparsable, left"
    index = rng.randrange(len(docs))
    targets = _paths(docs[index])[1:] or [()]
    target = rng.choice(targets)
    if not target:
        docs[index] = rng.choice(HOSTILE_VALUES)
        _dump(path, docs)
        return f"{path.relative_to(root)}[{index}] replaced whole"
    step = edit(_parent(docs[index], target), target)
    _dump(path, docs)
    return f"{path.relative_to(root)}[{index}] {'.'.join(map(str, target))}: {step}"


def replace_value(rng: random.Random, root: Path) -> str:
    def edit(parent: Any, path: tuple[Any, ...]) -> str:
        value = rng.choice(HOSTILE_VALUES)
        parent[path[-1]] = value
        return f"= {value!r:.60}"

    return _mutate_tree(rng, root, edit)


def drop_key(rng: random.Random, root: Path) -> str:
    def edit(parent: Any, path: tuple[Any, ...]) -> str:
        del parent[path[-1]]
        return "dropped"

    return _mutate_tree(rng, root, edit)


def rename_key(rng: random.Random, root: Path) -> str:
    def edit(parent: Any, path: tuple[Any, ...]) -> str:
        if not isinstance(parent, dict):
            return "not a mapping, left"
        new = rng.choice(
            (
                1,
                True,
                None,
                "",
                "metadata",
                "apiVersion",
                "kind",
                "spec",
                "a" * 70,
                "acm-lite.io/sync",
                "configsync.gke.io/x",
                "Data",
                "status",
            )
        )
        parent[new] = parent.pop(path[-1])
        return f"renamed to {new!r}"

    return _mutate_tree(rng, root, edit)


def _text_edit(rng: random.Random, root: Path, edit: Callable[[str], str]) -> str:
    files = manifests(root)
    if not files:
        return "no manifest to edit"
    path = rng.choice(files)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return f"{path.name}: binary, left"
    path.write_text(edit(text), encoding="utf-8", errors="surrogatepass")
    return f"{path.relative_to(root)}"


def truncate(rng: random.Random, root: Path) -> str:
    return "truncated " + _text_edit(rng, root, lambda t: t[: rng.randrange(len(t) + 1)])


def splice(rng: random.Random, root: Path) -> str:
    def edit(text: str) -> str:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(ODD_TEXT) + text[at:]

    return "spliced " + _text_edit(rng, root, edit)


def shuffle_lines(rng: random.Random, root: Path) -> str:
    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        if len(lines) < 2:
            return text
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        if rng.random() < 0.5:
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines.insert(i, lines[j])
        return "".join(lines)

    return "lines moved in " + _text_edit(rng, root, edit)


def add_file(rng: random.Random, root: Path) -> str:
    """A file or link a repository should not be able to use against the reader."""
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]
    where = rng.choice(dirs)
    kind = rng.choice(
        (
            "link-out",
            "link-loop",
            "link-self",
            "dir-named-yaml",
            "empty",
            "binary",
            "deep-json",
            "deep-yaml",
            "big-number",
            "surrogate",
            "list-doc",
            "scalar-doc",
            "many-docs",
            "alias-fanout",
        )
    )
    path = where / f"fuzz-{kind}.yaml"
    writers: dict[str, Callable[[], None]] = {
        "link-out": lambda: path.symlink_to("/etc/hostname"),
        "link-loop": lambda: (
            path.symlink_to(where / "fuzz-loop2.yaml"),
            (where / "fuzz-loop2.yaml").symlink_to(path),
        ),
        "link-self": lambda: path.symlink_to(path.name),
        "dir-named-yaml": path.mkdir,
        "empty": lambda: path.write_text(""),
        "binary": lambda: path.write_bytes(bytes(rng.randrange(256) for _ in range(256))),
        "deep-json": lambda: path.write_text("[" * 5000 + "]" * 5000),
        "deep-yaml": lambda: path.write_text("a:\n" + "".join("  " * i + "a:\n" for i in range(1, 400))),
        "big-number": lambda: path.write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: default}\n"
            f"data: {{k: v}}\nimmutable: {'9' * 5000}\n"
        ),
        "surrogate": lambda: path.write_text(
            'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {k: "\\ud800"}\n'
        ),
        "list-doc": lambda: path.write_text("- a\n- b\n"),
        "scalar-doc": lambda: path.write_text("just a string\n"),
        "many-docs": lambda: path.write_text("---\n{}\n" * 200),
        "alias-fanout": lambda: path.write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fan}\n"
            "data:\n  a: &x " + "y" * 10000 + "\n" + "".join(f"  k{i}: *x\n" for i in range(60))
        ),
    }
    writers[kind]()
    return f"added {kind} at {path.relative_to(root)}"


MUTATIONS: tuple[Callable[[random.Random, Path], str], ...] = (
    replace_value,
    replace_value,
    replace_value,
    drop_key,
    rename_key,
    truncate,
    splice,
    shuffle_lines,
    add_file,
)


def make_case(base: Path, work: Path, seed: int, index: int) -> Case:
    """Copy ``base`` under ``work`` and mutate it; deterministic in (seed, index)."""
    rng = random.Random(f"{seed}:{index}")
    root = work / f"case-{index}"
    shutil.copytree(base, root, symlinks=True)
    steps = tuple(rng.choice(MUTATIONS)(rng, root) for _ in range(rng.randint(1, 3)))
    return Case(index, root, steps)
