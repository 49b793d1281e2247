"""hack/image.py's pure parts: the two locks (reading, writing, comparing with what was installed),
apt's words for a version the mirror no longer serves, cache keys, and the files it edits."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hack_image", ROOT / "hack" / "image.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["hack_image"] = module
    spec.loader.exec_module(module)
    return module


image = _load()


def test_debian_lock_round_trip_and_refusals() -> None:
    pins = {"python3": "3.11.2-1+b1", "git": "1:2.39.5-0+deb12u3"}
    text = image.render_debian_lock(pins, 1796231521)
    assert image.parse_debian_lock(text) == (pins, 1796231521)
    assert text.index("git=") < text.index("python3=")  # sorted, so a refresh diffs cleanly
    for bad, words in [
        ("# SOURCE_DATE_EPOCH=1\ngit 2.39\n", "not `package=version`"),
        ("# SOURCE_DATE_EPOCH=1\ngit=1\ngit=2\n", "pinned twice"),
        ("git=1\n", "SOURCE_DATE_EPOCH"),
        ("# SOURCE_DATE_EPOCH=1\n", "pins no packages"),
        ("# SOURCE_DATE_EPOCH=1\nGit=1\n", "not `package=version`"),
    ]:
        with pytest.raises(image.ImageError, match=words) as refused:
            image.parse_debian_lock(bad)
        assert "make image-lock" in str(refused.value)


def test_committed_locks_cover_what_the_image_needs() -> None:
    pins, epoch = image.parse_debian_lock(image.DEBIAN_LOCK.read_text())
    assert set(image.PACKAGES) <= set(pins) and epoch > 0
    locked = {
        line.split("==")[0]
        for line in image.PYTHON_LOCK.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[]", d)[0]).lower() for d in declared}
    assert names <= locked, f"pyproject.toml dependencies missing from the lock: {names - locked}"
    assert all("--hash=sha256:" in block for block in image.PYTHON_LOCK.read_text().split("==")[1:])


def test_lock_differences_name_each_package() -> None:
    pins = {"git": "1", "perl": "5", "tini": "0.19"}
    installed = {"git": "2", "perl": "5", "bash": "5.2"}
    assert image.lock_differences(pins, installed) == [
        "bash=5.2 was installed but is not pinned",
        "git is pinned at 1 but 2 was installed",
        "tini=0.19 is pinned but was not installed",
    ]
    assert image.lock_differences(pins, dict(pins)) == []
    assert image.parse_dpkg_list("git=1:2.39\nlibc6=2.36-9\n\n") == {"git": "1:2.39", "libc6": "2.36-9"}


def test_unserved_reads_apts_errors() -> None:
    output = (
        "I: running apt-get install\n"
        "E: Version '0.0.1-bogus' for 'tini' was not found\n"
        "E: Version '1:1.0' for 'git' was not found\n"
        "E: Unable to locate package nosuchpkg\n"
        "E: apt-get install failed\n"
    )
    assert image.unserved(output) == ["git=1:1.0", "nosuchpkg", "tini=0.0.1-bogus"]
    assert image.unserved("E: Sub-process /usr/bin/dpkg returned an error code (1)") == []


def test_pins_are_looked_up_in_the_indexes_apt_cache_madison_lists() -> None:
    listing = (
        "      tini | 0.19.0-1+b3 | http://deb.debian.org/debian bookworm/main amd64 Packages\n"
        "       git | 1:2.39.5-0+deb12u3 | http://deb.debian.org/debian bookworm/main amd64 Packages\n"
        "       git | 1:2.39.5-0+deb12u2 | http://deb.debian.org/debian-security bookworm-security/main"
        " amd64 Packages\n"
        "      perl | 5.36.0-7 | http://deb.debian.org/debian bookworm/main Sources\n"
        "N: Unable to locate package nosuchpkg\n"
    )
    served = image.parse_madison(listing)
    assert served == {"tini": {"0.19.0-1+b3"}, "git": {"1:2.39.5-0+deb12u3", "1:2.39.5-0+deb12u2"}}
    pins = {"git": "1:2.39.5-0+deb12u2", "tini": "0.0.1-gone", "perl": "5.36.0-7", "nosuchpkg": "1"}
    assert image.pins_not_served(pins, served) == ["nosuchpkg", "perl", "tini=0.0.1-gone"]
    assert image.pins_not_served({"tini": "0.19.0-1+b3"}, served) == []


def _item(name: str, url: str, digest: str | None) -> dict[str, object]:
    info: dict[str, object] = {"url": url}
    if digest:
        info["archive_info"] = {"hashes": {"sha256": digest}}
    return {"metadata": {"name": name, "version": "1.0"}, "download_info": info}


def test_python_lock_from_a_pip_report() -> None:
    report = {
        "install": [
            _item("acm-lite", "file:///src", None),
            _item("PyYAML", "https://files/pyyaml-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "a" * 64),
            _item("attrs", "https://files/attrs-1.0-py3-none-any.whl", "b" * 64),
        ]
    }
    text = image.python_lock_from_report(report)
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == [
        "attrs==1.0 \\",
        f"    --hash=sha256:{'b' * 64}",
        "pyyaml==1.0 \\",
        f"    --hash=sha256:{'a' * 64}",
    ]
    with pytest.raises(image.ImageError, match="not a hashed wheel"):
        image.python_lock_from_report({"install": [_item("x", "https://files/x-1.0.tar.gz", "c" * 64)]})
    with pytest.raises(image.ImageError, match="not a hashed wheel"):
        image.python_lock_from_report({"install": [_item("x", "https://files/x-1.0-py3-none-any.whl", None)]})


def test_keys_change_with_every_part_and_do_not_run_parts_together() -> None:
    assert image.key("a", b"b") == image.key("a", "b")
    assert image.key("ab", "c") != image.key("a", "bc")
    assert image.key("a", "b") != image.key("a", "b", "")


def test_the_user_is_added_once() -> None:
    passwd, group = image.passwd_lines("root:x:0:0:root:/root:/bin/bash\n", "root:x:0:\n")
    assert passwd.endswith("nonroot:x:65532:65532:acm-lite:/tmp:/usr/sbin/nologin\n")
    assert group == "root:x:0:\nnonroot:x:65532:\n"
    assert image.passwd_lines(passwd, group) == (passwd, group)


def test_metadata_labels_and_source_without_credentials() -> None:
    meta = image.Metadata(
        "0.1.0", "abc", image.strip_credentials("https://u:tok@git.example.com/x.git"), 0, "MIT"
    )
    labels = meta.labels()
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/x.git"
    assert labels["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"
    assert {k.rsplit(".", 1)[1] for k in labels} >= {"title", "version", "revision", "created", "licenses"}
    assert "org.opencontainers.image.source" not in image.Metadata("0.1.0", "abc", None, 0, "MIT").labels()


def test_forget_direct_url_and_prune_schemas(tmp_path: Path) -> None:
    info = tmp_path / "acm_lite-0.1.0.dist-info"
    info.mkdir()
    (info / "direct_url.json").write_text('{"url": "file:///tmp/top-x/acm_lite.whl"}')
    (info / "RECORD").write_text(
        "acm_lite/__init__.py,sha256=x,1\n"
        "acm_lite-0.1.0.dist-info/direct_url.json,sha256=y,2\n"
        "acm_lite-0.1.0.dist-info/RECORD,,\n"
    )
    image.forget_direct_url(info)
    assert not (info / "direct_url.json").exists()
    assert "direct_url" not in (info / "RECORD").read_text()
    assert (info / "RECORD").read_text().count("\n") == 2
    (info / "RECORD").write_text("../../bin/idna,sha256=x,1\nidna/__init__.py,sha256=y,2\n")
    image.forget_lines(info, "../../bin/")
    assert (info / "RECORD").read_text() == "idna/__init__.py,sha256=y,2\n"

    from acm_lite.validate.schema import SCHEMA_VERSION

    schemas = tmp_path / "kubernetes_validate" / "kubernetes-json-schema"
    for name in (f"v{SCHEMA_VERSION}-local-strict", f"v{SCHEMA_VERSION}-local", "v1.25.0-local-strict"):
        (schemas / name).mkdir(parents=True)
    assert image.prune_schemas(tmp_path) == sorted([f"v{SCHEMA_VERSION}-local", "v1.25.0-local-strict"])
    assert [p.name for p in schemas.iterdir()] == [f"v{SCHEMA_VERSION}-local-strict"]
    with pytest.raises(image.ImageError, match="has no"):
        image.prune_schemas(tmp_path / "elsewhere")
