"""`hydrate` never writes or removes anything outside --output, whatever the repository names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from acm_lite.cli.hydrate import write
from acm_lite.cli.main import main
from acm_lite.errors import AcmError
from acm_lite.objects import Manifest
from tests.unit.repo_builder import REPO, cm, ns, obj
from tests.unit.repo_builder import write as write_repo

SELECTOR = "configsync.gke.io/cluster-name-selector"


def repo_with(root: Path, *extra: dict[str, object]) -> Path:
    return write_repo(
        root,
        {
            "system/repo.yaml": REPO,
            "namespaces/ns-a/namespace.yaml": ns("ns-a"),
            "namespaces/ns-a/objects.yaml": [cm("base"), *extra],
        },
    )


def sentinel(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep\n")
    return victim


def assert_intact(victim: Path) -> None:
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]
    assert (victim / "keep").read_text() == "keep\n"


def hydrate(repo: Path, out: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["hydrate", str(repo), "--output", str(out), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    "entry", ["{victim}", "../victim", "x/../../victim", "../../../../../..{victim}", "a\0b", "Prod"]
)
def test_cluster_name_selector_entries_that_are_not_names(
    entry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = sentinel(tmp_path)
    name = entry.format(victim=victim)
    repo = repo_with(tmp_path / "repo", cm("sel", annotations={SELECTOR: f"prod, {name}"}))
    out = tmp_path / "out"
    assert main(["vet", str(repo), "-o", "json"]) == 1
    found = json.loads(capsys.readouterr().out)["errors"]
    assert [e["code"] for e in found] == ["ACM1016"]
    assert found[0]["source"] == "namespaces/ns-a/objects.yaml"
    for flat in ([], ["--flat"]):
        code, text = hydrate(repo, out, capsys, *flat)
        assert code == 1 and "ACM1016" in text
        assert_intact(victim)
    assert {p.name for p in tmp_path.iterdir()} <= {"out", "repo", "victim"}


@pytest.mark.parametrize(
    "flag",
    [
        ["--cluster", "../victim"],
        ["--cluster", "{victim}"],
        ["--clusters", "prod,../../victim"],
        ["--cluster", "a\0b"],
    ],
)
def test_cluster_flags_that_are_not_names(
    flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = sentinel(tmp_path)
    repo = repo_with(tmp_path / "repo")
    code, text = hydrate(repo, tmp_path / "out", capsys, flag[0], flag[1].format(victim=victim))
    assert code == 1 and "ACM1016 InvalidClusterName" in text
    assert_intact(victim)


def test_a_symlinked_cluster_directory_is_neither_followed_nor_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = sentinel(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "defaultcluster")
    code, text = hydrate(repo_with(tmp_path / "repo"), out, capsys)
    assert code == 1 and "ACM1017 UnsafeOutputPath" in text
    assert_intact(victim)
    assert (out / "defaultcluster").is_symlink()


def test_a_symlinked_flat_file_is_not_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = sentinel(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim / "keep", out / "defaultcluster.yaml")
    code, text = hydrate(repo_with(tmp_path / "repo"), out, capsys, "--flat")
    assert code == 1 and "ACM1017 UnsafeOutputPath" in text
    assert_intact(victim)


@pytest.mark.parametrize("name", ["a\0b", "r" * 300])
def test_object_names_that_cannot_be_file_names(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RBAC names are path segments: NUL and any length pass vet, but never make a file."""
    role = obj("rbac.authorization.k8s.io/v1", "Role", name, rules=[])
    code, text = hydrate(repo_with(tmp_path / "repo", role), tmp_path / "out", capsys)
    assert code == 1 and "ACM1017 UnsafeOutputPath" in text
    assert "internal error" not in text


@pytest.mark.parametrize(
    ("namespace", "name", "kind"),
    [
        ("../../victim", "x", "ConfigMap"),
        ("", "a/../../victim", "ConfigMap"),
        ("", "x", "../../Victim"),
        ("..", "x", "ConfigMap"),
        ("", "x\0", "ConfigMap"),
    ],
)
def test_write_checks_every_path_part_before_removing_anything(
    namespace: str, name: str, kind: str, tmp_path: Path
) -> None:
    victim = sentinel(tmp_path)
    out = tmp_path / "out"
    write(
        out,
        "prod",
        [Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "old"}}, "a.yaml")],
        flat=False,
    )
    bad = Manifest(
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}}, "b.yaml"
    )
    with pytest.raises(AcmError) as raised:
        write(out, "prod", [bad], flat=False)
    assert raised.value.code.id == "ACM1017"
    assert_intact(victim)
    assert [p.name for p in (out / "prod").iterdir()] == ["configmap_old.yaml"]
    good = Manifest(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "ns"}}, "c.yaml"
    )
    write(out, "prod", [good], flat=False)  # a valid run still replaces the earlier output
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml")) == ["prod/ns/configmap_new.yaml"]
