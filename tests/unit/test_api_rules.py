"""Table tests of each offline API-server rule, one function at a time."""

from __future__ import annotations

import base64
import json
import marshal
import time

import pytest

from acm_lite.validate import config_data, metadata_syntax, object_size, quantities


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("app", True),
        ("example.com/My_Name.1", True),
        ("1234/5678", True),
        ("1.2.3.4/x", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("x/" + "a" * 63, True),
        ("a/b/c", False),
        ("/x", False),
        ("example.com/", False),
        ("", False),
        ("-a", False),
        ("a-", False),
        ("a b", False),
        ("Example.com/x", False),
        ("e" * 254 + "/x", False),
        (("e" * 61 + ".") * 4 + "e/x", True),
    ],
)
def test_qualified_names(key: str, ok: bool) -> None:
    assert (metadata_syntax.qualified_name_error(key) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("", True),
        ("a", True),
        ("A.b_c-1", True),
        ("v" * 63, True),
        ("v" * 64, False),
        ("-a", False),
        ("a.", False),
        ("a b", False),
        ("a/b", False),
    ],
)
def test_label_values(value: str, ok: bool) -> None:
    assert (metadata_syntax.label_value_error(value) is None) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("0", True),
        ("100m", True),
        ("1.5", True),
        (".5", True),
        ("1.", True),
        (".", True),
        ("+1", True),
        ("-1", True),
        ("-", True),
        ("1Ki", True),
        ("1Ei", True),
        ("1E", True),
        ("m", True),
        ("1e3", True),
        ("1E-3", True),
        ("1e+3", True),
        (" 100m\t", True),
        ("1n", True),
        ("1u", True),
        ("1e9223372036854775807", True),
        ("", False),
        ("  ", False),
        ("lots", False),
        ("1 Gi", False),
        ("1K", False),
        ("1ki", False),
        ("1e", False),
        ("1e+", False),
        ("1.5.5", False),
        ("1Mi5", False),
        ("1+5", False),
        ("1ee3", False),
        ("1e9223372036854775808", False),
        ("0x10", False),
        ("1\x1c", False),
    ],
)
def test_quantities(text: str, ok: bool) -> None:
    assert quantities.parses(text) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        (0.5, True),
        (None, True),
        (float("inf"), False),
        (float("nan"), False),
    ],
)
def test_quantity_numbers(value: object, ok: bool) -> None:
    assert quantities.valid(value) is ok


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("a", True),
        ("a.b-c_D", True),
        (".a", True),
        ("k" * 253, True),
        ("k" * 254, False),
        (".", False),
        ("..", False),
        ("..a", False),
        ("a b", False),
        ("a:b", False),
        ("", False),
        ("a/b", False),
    ],
)
def test_config_keys(key: str, ok: bool) -> None:
    assert (config_data.key_error(key) is None) is ok


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        (b"", 0),
        (b"A", 1),
        (b"AB", 2),
        (b"ABC", 3),
        (b"ABCD", 4),
        (bytes(range(256)), 256),
    ],
)
def test_base64_sizes(raw: bytes, size: int) -> None:
    encoded = base64.b64encode(raw).decode()
    assert config_data.decoded_size(encoded) == size
    assert config_data.decoded_size(encoded[:4] + "\r\n" + encoded[4:]) == size


@pytest.mark.parametrize(
    "text", ["QQ=", "QQ", "QUJD==", "-_-_", "Q===", "QQ==QQ==", "not base64!", "Q", "QUJD="]
)
def test_base64_invalid(text: str) -> None:
    assert config_data.decoded_size(text) is None


@pytest.mark.parametrize(
    "body",
    [
        {"a": "\x00" * 1000},
        {"a": [None, False, True] * 100},
        {"n": [2**62, -(2**63), 1.5e300]},
        {"k" * 10: {"x": "é" * 50, "y": '\\"' * 30}},
        {"a": [[], {}, ""] * 50},
    ],
)
def test_marshal_bound_is_an_upper_bound(body: dict[str, object]) -> None:
    """The cheap bound never claims an object smaller than its JSON, whatever its values."""
    encoded = len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    assert encoded <= len(marshal.dumps(body, 2)) * object_size.JSON_PER_MARSHAL_BYTE


def test_shared_values_count_each_time() -> None:
    """YAML aliases make one value appear many times: the bound must count every copy."""
    big = "x" * (300 * 1024)
    body = {"a": [big] * 6}
    assert not object_size.surely_small(body)
    assert object_size.encoded_size(body) > object_size.MAX_OBJECT_BYTES


def test_hostile_lengths_cost_linear_time() -> None:
    """A megabyte of digits with a wrong last character once took quadratic time (backtracking)."""
    started = time.perf_counter()
    assert not quantities.parses("1" * 1_000_000 + "x")
    assert config_data.decoded_size("QUJD" * 250_000 + "!") is None
    assert metadata_syntax.qualified_name_error("a" * 1_000_000 + "!") is not None
    assert time.perf_counter() - started < 1.0
