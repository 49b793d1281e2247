"""A commit's files are extracted with tarfile's "tar" filter, and by the same checks by hand on a
CPython without extraction filters (Debian bookworm's 3.11.2, which the container image runs)."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from acm_lite.source.git import _extract


def _tar(*members: tuple[str, bytes | None, int, str | None]) -> tarfile.TarFile:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, content, mode, link in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                archive.addfile(info)
            elif content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    data.seek(0)
    return tarfile.open(fileobj=data)


@pytest.fixture(params=["filter", "by-hand"])
def by_hand(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param == "by-hand":
        monkeypatch.delattr(tarfile, "tar_filter")
    return bool(request.param == "by-hand")


def test_files_links_and_modes(by_hand: bool, tmp_path: Path) -> None:
    _extract(
        _tar(
            ("dir", None, 0o777, None),
            ("dir/a.yaml", b"a: 1\n", 0o6777, None),
            ("/abs.yaml", b"b: 2\n", 0o644, None),
            ("link", None, 0o777, "dir/a.yaml"),
        ),
        tmp_path,
    )
    assert (tmp_path / "dir" / "a.yaml").read_text() == "a: 1\n"
    assert stat.S_IMODE((tmp_path / "dir" / "a.yaml").stat().st_mode) == 0o755
    assert (tmp_path / "abs.yaml").read_text() == "b: 2\n"  # leading slashes stripped
    assert (tmp_path / "link").is_symlink() and (tmp_path / "link").read_text() == "a: 1\n"


@pytest.mark.parametrize(
    "members",
    [
        [("../escape.yaml", b"x", 0o644, None)],
        [("a/../../escape.yaml", b"x", 0o644, None)],
        [("out", None, 0o777, "/"), ("out/escape.yaml", b"x", 0o644, None)],
    ],
    ids=["dotdot", "nested-dotdot", "through-a-link"],
)
def test_nothing_lands_outside(
    by_hand: bool, tmp_path: Path, members: list[tuple[str, bytes | None, int, str | None]]
) -> None:
    target = tmp_path / "checkout"
    target.mkdir()
    with pytest.raises(tarfile.TarError):
        _extract(_tar(*members), target)
    assert not (tmp_path / "escape.yaml").exists() and not Path("/escape.yaml").exists()
