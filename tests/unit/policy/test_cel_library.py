"""Kubernetes' CEL libraries in the CEL engine, checked against the values Kubernetes' own tests
and documentation give (k8s.io/apiserver/pkg/cel/library)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from acm_lite.policy.cel import CelError, evaluate


class Err:
    def __init__(self, pattern: str):
        self.pattern = pattern


CASES: list[tuple[str, Any]] = [
    # quantity_test.go
    ('quantity("12Mi") == quantity("12582912")', True),
    ('quantity("10Mo")', Err(r"^quantities must match the regular expression")),
    ('quantity("10Mm")', Err(r"^unable to parse quantity's suffix$")),
    ('isQuantity("20")', True),
    ('isQuantity("20M")', True),
    ('isQuantity("20Mi")', True),
    ('isQuantity("20Mo")', False),
    ('isQuantity("10Mm")', False),
    ('quantity("200M") == quantity("200M")', True),
    ('quantity("200M") == quantity("0.2G") && quantity("0.2G") == quantity("200M")', True),
    (
        'quantity("2M") == quantity("0.002G") && quantity("2000k") == quantity("2M") && '
        'quantity("0.002G") == quantity("2000k")',
        True,
    ),
    ('quantity("200M") == quantity("0.3G")', False),
    ('quantity("50M").isLessThan(quantity("50Mi"))', True),
    ('quantity("50M").isLessThan(quantity("100M"))', True),
    ('quantity("100M").isLessThan(quantity("50M"))', False),
    ('quantity("50Mi").isGreaterThan(quantity("50M"))', True),
    ('quantity("150Mi").isGreaterThan(quantity("100Mi"))', True),
    ('quantity("50M").isGreaterThan(quantity("100M"))', False),
    ('quantity("200M").compareTo(quantity("0.2G"))', 0),
    ('quantity("50M").compareTo(quantity("50Mi"))', -1),
    ('quantity("50Mi").compareTo(quantity("50M"))', 1),
    ('quantity("50k").add(quantity("20")) == quantity("50.02k")', True),
    ('quantity("50k").add(20).isLessThan(quantity("50020"))', False),
    ('quantity("50k").sub(quantity("20")) == quantity("49.98k")', True),
    ('quantity("50k").sub(20) == quantity("49980")', True),
    ('quantity("50k").add(20).sub(quantity("100k")).asInteger()', -49980),
    ('quantity("50k").add(20).sub(quantity("100k")).sub(-50000).asInteger()', 20),
    ('quantity("50k").asInteger()', 50000),
    (
        'quantity("9999999999999999999999999999999999999G").asInteger()',
        Err("^cannot convert value to integer$"),
    ),
    ('quantity("9999999999999999999999999999999999999G").isInteger()', False),
    ('quantity("50").isInteger()', True),
    ('quantity("50.703k").asApproximateFloat()', 50703.0),
    (
        '[quantity("9999999999999999999999999999999999999")].all(x, '
        'x.add(quantity("1")).compareTo(x.add(quantity("2"))) == -1)',
        True,
    ),
    ('quantity("-1").sign()', -1),
    ('quantity("1e1000")', Err("beyond what acm-lite evaluates")),
    # ip_test.go
    ('string(ip("192.168.0.1"))', "192.168.0.1"),
    (
        'ip("192.168.0.1.0")',
        Err(r'^IP Address "192\.168\.0\.1\.0" parse error during conversion from string: ParseAddr'),
    ),
    ('isIP("192.168.0.1")', True),
    ('isIP("192.168.0.1.0")', False),
    ('ip.isCanonical("127.0.0.1")', True),
    ('ip.isCanonical("127.0.0.1.0")', Err("parse error during conversion from string")),
    ('ip("192.168.0.1").family()', 4),
    ('ip("0.0.0.0").isUnspecified()', True),
    ('ip("127.0.0.1").isUnspecified()', False),
    ('ip("127.0.0.1").isLoopback()', True),
    ('ip("1.2.3.4").isLoopback()', False),
    ('ip("224.0.0.1").isLinkLocalMulticast()', True),
    ('ip("224.0.1.1").isLinkLocalMulticast()', False),
    ('ip("169.254.169.254").isLinkLocalUnicast()', True),
    ('ip("192.168.0.1").isLinkLocalUnicast()', False),
    ('ip("192.168.0.1").isGlobalUnicast()', True),
    ('ip("255.255.255.255").isGlobalUnicast()', False),
    ('string(ip("2001:db8::68"))', "2001:db8::68"),
    ('isIP("2001:db8::68")', True),
    ('isIP("2001:db8:::68")', False),
    ('ip.isCanonical("2001:db8::68")', True),
    ('ip.isCanonical("2001:DB8::68")', False),
    ('ip("2001:db8::68").family()', 6),
    ('ip("::").isUnspecified()', True),
    ('ip("::1").isUnspecified()', False),
    ('ip("::1").isLoopback()', True),
    ('ip("2001:db8::abcd").isLoopback()', False),
    ('ip("ff02::1").isLinkLocalMulticast()', True),
    ('ip("fd00::1").isLinkLocalMulticast()', False),
    ('ip("fe80::1").isLinkLocalUnicast()', True),
    ('ip("fd80::1").isLinkLocalUnicast()', False),
    ('ip("2001:db8::abcd").isGlobalUnicast()', True),
    ('ip("ff00::1").isGlobalUnicast()', False),
    ('ip("fe80::1%eth0")', Err(r'^IP address "fe80::1%eth0" with zone value is not allowed$')),
    ('ip("::ffff:1.2.3.4")', Err(r'^IPv4-mapped IPv6 address "::ffff:1\.2\.3\.4" is not allowed$')),
    # cidr_test.go
    ('string(cidr("192.168.0.0/24"))', "192.168.0.0/24"),
    (
        'cidr("192.168.0.0/")',
        Err(
            r"^network address parse error during conversion from string: network address parse error "
            r"during conversion from string: "
            r'netip\.ParsePrefix\("192\.168\.0\.0/"\): bad bits after slash: ""$'
        ),
    ),
    ('cidr("192.168.0.0/24").containsIP(ip("192.168.0.1"))', True),
    ('cidr("192.168.0.0/24").containsIP(ip("192.168.1.1"))', False),
    ('cidr("192.168.0.0/24").containsIP("192.168.0.1")', True),
    ('cidr("192.168.0.0/24").containsIP("192.168.1.1")', False),
    ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/25"))', True),
    ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.1/32"))', True),
    ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/23"))', False),
    ('cidr("192.168.0.0/24").containsCIDR(cidr("192.169.0.1/32"))', False),
    ('cidr("192.168.0.0/24").containsCIDR("192.168.0.0/25")', True),
    ('cidr("192.168.0.0/24").containsCIDR("192.168.0.0/23")', False),
    ('cidr("192.168.0.0/24").ip() == ip("192.168.0.0")', True),
    ('string(cidr("192.168.0.1/24").masked())', "192.168.0.0/24"),
    ('cidr("192.168.0.1/24").ip() == ip("192.168.0.1")', True),
    ('cidr("192.168.0.0/24").prefixLength()', 24),
    ('cidr("2001:db8::/32").containsIP(ip("2001:db8::1"))', True),
    ('cidr("2001:db8::/32").containsIP(ip("2001:dc8::1"))', False),
    ('cidr("2001:db8::/32").containsIP("2001:db8::1")', True),
    ('cidr("2001:db8::/32").containsCIDR(cidr("2001:db8::/33"))', True),
    ('cidr("2001:db8::/32").containsCIDR(cidr("2001:db8::/31"))', False),
    ('cidr("2001:db8::/32").containsCIDR("2001:db8::/33")', True),
    ('string(cidr("2001:db8:1::/32").masked())', "2001:db8::/32"),
    ('cidr("2001:db8::/32").prefixLength()', 32),
    # format_test.go
    ('format.dns1123Label().validate("my-label-name").hasValue()', False),
    ('format.dns1123Subdomain().validate("apiextensions.k8s.io").hasValue()', False),
    ('format.qualifiedName().validate("apiextensions.k8s.io/v1beta1").hasValue()', False),
    ('format.dns1123LabelPrefix().validate("my-label-prefix-").hasValue()', False),
    ('format.dns1123SubdomainPrefix().validate("mysubdomain.prefix.-").hasValue()', False),
    ('format.dns1035LabelPrefix().validate("my-label-prefix-").hasValue()', False),
    ('format.uri().validate("http://example.com").hasValue()', False),
    ('format.uuid().validate("123e4567-e89b-12d3-a456-426614174000").hasValue()', False),
    ('format.byte().validate("aGVsbG8=").hasValue()', False),
    ('format.date().validate("2021-01-01").hasValue()', False),
    ('format.datetime().validate("2021-01-01T00:00:00Z").hasValue()', False),
    (
        'format.dns1123Label().validate("contains a space").value()',
        [
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ],
    ),
    (
        'format.dns1123Subdomain().validate("contains a space").value()',
        [
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ],
    ),
    (
        'format.dns1035Label().validate("contains a space").value()',
        [
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ],
    ),
    (
        'format.qualifiedName().validate("contains a space").value()',
        [
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ],
    ),
    ('format.dns1123LabelPrefix().validate("contains a space-").value().size()', 1),
    ('format.byte().validate("aGVsbG8").value()', ["invalid base64"]),
    ('format.date().validate("2020-01-32").value()', ["invalid date"]),
    ('format.datetime().validate("2020-01-32T00:00:00Z").value()', ["invalid datetime"]),
    ('format.named("unknown").hasValue()', False),
    ('format.named("dns1123Label").hasValue()', True),
    ('format.named("dns1123Label").value() == format.dns1123Label()', True),
    ('format.named("uri").value() == format.dns1123Label()', False),
    (
        'format.labelValue().validate("my-cool-label-Value!!\\n\\n!!!").value()',
        [
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
            "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ],
    ),
    ('format.labelValue().validate("my-cool-label-Value").hasValue()', False),
    # semver_test.go
    ('semver("1.2.3") == semver("1.2.3")', True),
    ('semver("v1.0")', Err("^No Major.Minor.Patch elements found$")),
    ('isSemver("1.2.3-beta.1+build.1")', True),
    ('isSemver("")', False),
    ('isSemver("v1.0.0")', False),
    ('isSemver(" 1.0.0")', False),
    ('isSemver("1. 0.0")', False),
    ('isSemver("1.0.0 ")', False),
    ('isSemver("01.01.01")', False),
    ('isSemver("1")', False),
    ('isSemver("1.1")', False),
    ('isSemver("", true)', False),
    ('isSemver(" 1.0.0", true)', False),
    ('isSemver("1. 0.0", true)', False),
    ('isSemver("1.0.0 ", true)', False),
    ('isSemver("v1.0.0", true)', True),
    ('isSemver("01.01.01", true)', True),
    ('isSemver("1", true)', True),
    ('isSemver("1.1", true)', True),
    ('semver("v01.01", true) == semver("1.1.0")', True),
    ('semver("1.2.3") == semver("1.0.0")', False),
    ('semver("1.0.0").isLessThan(semver("1.2.3"))', True),
    ('semver("1.0.0").isLessThan(semver("1.0.0"))', False),
    ('semver("1.2.3").isGreaterThan(semver("1.0.0"))', True),
    ('semver("1.0.0").isGreaterThan(semver("1.0.0"))', False),
    ('semver("1.2.3").compareTo(semver("1.2.3"))', 0),
    ('semver("1.0.0").compareTo(semver("1.2.3"))', -1),
    ('semver("1.2.3").compareTo(semver("1.0.0"))', 1),
    ('semver("1.2.3").major()', 1),
    ('semver("1.2.3").minor()', 2),
    ('semver("1.2.3").patch()', 3),
    # semver.org's precedence example, and build metadata that does not count
    (
        "['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', "
        "'1.0.0-beta.11', '1.0.0-rc.1', '1.0.0'].map(v, semver(v))"
        ".all(v, v == semver('1.0.0') || v.isLessThan(semver('1.0.0')))",
        True,
    ),
    ("semver('1.0.0-beta.2').isLessThan(semver('1.0.0-beta.11'))", True),
    ("semver('1.0.0-alpha.beta').isLessThan(semver('1.0.0-beta'))", True),
    ("semver('1.0.0-alpha.1').isLessThan(semver('1.0.0-alpha.beta'))", True),
    ("semver('1.0.0+build.1') == semver('1.0.0+build.2')", True),
    ("semver('1.0.0-01')", Err("^Prerelease must not contain leading zeroes")),
    ("semver('1.0.0').isLessThan(quantity('1'))", Err("^no such overload")),
    # lists.go (library documentation)
    ("[1, 2, 3].isSorted()", True),
    ("['a', 'b', 'b', 'c'].isSorted()", True),
    ("[2.0, 1.0].isSorted()", False),
    ("[1, 3].sum()", 4),
    ("[1.0, 3.0].sum()", 4.0),
    ("[].sum()", 0),
    ("[1, 3].min()", 1),
    ("[].min()", Err("^min called on empty list$")),
    ("[1, 3].max()", 3),
    ("[].max()", Err("^max called on empty list$")),
    ("[1, 2, 2, 3].indexOf(2)", 1),
    ("['a', 'b', 'b', 'c'].indexOf('a')", 0),
    ("[1.0].indexOf(1.1)", -1),
    ("[].indexOf('string')", -1),
    ("[1, 2, 2, 3].lastIndexOf(2)", 2),
    ("['a', 'b', 'b', 'c'].lastIndexOf('b')", 2),
    ("[1.0].lastIndexOf(1.1)", -1),
    # ext.Lists and ext.Sets
    ("[1, 2, 3, 4].slice(1, 3)", [2, 3]),
    ("[1, [2, [3]]].flatten()", [1, 2, [3]]),
    ("[1, [2, [3]]].flatten(2)", [1, 2, 3]),
    ("[1, 2, 2, 1].distinct()", [1, 2]),
    ("[1, 2, 3].reverse()", [3, 2, 1]),
    ("[3, 1, 2].sort()", [1, 2, 3]),
    ("lists.range(3)", [0, 1, 2]),
    ("sets.contains([1, 2, 3], [2, 3])", True),
    ("sets.contains([1, 2], [3])", False),
    ("sets.equivalent([1, 2, 2], [2, 1])", True),
    ("sets.intersects([1, 2], [2, 5])", True),
    ("sets.intersects([1], [5])", False),
    ("sets.contains([1, true, 'a', [2]], [1.0, 'a', [2]])", True),
    ("sets.contains([1], [true])", False),
    ("[1, 1.0, true, [1], [1]].distinct()", [1, True, [1]]),
    ("lists.range(2000000)", Err("larger than acm-lite evaluates")),
    ("size(lists.range(100000).distinct())", 100000),
    # regex.go
    ("'abc 123'.find('[0-9]+')", "123"),
    ("'abc 123'.find('xyz')", ""),
    ("'123 abc 456'.findAll('[0-9]+')", ["123", "456"]),
    ("'123 abc 456'.findAll('[0-9]+', 1)", ["123"]),
    ("'123 abc 456'.findAll('xyz')", []),
    ("'abc'.find('(')", Err("^Illegal regex: ")),
    # urls.go
    ("url('https://example.com:80/').getHost()", "example.com:80"),
    ("url('https://example.com/').getHost()", "example.com"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"),
    ("url('https://[::1]/').getHost()", "[::1]"),
    ("url('/path').getHost()", ""),
    ("url('https://example.com:80/').getHostname()", "example.com"),
    ("url('https://127.0.0.1:80/').getHostname()", "127.0.0.1"),
    ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('/path').getHostname()", ""),
    ("url('https://example.com:80/').getPort()", "80"),
    ("url('https://example.com/').getPort()", ""),
    ("url('/path').getPort()", ""),
    ("url('https://example.com/path').getEscapedPath()", "/path"),
    ("url('https://example.com/path with spaces/').getEscapedPath()", "/path%20with%20spaces/"),
    ("url('https://example.com').getEscapedPath()", ""),
    ("url('https://example.com/path?k1=a&k2=b&k2=c').getQuery()", {"k1": ["a"], "k2": ["b", "c"]}),
    (
        "url('https://example.com/path?key with spaces=value with spaces').getQuery()",
        {"key with spaces": ["value with spaces"]},
    ),
    ("url('https://example.com/path?').getQuery()", {}),
    ("url('https://example.com/path').getQuery()", {}),
    ("url('https://example.com:80/').getScheme()", "https"),
    ("url('/path').getScheme()", ""),
    ("isURL('https://user:pass@example.com:80/path?query=val#fragment')", True),
    ("isURL('/absolute-path')", True),
    ("isURL('https://a:b:c/')", False),
    ("isURL('../relative-path')", False),
    ("url('example.com')", Err("invalid URI for request")),
    # library functions check what they are given
    ("quantity('1').getHost()", Err("^no such overload")),
    ("'x'.isGreaterThan('y')", Err("^no such overload")),
]


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_kubernetes_library(expression: str, expected: Any) -> None:
    if isinstance(expected, Err):
        with pytest.raises(CelError) as raised:
            evaluate(expression)
        assert re.search(expected.pattern, str(raised.value)), str(raised.value)
    else:
        value = evaluate(expression)
        assert value == expected
        assert type(value) is type(expected)


def test_library_functions_see_object_fields() -> None:
    data = {"object": {"spec": {"cpu": "250m", "cidr": "10.0.0.0/8", "host": "10.1.2.3"}}}
    assert evaluate("quantity(object.spec.cpu).isLessThan(quantity('1'))", data) is True
    assert evaluate("cidr(object.spec.cidr).containsIP(object.spec.host)", data) is True
