"""Kubernetes' CEL libraries for the CEL engine: lists, regex, URLs, quantities, IPs and CIDRs,
formats, semantic versions, and the sets and lists extensions, with the behaviour of
``k8s.io/apiserver/pkg/cel/library``.

They are functions of the ``cel-expr-python`` binding implemented in Python. The binding cannot
carry opaque values, so a quantity, URL, IP, CIDR, format or semantic version is a CEL map with
one private key (``"#kubernetes.Quantity"`` and so on) holding its canonical form: equal
quantities (``1`` and ``1000m``) are equal maps, as are semantic versions that differ only in
build metadata, and every function checks the key it expects. ``type()`` of such a value is
``map``, not ``kubernetes.Quantity``. Optional results (``format.named``, ``Format.validate``)
are maps of the same kind that ``hasValue()``, ``value()`` and ``orValue()`` read.

Every function bounds its work: regular expressions run in RE2 and are cached, quantities with
exponents beyond ±400 are refused, ``lists.range`` stops at a million, and lists are walked once.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
import urllib.parse
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from typing import Any

import re2
from cel_expr_python import cel

QUANTITY = "#kubernetes.Quantity"
URL = "#kubernetes.URL"
IP = "#net.IP"
CIDR = "#net.CIDR"
FORMAT = "#kubernetes.NamedFormat"
SEMVER = "#kubernetes.Semver"
OPTIONAL = "#optional"

_D = cel.Type.DYN
_S = cel.Type.STRING
_I = cel.Type.INT
_B = cel.Type.BOOL
_F = cel.Type.DOUBLE
_L = cel.Type.List(_D)
_M = cel.Type.Map(_S, _D)


class LibraryError(Exception):
    """A Kubernetes library function refused its arguments (becomes a CEL evaluation error)."""


def _overload_error(function: str, *args: Any) -> LibraryError:
    kinds = ", ".join(_kind(a) for a in args)
    return LibraryError(f"no such overload: {function}({kinds})")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in (QUANTITY, URL, IP, CIDR, FORMAT, SEMVER, OPTIONAL):
            if key in value:
                return {
                    QUANTITY: "kubernetes.Quantity",
                    URL: "kubernetes.URL",
                    IP: "net.IP",
                    CIDR: "net.CIDR",
                    FORMAT: "kubernetes.NamedFormat",
                    SEMVER: "kubernetes.Semver",
                    OPTIONAL: "optional_type",
                }[key]
        return "map"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "double", str: "string", bytes: "bytes", list: "list"}.get(
        type(value), type(value).__name__
    )


def _unwrap(value: Any, key: str, function: str) -> Any:
    if isinstance(value, dict) and key in value and len(value) == 1:
        return value[key]
    raise _overload_error(function, value)


# --- CEL equality and ordering on plain values ---------------------------------------------------


def cel_equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality: numbers compare by value, other kinds never equal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(cel_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _order_key(values: list[Any], function: str) -> None:
    """Raise unless every element is of one comparable kind (numbers mix, as in CEL)."""
    kinds = {
        ("number" if isinstance(v, int | float) and not isinstance(v, bool) else _kind(v)) for v in values
    }
    if len(kinds) > 1 or kinds - {"number", "string", "bool", "bytes", "timedelta", "datetime"}:
        raise _overload_error(function, values[0] if values else [])


# --- lists (library.Lists, ext.Lists, ext.Sets) -----------------------------------------------------


def _is_sorted(items: list[Any]) -> bool:
    _order_key(items, "isSorted")
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def _sum(items: list[Any]) -> Any:
    if not items:
        return 0
    _order_key(items, "sum")
    if isinstance(items[0], str | bool | bytes):
        raise _overload_error("sum", items[0])
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _extreme(name: str) -> Callable[[list[Any]], Any]:
    def pick(items: list[Any]) -> Any:
        if not items:
            raise LibraryError(f"{name} called on empty list")
        _order_key(items, name)
        return min(items) if name == "min" else max(items)

    return pick


def _index_of(items: list[Any], value: Any) -> int:
    for i, item in enumerate(items):
        if cel_equal(item, value):
            return i
    return -1


def _last_index_of(items: list[Any], value: Any) -> int:
    for i in range(len(items) - 1, -1, -1):
        if cel_equal(items[i], value):
            return i
    return -1


def _slice(items: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end < 0:
        raise LibraryError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise LibraryError(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if end > len(items):
        raise LibraryError(f"cannot slice({start}, {end}), list is length {len(items)}")
    return items[start:end]


def _flatten(items: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise LibraryError("level must be non-negative")
    out: list[Any] = []
    for item in items:
        if isinstance(item, list) and depth > 0:
            out += _flatten(item, depth - 1)
        else:
            out.append(item)
    return out


def _identity(value: Any) -> Any:
    """A hashable key equal for CEL-equal scalars (1 and 1.0 alike, true and 1 not); None for
    lists and maps, which are compared one by one."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str | bytes):
        return (type(value).__name__, value)
    return None


