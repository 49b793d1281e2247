"""Chart versions and constraints, as Helm picks them: the newest match."""

from __future__ import annotations

import pytest

from acm_lite.source import semver

VERSIONS = ["0.1.0", "0.2.0", "1.0.0", "1.2.3", "1.3.0-rc.1", "1.3.0", "2.0.0", "v2.1.0", "not-a-version"]


@pytest.mark.parametrize(
    ("wanted", "picked"),
    [
        ("", "v2.1.0"),
        ("*", "v2.1.0"),
        ("1.2.3", "1.2.3"),
        ("9.9.9", None),
        (">=1.0.0 <2.0.0", "1.3.0"),
        (">=1.0.0, <2", "1.3.0"),
        ("^1.2", "1.3.0"),
        ("^0.1", "0.1.0"),
        ("~1.2", "1.2.3"),
        ("1.x", "1.3.0"),
        ("1.0 - 1.2.9", "1.2.3"),
        (">1.0.0 <1.3.0", "1.2.3"),
        ("2.0.0 || 0.1.x", "2.0.0"),
        (">=1.3.0-rc.0 <1.3.0", "1.3.0-rc.1"),
        ("<0.1.0", None),
        ("junk", None),
    ],
)
def test_the_newest_matching_version_is_picked(wanted: str, picked: str | None) -> None:
    assert semver.newest(VERSIONS, wanted) == picked


def test_a_prerelease_is_picked_only_when_the_constraint_names_one() -> None:
    assert semver.newest(["1.0.0", "1.1.0-beta.1"], ">=1.0.0") == "1.0.0"
    assert semver.newest(["1.0.0", "1.1.0-beta.1"], ">=1.1.0-beta.0") == "1.1.0-beta.1"


def test_prereleases_order_before_their_release() -> None:
    parse = semver.Version.parse
    assert parse("1.0.0-alpha") < parse("1.0.0-alpha.1") < parse("1.0.0-beta") < parse("1.0.0")
    assert parse("1.0.0-2") < parse("1.0.0-10")


def test_exact_versions_are_not_ranges() -> None:
    assert semver.is_exact("1.2.3") and not semver.is_exact("^1.2.3") and not semver.is_exact("")
