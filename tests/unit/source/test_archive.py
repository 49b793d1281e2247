"""Unpacking an untrusted tarball (a chart, an OCI layer): what is written and what is refused."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from acm_lite import errors
from acm_lite.errors import AcmError
from acm_lite.source import archive


def tarball(*members: tarfile.TarInfo | tuple[str, bytes], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return gzip.compress(buf.getvalue()) if compress else buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def refused(data: bytes, target: Path, **kwargs: object) -> str:
    with pytest.raises(AcmError) as caught:
        archive.unpack(data, target, "layer sha256:abc of reg.example/x:1", **kwargs)  # type: ignore[arg-type]
    assert caught.value.code is errors.ARTIFACT_REJECTED
    assert "reg.example/x:1" in caught.value.message
    return caught.value.message


def test_files_and_directories_are_unpacked_gzip_or_plain(tmp_path: Path) -> None:
    for compress in (True, False):
        target = tmp_path / str(compress)
        target.mkdir()
        archive.unpack(tarball(("a/cm.yaml", b"kind: ConfigMap\n"), compress=compress), target, "x")
        assert (target / "a" / "cm.yaml").read_bytes() == b"kind: ConfigMap\n"


def test_a_symlink_inside_is_kept_unless_links_are_refused(tmp_path: Path) -> None:
    data = tarball(("a/cm.yaml", b"x"), link("b.yaml", "a/cm.yaml"))
    archive.unpack(data, tmp_path, "x")
    assert (tmp_path / "b.yaml").is_symlink()
    other = tmp_path / "other"
    other.mkdir()
    assert "symbolic link" in refused(data, other, symlinks=False)


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (("../escape.yaml", b"x"), "leads outside"),
        (("a/../../escape.yaml", b"x"), "leads outside"),
        (("/etc/evil.yaml", b"x"), "absolute path"),
        (link("out", "../../etc/passwd"), "leads outside"),
        (link("out", "/etc/passwd"), "leads outside"),
        (link("hard", "a.yaml", tarfile.LNKTYPE), "hard link"),
        (link("fifo", "", tarfile.FIFOTYPE), "special file"),
    ],
)
def test_hostile_members_are_refused_and_nothing_lands_outside(
    tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes], says: str
) -> None:
    target = tmp_path / "t"
    target.mkdir()
    assert says in refused(tarball(member), target)
    assert not (tmp_path / "escape.yaml").exists()


def test_writing_through_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    data = tarball(link("d", "."), ("d/x.yaml", b"x"))
    assert "through a symbolic link" in refused(data, target)


def test_not_a_tarball_is_refused(tmp_path: Path) -> None:
    assert "not a" in refused(b"just some bytes, no archive", tmp_path)
    assert "not a" in refused(gzip.compress(b"gzip but no tar inside" * 40), tmp_path)


def test_the_unpacked_size_is_bounded(tmp_path: Path) -> None:
    data = tarball(("big.yaml", b"0" * 5000))
    assert "size limit" in refused(data, tmp_path, max_bytes=4096)


def test_strip_requires_every_member_under_the_prefix(tmp_path: Path) -> None:
    archive.unpack(tarball(("chart/Chart.yaml", b"name: c\n")), tmp_path, "x", strip="chart")
    assert (tmp_path / "Chart.yaml").is_file()
    assert "not under" in refused(tarball(("other/x", b"")), tmp_path / "n", strip="chart")