def _members(items: list[Any]) -> tuple[set[Any], list[Any]]:
    keys, others = set(), []
    for item in items:
        key = _identity(item)
        if key is None:
            others.append(item)
        else:
            keys.add(key)
    return keys, others


def _member(value: Any, keys: set[Any], others: list[Any]) -> bool:
    key = _identity(value)
    return key in keys if key is not None else _index_of(others, value) >= 0


def _distinct(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    keys: set[Any] = set()
    others: list[Any] = []
    for item in items:
        if not _member(item, keys, others):
            out.append(item)
            key = _identity(item)
            if key is None:
                others.append(item)
            else:
                keys.add(key)
    return out


def _sort(items: list[Any]) -> list[Any]:
    _order_key(items, "sort")
    return sorted(items)


def _range(n: int) -> list[int]:
    if n > 1_000_000:
        raise LibraryError(f"lists.range({n}) is larger than acm-lite evaluates (1,000,000)")
    return list(range(max(n, 0)))


def _sets_contains(items: list[Any], sub: list[Any]) -> bool:
    keys, others = _members(items)
    return all(_member(x, keys, others) for x in sub)


def _sets_intersects(items: list[Any], other: list[Any]) -> bool:
    keys, others = _members(items)
    return any(_member(x, keys, others) for x in other)


def _sets_equivalent(items: list[Any], other: list[Any]) -> bool:
    return _sets_contains(items, other) and _sets_contains(other, items)


# --- regex (library.Regex) -------------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 8 << 20


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as e:
        raise LibraryError(f"Illegal regex: {e}") from e


def _find(text: str, pattern: str) -> str:
    match = _regex(pattern).search(text)
    return match.group(0) if match else ""


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    found = []
    for match in _regex(pattern).finditer(text):
        found.append(match.group(0))
        if 0 < limit <= len(found):
            break
    return found


# --- quantities (library.Quantity, apimachinery's resource.ParseQuantity) ---------------------------

_QUANTITY_FORM = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eEinumkKMGTP]*[-+]?[0-9]*)")
_FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_NANO = Fraction(1, 10**9)
MAX_EXPONENT = 400


def parse_quantity(text: str) -> Fraction:
    """The value of a Kubernetes quantity, rounded up to nano units as the API server does;
    raises LibraryError with apimachinery's message when it is not one."""
    match = _QUANTITY_FORM.fullmatch(text)
    if not match:
        raise LibraryError(_FORMAT_WRONG)
    number, suffix = match.groups()
    try:
        value = Fraction(number)
    except (ValueError, ZeroDivisionError) as e:
        raise LibraryError("unable to parse numeric part of quantity") from e
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    elif re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        exponent = int(suffix[1:])
        if abs(exponent) > MAX_EXPONENT:
            raise LibraryError(
                f"quantity exponent {exponent} is beyond what acm-lite evaluates (±{MAX_EXPONENT})"
            )
        value *= Fraction(10) ** exponent
    else:
        raise LibraryError("unable to parse quantity's suffix")
    if value.denominator != 1 and (value / _NANO).denominator != 1:
        units = -((-value.numerator * 10**9) // value.denominator)  # ceil: the API server rounds up
        value = Fraction(units, 10**9)
    return value


def _quantity_of(value: Fraction) -> dict[str, str]:
    return {QUANTITY: str(value)}


def _q(value: Any, function: str) -> Fraction:
    return Fraction(_unwrap(value, QUANTITY, function))


def _quantity(text: str) -> dict[str, str]:
    return _quantity_of(parse_quantity(text))


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except LibraryError:
        return False
    return True


def _compare(a: Fraction, b: Fraction) -> int:
    return (a > b) - (a < b)


def _as_integer(value: Any) -> int:
    q = _q(value, "asInteger")
    if q.denominator != 1 or not -(2**63) <= q.numerator < 2**63:
        raise LibraryError("cannot convert value to integer")
    return q.numerator


def _is_integer(value: Any) -> bool:
    q = _q(value, "isInteger")
    return q.denominator == 1 and -(2**63) <= q.numerator < 2**63


def _approximate_float(value: Any) -> float:
    q = _q(value, "asApproximateFloat")
    try:
        return float(q)
    except OverflowError:
        return float("inf") if q > 0 else float("-inf")


def _add(value: Any, other: Any) -> dict[str, str]:
    other_value = (
        Fraction(other) if isinstance(other, int) and not isinstance(other, bool) else _q(other, "add")
    )
    return _quantity_of(_q(value, "add") + other_value)


def _sub(value: Any, other: Any) -> dict[str, str]:
    other_value = (
        Fraction(other) if isinstance(other, int) and not isinstance(other, bool) else _q(other, "sub")
    )
    return _quantity_of(_q(value, "sub") - other_value)


# --- semantic versions (library.SemverLib; blang/semver's rules) ----------------------------------

_NUMERIC = re.compile(r"[0-9]+")
_IDENTIFIER = re.compile(r"[0-9A-Za-z-]+")


def _semver_number(text: str, part: str) -> int:
    if not _NUMERIC.fullmatch(text):
        raise LibraryError(f"Invalid character(s) found in {part} number {_go_quote(text)}")
    if len(text) > 1 and text[0] == "0":
        raise LibraryError(f"{part.capitalize()} number must not contain leading zeroes {_go_quote(text)}")
    if len(text) > 20 or int(text) >= 2**64:
        raise LibraryError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def parse_semver(text: str, normalize: bool = False) -> tuple[int, int, int, tuple[str, ...]]:
    """Major, minor, patch and pre-release parts of a semantic version, as blang/semver parses
    it (with Kubernetes' normalisation when ``normalize``); raises LibraryError."""
    if normalize:
        text = _normalize_semver(text)
    if not text:
        raise LibraryError("Version string empty")
    parts = text.split(".", 2)
    if len(parts) != 3:
        raise LibraryError("No Major.Minor.Patch elements found")
    major = _semver_number(parts[0], "major")
    minor = _semver_number(parts[1], "minor")
    rest = parts[2]
    cut = min((i for i in (rest.find("+"), rest.find("-")) if i >= 0), default=len(rest))
    patch = _semver_number(rest[:cut], "patch")
    tail = rest[cut:]
    pre_text, plus, build = (
        tail.removeprefix("-").partition("+") if tail.startswith("-") else ("", "", tail[1:])
    )
    pre = tuple(pre_text.split(".")) if tail.startswith("-") else ()
    _check_prerelease(pre)
    if plus or tail.startswith("+"):
        _check_build(build)
    return major, minor, patch, pre


def _check_prerelease(pre: tuple[str, ...]) -> None:
    for item in pre:
        if not item:
            raise LibraryError("Prerelease is empty")
        if not _IDENTIFIER.fullmatch(item):
            raise LibraryError(f"Invalid character(s) found in prerelease {_go_quote(item)}")
        if _NUMERIC.fullmatch(item) and len(item) > 1 and item[0] == "0":
            raise LibraryError(f"Prerelease must not contain leading zeroes {_go_quote(item)}")


def _check_build(build: str) -> None:
    for item in build.split("."):
        if not item:
            raise LibraryError("Build meta data is empty")
        if not _IDENTIFIER.fullmatch(item):
            raise LibraryError(f"Invalid character(s) found in build meta data {_go_quote(item)}")


def _normalize_semver(text: str) -> str:
    parts = text.removeprefix("v").split(".", 2)
    for i, part in enumerate(parts):
        if len(part) > 1:
            trimmed = part.lstrip("0")
            parts[i] = trimmed if trimmed and trimmed[0].isdigit() else "0" + trimmed
    if len(parts) < 3:
        if "+" in parts[-1] or "-" in parts[-1]:
            raise LibraryError("short version cannot contain PreRelease/Build meta data")
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def _semver(text: str, normalize: bool = False) -> dict[str, str]:
    major, minor, patch, pre = parse_semver(text, normalize)
    return {SEMVER: f"{major}.{minor}.{patch}" + ("-" + ".".join(pre) if pre else "")}


def _is_semver(text: str, normalize: bool = False) -> bool:
    try:
        parse_semver(text, normalize)
    except LibraryError:
        return False
    return True


def _semver_parts(value: Any, function: str) -> tuple[int, int, int, tuple[str, ...]]:
    return parse_semver(_unwrap(value, SEMVER, function))


def _compare_semver(
    a: tuple[int, int, int, tuple[str, ...]], b: tuple[int, int, int, tuple[str, ...]]
) -> int:
    if a[:3] != b[:3]:
        return 1 if a[:3] > b[:3] else -1
    if not a[3] or not b[3]:
        return (not a[3]) - (not b[3])
    for x, y in zip(a[3], b[3], strict=False):
        if x == y:
            continue
        x_num, y_num = x.isdigit(), y.isdigit()
        if x_num and y_num:
            return 1 if int(x) > int(y) else -1
        if x_num != y_num:
            return -1 if x_num else 1
        return 1 if x > y else -1
    return (len(a[3]) > len(b[3])) - (len(a[3]) < len(b[3]))


def _ordered(function: str) -> Callable[[Any, Any], int]:
    """compareTo for two quantities or two semantic versions."""

    def compare(a: Any, b: Any) -> int:
        if isinstance(a, dict) and SEMVER in a:
            return _compare_semver(_semver_parts(a, function), _semver_parts(b, function))
        return _compare(_q(a, function), _q(b, function))

    return compare


# --- URLs (library.URLs, Go's url.ParseRequestURI) -------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def _url_parts(text: str) -> dict[str, str]:
    """scheme, host (with port), path and query of ``text`` as Go's ParseRequestURI reads it."""
    if not text:
        raise LibraryError('URL parse error during conversion from string: parse "": empty url')
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise LibraryError(
            f"URL parse error during conversion from string: parse {text!r}: "
            "net/url: invalid control character in URL"
        )
    scheme, rest = "", text
    colon = text.find(":")
    if colon == 0:
        raise LibraryError(
            f'URL parse error during conversion from string: parse "{text}": missing protocol scheme'
        )
    if colon > 0 and _SCHEME.fullmatch(text[:colon]):
        scheme, rest = text[:colon].lower(), text[colon + 1 :]
    rest, _, query = rest.partition("?")
    host = ""
    if not rest.startswith("/"):
        if not scheme:
            raise LibraryError(
                f'URL parse error during conversion from string: parse "{text}": invalid URI for request'
            )
        return {"scheme": scheme, "host": "", "path": "", "opaque": rest, "query": query}
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = authority.rpartition("@")[2]
        if not _host_ok(host):
            raise LibraryError(
                f'URL parse error during conversion from string: parse "{text}": invalid port or host'
            )
    return {"scheme": scheme, "host": host, "path": rest, "opaque": "", "query": query}


def _host_ok(host: str) -> bool:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        port = host[end + 1 :]
        return not port or port == ":" or (port.startswith(":") and port[1:].isdigit())
    _, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    return not colon or port == "" or port.isdigit()


_PATH_SAFE = "/$&+,:;=@-_.~"
_VALID_ESCAPED = re.compile(r"(?:[A-Za-z0-9/$&+,:;=@\-_.~!'()*]|%[0-9A-Fa-f]{2})*")


def _escaped_path(raw: str) -> str:
    """Go's URL.EscapedPath: the path as written when it is validly escaped, else escaped."""
    if _VALID_ESCAPED.fullmatch(raw):
        return raw
    return urllib.parse.quote(urllib.parse.unquote(raw), safe=_PATH_SAFE)


def _url(text: str) -> dict[str, str]:
    _url_parts(text)
    return {URL: text}


def _is_url(text: str) -> bool:
    try:
        _url_parts(text)
    except LibraryError:
        return False
    return True


def _url_get(part: str) -> Callable[[Any], Any]:
    def get(value: Any) -> Any:
        parts = _url_parts(_unwrap(value, URL, f"get{part.capitalize()}"))
        host = parts["host"]
        if part == "hostname":
            if host.startswith("["):
                return host[1 : host.find("]")]
            return host.rpartition(":")[0] if ":" in host else host
        if part == "port":
            if host.startswith("["):
                rest = host[host.find("]") + 1 :]
                return rest[1:] if rest.startswith(":") else ""
            return host.rpartition(":")[2] if ":" in host else ""
        if part == "query":
            result: dict[str, list[str]] = {}
            for key, val in urllib.parse.parse_qsl(parts["query"], keep_blank_values=True, separator="&"):
                result.setdefault(key, []).append(val)
            return result
        if part == "path":
            return _escaped_path(parts["path"])
        return parts[part]

    return get


# --- IPs and CIDRs (library.IP, library.CIDR; Go's netip) ---------------------------------------


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "%" in text:
        raise LibraryError(f"IP address {_go_quote(text)} with zone value is not allowed")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as e:
        raise LibraryError(
            f"IP Address {_go_quote(text)} parse error during conversion from string: "
            f"ParseAddr({_go_quote(text)}): {e}"
        ) from e
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise LibraryError(f"IPv4-mapped IPv6 address {_go_quote(text)} is not allowed")
    return addr


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ip(text: str) -> dict[str, str]:
    return {IP: str(_parse_ip(text))}


def _is_ip(text: str) -> bool:
    try:
        _parse_ip(text)
    except LibraryError:
        return False
    return True


def _ip_is_canonical(text: str) -> bool:
    return str(_parse_ip(text)) == text


def _addr(value: Any, function: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(_unwrap(value, IP, function))


def _family(value: Any) -> int:
    return _addr(value, "family").version


def _is_link_local_multicast(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if addr.version == 4:
        return addr in ipaddress.ip_network("224.0.0.0/24")
    packed = addr.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02


def _is_global_unicast(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Go's definition: not unspecified, loopback, multicast, link-local or the IPv4 broadcast
    address (private addresses are global unicast)."""
    if addr.version == 4 and str(addr) == "255.255.255.255":
        return False
    return not (addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_link_local)


_IP_TESTS: dict[str, Callable[[Any], bool]] = {
    "isUnspecified": lambda a: a.is_unspecified,
    "isLoopback": lambda a: a.is_loopback if a.version == 6 else a in ipaddress.ip_network("127.0.0.0/8"),
    "isLinkLocalMulticast": _is_link_local_multicast,
    "isLinkLocalUnicast": lambda a: a.is_link_local,
    "isGlobalUnicast": _is_global_unicast,
}


def _ip_test(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return bool(_IP_TESTS[name](_addr(value, name)))

    return check


def _parse_cidr(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    address, slash, bits = text.partition("/")
    wrong = (
        "network address parse error during conversion from string: "
        f"network address parse error during conversion from string: netip.ParsePrefix({_go_quote(text)})"
    )
    if not slash:
        raise LibraryError(f"{wrong}: no '/'")
    if "%" in address:
        raise LibraryError(f"{wrong}: IPv6 zones cannot be present in a prefix")
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0") or not bits.isascii():
        raise LibraryError(f"{wrong}: bad bits after slash: {_go_quote(bits)}")
    try:
        addr = ipaddress.ip_address(address)
    except ValueError as e:
        raise LibraryError(f"{wrong}: {e}") from e
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise LibraryError(f"IPv4-mapped IPv6 address {_go_quote(text)} is not allowed")
    if int(bits) > addr.max_prefixlen:
        raise LibraryError(f"{wrong}: prefix length out of range")
    return addr, int(bits)


def _cidr(text: str) -> dict[str, str]:
    addr, bits = _parse_cidr(text)
    return {CIDR: f"{addr}/{bits}"}


def _is_cidr(text: str) -> bool:
    try:
        _parse_cidr(text)
    except LibraryError:
        return False
    return True


def _network(value: Any, function: str) -> tuple[Any, Any]:
    addr, bits = _parse_cidr(_unwrap(value, CIDR, function))
    return addr, ipaddress.ip_network(f"{addr}/{bits}", strict=False)


def _contains_ip(value: Any, other: Any) -> bool:
    _, network = _network(value, "containsIP")
    addr = _parse_ip(other) if isinstance(other, str) else _addr(other, "containsIP")
    return addr.version == network.version and addr in network


def _contains_cidr(value: Any, other: Any) -> bool:
    _, network = _network(value, "containsCIDR")
    if isinstance(other, str):
        addr, bits = _parse_cidr(other)
        inner = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    else:
        _, inner = _network(other, "containsCIDR")
    return inner.version == network.version and inner.subnet_of(network)


def _cidr_ip(value: Any) -> dict[str, str]:
    addr, _ = _network(value, "ip")
    return {IP: str(addr)}


def _masked(value: Any) -> dict[str, str]:
    _, network = _network(value, "masked")
    return {CIDR: str(network)}


def _prefix_length(value: Any) -> int:
    _, network = _network(value, "prefixLength")
    return int(network.prefixlen)


def _string(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        if IP in value:
            return str(value[IP])
        if CIDR in value:
            return str(value[CIDR])
    raise _overload_error("string", value)


# --- formats (library.Format; apimachinery's validation messages) -------------------------------

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _dns1123_label(text: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(text) > 63 else []
    if not _DNS1123_LABEL.fullmatch(text):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character",
                _DNS1123_LABEL.pattern,
                "my-name",
                "123-abc",
            )
        )
    return errs


def _dns1123_subdomain(text: str) -> list[str]:
    errs = ["must be no more than 253 characters"] if len(text) > 253 else []
    if not _DNS1123_SUBDOMAIN.fullmatch(text):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                "or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN.pattern,
                "example.com",
            )
        )
    return errs


def _dns1035_label(text: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(text) > 63 else []
    if not _DNS1035_LABEL.fullmatch(text):
        errs.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
                "an alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL.pattern,
                "my-name",
                "abc-123",
            )
        )
    return errs


def _qualified_name(text: str) -> list[str]:
    parts = text.split("/")
    errs: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + e for e in _dns1123_subdomain(prefix)]
    else:
        return [
            _regex_error(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character",
                _QUALIFIED.pattern,
                "MyName",
                "my.name",
                "123-abc",
            )
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED.fullmatch(name):
        errs.append(
            "name part "
            + _regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character",
                _QUALIFIED.pattern,
                "MyName",
                "my.name",
                "123-abc",
            )
        )
    return errs


def _label_value(text: str) -> list[str]:
    errs = ["must be no more than 63 characters"] if len(text) > 63 else []
    if not _LABEL_VALUE.fullmatch(text):
        errs.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                "'.', and must start and end with an alphanumeric character",
                _LABEL_VALUE.pattern,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """apimachinery's prefix forms: a trailing '-' is allowed (generateName)."""
    return lambda text: check(text[:-1] + "a" if text.endswith("-") else text)


def _uri(text: str) -> list[str]:
    try:
        parts = _url_parts(text)
    except LibraryError as e:
        return [str(e).removeprefix("URL parse error during conversion from string: ")]
    return [] if parts["scheme"] or parts["path"] else [f'parse "{text}": invalid URI for request']


def _byte(text: str) -> list[str]:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return ["invalid base64"]
    return []


def _date(text: str) -> list[str]:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            datetime.date.fromisoformat(text)
            return []
        except ValueError:
            pass
    return ["invalid date"]


def _datetime(text: str) -> list[str]:
    form = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
    if not re.fullmatch(form, text):
        return ["invalid datetime"]
    try:
        datetime.datetime.fromisoformat(text.upper().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return ["invalid datetime"]
    return []


FORMATS: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": _dns1123_label,
    "dns1123Subdomain": _dns1123_subdomain,
    "dns1035Label": _dns1035_label,
    "qualifiedName": _qualified_name,
    "dns1123LabelPrefix": _prefix(_dns1123_label),
    "dns1123SubdomainPrefix": _prefix(_dns1123_subdomain),
    "dns1035LabelPrefix": _prefix(_dns1035_label),
    "labelValue": _label_value,
    "uri": _uri,
    "uuid": lambda text: [] if _UUID.fullmatch(text) else ["does not match the UUID format"],
    "byte": _byte,
    "date": _date,
    "datetime": _datetime,
}


def _optional(value: Any | None) -> dict[str, Any]:
    return {OPTIONAL: [] if value is None else [value]}


def _format_named(name: str) -> dict[str, Any]:
    return _optional({FORMAT: name} if name in FORMATS else None)


def _format_validate(value: Any, text: str) -> dict[str, Any]:
    errs = FORMATS[_unwrap(value, FORMAT, "validate")](text)
    return _optional(errs or None)


def _has_value(value: Any) -> bool:
    return bool(_unwrap(value, OPTIONAL, "hasValue"))


def _value(value: Any) -> Any:
    held = _unwrap(value, OPTIONAL, "value")
    if not held:
        raise LibraryError("optional.none() dereference")
    return held[0]


def _or_value(value: Any, other: Any) -> Any:
    held = _unwrap(value, OPTIONAL, "orValue")
    return held[0] if held else other


# --- declarations ----------------------------------------------------------------------------------


def _fn(name: str, *overloads: tuple[str, list[Any], Any, bool, Callable[..., Any]]) -> Any:
    return cel.FunctionDecl(
        name,
        [
            cel.Overload(oid, return_type=result, parameters=params, is_member=member, impl=impl)
            for oid, params, result, member, impl in overloads
        ],
    )


def declarations() -> list[Any]:
    """Every function of the libraries, for one ``CelExtension``."""
    decls = [
        # lists
        _fn("isSorted", ("k8s_list_is_sorted", [_L], _B, True, _is_sorted)),
        _fn("sum", ("k8s_list_sum", [_L], _D, True, _sum)),
        _fn("min", ("k8s_list_min", [_L], _D, True, _extreme("min"))),
        _fn("max", ("k8s_list_max", [_L], _D, True, _extreme("max"))),
        _fn("indexOf", ("k8s_list_index_of", [_L, _D], _I, True, _index_of)),
        _fn("lastIndexOf", ("k8s_list_last_index_of", [_L, _D], _I, True, _last_index_of)),
        _fn("slice", ("k8s_list_slice", [_L, _I, _I], _L, True, _slice)),
        _fn(
            "flatten",
            ("k8s_list_flatten", [_L], _L, True, _flatten),
            ("k8s_list_flatten_int", [_L, _I], _L, True, _flatten),
        ),
        _fn("distinct", ("k8s_list_distinct", [_L], _L, True, _distinct)),
        _fn("reverse", ("k8s_list_reverse", [_L], _L, True, lambda items: items[::-1])),
        _fn("sort", ("k8s_list_sort", [_L], _L, True, _sort)),
        _fn("lists.range", ("k8s_lists_range", [_I], cel.Type.List(_I), False, _range)),
        _fn("sets.contains", ("k8s_sets_contains", [_L, _L], _B, False, _sets_contains)),
        _fn("sets.equivalent", ("k8s_sets_equivalent", [_L, _L], _B, False, _sets_equivalent)),
        _fn("sets.intersects", ("k8s_sets_intersects", [_L, _L], _B, False, _sets_intersects)),
        # regex
        _fn("find", ("k8s_string_find", [_S, _S], _S, True, _find)),
        _fn(
            "findAll",
            ("k8s_string_find_all", [_S, _S], cel.Type.List(_S), True, _find_all),
            ("k8s_string_find_all_int", [_S, _S, _I], cel.Type.List(_S), True, _find_all),
        ),
        # quantity
        _fn("quantity", ("k8s_string_to_quantity", [_S], _M, False, _quantity)),
        _fn("isQuantity", ("k8s_is_quantity_string", [_S], _B, False, _is_quantity)),
        _fn("sign", ("k8s_quantity_sign", [_D], _I, True, lambda q: _compare(_q(q, "sign"), Fraction(0)))),
        _fn(
            "isGreaterThan",
            ("k8s_is_greater_than", [_D, _D], _B, True, lambda a, b: _ordered("isGreaterThan")(a, b) > 0),
        ),
        _fn(
            "isLessThan",
            ("k8s_is_less_than", [_D, _D], _B, True, lambda a, b: _ordered("isLessThan")(a, b) < 0),
        ),
        _fn("compareTo", ("k8s_compare_to", [_D, _D], _I, True, _ordered("compareTo"))),
        # semver
        _fn(
            "semver",
            ("k8s_string_to_semver", [_S], _M, False, _semver),
            ("k8s_string_to_semver_normalize", [_S, _B], _M, False, _semver),
        ),
        _fn(
            "isSemver",
            ("k8s_is_semver_string", [_S], _B, False, _is_semver),
            ("k8s_is_semver_string_normalize", [_S, _B], _B, False, _is_semver),
        ),
        _fn("major", ("k8s_semver_major", [_D], _I, True, lambda v: _semver_parts(v, "major")[0])),
        _fn("minor", ("k8s_semver_minor", [_D], _I, True, lambda v: _semver_parts(v, "minor")[1])),
        _fn("patch", ("k8s_semver_patch", [_D], _I, True, lambda v: _semver_parts(v, "patch")[2])),
        _fn("asApproximateFloat", ("k8s_quantity_get_float", [_D], _F, True, _approximate_float)),
        _fn("asInteger", ("k8s_quantity_get_int", [_D], _I, True, _as_integer)),
        _fn("isInteger", ("k8s_quantity_is_integer", [_D], _B, True, _is_integer)),
        _fn("add", ("k8s_quantity_add", [_D, _D], _M, True, _add)),
        _fn("sub", ("k8s_quantity_sub", [_D, _D], _M, True, _sub)),
        # url
        _fn("url", ("k8s_string_to_url", [_S], _M, False, _url)),
        _fn("isURL", ("k8s_is_url_string", [_S], _B, False, _is_url)),
        _fn("getScheme", ("k8s_url_get_scheme", [_D], _S, True, _url_get("scheme"))),
        _fn("getHost", ("k8s_url_get_host", [_D], _S, True, _url_get("host"))),
        _fn("getHostname", ("k8s_url_get_hostname", [_D], _S, True, _url_get("hostname"))),
        _fn("getPort", ("k8s_url_get_port", [_D], _S, True, _url_get("port"))),
        _fn("getEscapedPath", ("k8s_url_get_escaped_path", [_D], _S, True, _url_get("path"))),
        _fn(
            "getQuery",
            ("k8s_url_get_query", [_D], cel.Type.Map(_S, cel.Type.List(_S)), True, _url_get("query")),
        ),
        # ip and cidr
        _fn("ip", ("k8s_string_to_ip", [_S], _M, False, _ip), ("k8s_cidr_ip", [_D], _M, True, _cidr_ip)),
        _fn("isIP", ("k8s_is_ip", [_S], _B, False, _is_ip)),
        _fn("ip.isCanonical", ("k8s_ip_is_canonical", [_S], _B, False, _ip_is_canonical)),
        _fn("family", ("k8s_ip_family", [_D], _I, True, _family)),
        *(_fn(name, (f"k8s_ip_{name}", [_D], _B, True, _ip_test(name))) for name in _IP_TESTS),
        _fn("string", ("k8s_net_to_string", [_M], _S, False, _string)),
        _fn("cidr", ("k8s_string_to_cidr", [_S], _M, False, _cidr)),
        _fn("isCIDR", ("k8s_is_cidr", [_S], _B, False, _is_cidr)),
        _fn("containsIP", ("k8s_cidr_contains_ip", [_D, _D], _B, True, _contains_ip)),
        _fn("containsCIDR", ("k8s_cidr_contains_cidr", [_D, _D], _B, True, _contains_cidr)),
        _fn("masked", ("k8s_cidr_masked", [_D], _M, True, _masked)),
        _fn("prefixLength", ("k8s_cidr_prefix_length", [_D], _I, True, _prefix_length)),
        # format, and the optional values it returns
        _fn("format.named", ("k8s_format_named", [_S], _M, False, _format_named)),
        _fn("validate", ("k8s_format_validate", [_D, _S], _M, True, _format_validate)),
        _fn("hasValue", ("k8s_optional_has_value", [_M], _B, True, _has_value)),
        _fn("value", ("k8s_optional_value", [_M], _D, True, _value)),
        _fn("orValue", ("k8s_optional_or_value", [_M, _D], _D, True, _or_value)),
    ]
    for name in FORMATS:
        decls.append(_fn(f"format.{name}", (f"k8s_format_{name}", [], _M, False, lambda n=name: {FORMAT: n})))
    return decls


# Kubernetes CEL that this engine does not evaluate: a template using one falls back to its Rego
# (or fails closed). Matched against the source as ``name(`` (or the macro's shape).
UNSUPPORTED = {
    "two-variable comprehensions": re.compile(
        r"\.\s*(all|exists|existsOne|exists_one)\s*\(\s*[A-Za-z_]\w*\s*,\s*[A-Za-z_]\w*\s*,"
    ),
    "transformList": re.compile(r"\btransformList\s*\("),
    "transformMap": re.compile(r"\btransformMap\s*\("),
    "transformMapEntry": re.compile(r"\btransformMapEntry\s*\("),
    "sortBy": re.compile(r"\bsortBy\s*\("),
    "first": re.compile(r"\.\s*first\s*\(\s*\)"),
    "last": re.compile(r"\.\s*last\s*\(\s*\)"),
    "jsonpatch.escapeKey": re.compile(r"\bjsonpatch\s*\.\s*escapeKey\s*\("),
}


def unsupported_construct(source: str) -> str | None:
    """The Kubernetes CEL construct in ``source`` this engine does not evaluate, if any."""
    for name, pattern in UNSUPPORTED.items():
        if pattern.search(source):
            return name
    return None
