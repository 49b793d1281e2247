"""The static checks run when a Rego template compiles: recursion (as OPA's compiler refuses it)
and oversized literal builtin arguments; what is legal must still compile."""

from __future__ import annotations

import pytest

from acm_lite.policy.rego import RegoError, RegoProgram

RECURSIVE = {
    "mutual functions": (
        'package t\nf(x) = y { y := g(x) }\ng(x) = y { y := f(x) }\nviolation[{"msg": m}] { m := f(1) }\n',
        [],
    ),
    "self function": ('package t\nf(x) = y { y := f(x) }\nviolation[{"msg": m}] { m := f(1) }\n', []),
    "self rule": ('package t\na = x { x := a }\nviolation[{"msg": m}] { m := a }\n', []),
    "rule cycle through data": (
        'package t\na = x { x := data.t.b }\nb = x { x := data.t.a }\nviolation[{"msg": m}] { m := a }\n',
        [],
    ),
    "whole package": ('package t\na = n { n := count(data.t) }\nviolation[{"msg": m}] { m := a }\n', []),
    "through an import alias": (
        "package t\nimport data.lib.x as helpers\n"
        "f(v) = y { y := helpers.h(v) }\n"
        'violation[{"msg": m}] { m := f(1) }\n',
        ["package lib.x\nimport data.t\nh(v) = y { y := t.f(v) }\n"],
    ),
    "between libs": (
        'package t\nviolation[{"msg": m}] { m := data.lib.a.f(1) }\n',
        [
            "package lib.a\nf(v) = y { y := data.lib.b.g(v) }\n",
            "package lib.b\ng(v) = y { y := data.lib.a.f(v) }\n",
        ],
    ),
    "in an else": (
        'package t\nf(x) = 1 { x > 1 } else = y { y := f(x) }\nviolation[{"msg": m}] { m := f(1) }\n',
        [],
    ),
    "in a comprehension": (
        'package t\ns[x] { x := count([1 | s[_]]) }\nviolation[{"msg": m}] { s[m] }\n',
        [],
    ),
    "in a head value": ('package t\na = b\nb = a\nviolation[{"msg": m}] { m := a }\n', []),
}

LEGAL = {
    "a local shadows a rule name": ('package t\nf = 1\nviolation[{"msg": m}] { f := 3; m := f }\n', []),
    "an argument shadows a rule name": (
        'package t\nx = 1\ng(x) = y { y := x + 1 }\nviolation[{"msg": m}] { m := g(2) }\n',
        [],
    ),
    "a chain of helpers": (
        "package t\nimport data.lib.x\nf(v) = y { y := x.h(v) }\n"
        'violation[{"msg": m}] { m := f(input.review.object) }\n',
        ["package lib.x\nh(v) = y { y := v.kind }\n"],
    ),
    "the inventory": ('package t\nviolation[{"msg": m}] { data.inventory.cluster[_]; m := "x" }\n', []),
    "a small range": (
        'package t\nviolation[{"msg": m}] { count(numbers.range(1, 100)) > 1; m := "x" }\n',
        [],
    ),
    "some and every": (
        'package t\nimport future.keywords\nviolation[{"msg": m}] {\n'
        "  some c in input.review.object.spec.containers\n"
        "  every p in c.ports { p.containerPort > 0 }\n  m := c.name\n}\n",
        [],
    ),
}


@pytest.mark.parametrize(("rego", "libs"), RECURSIVE.values(), ids=RECURSIVE.keys())
def test_recursion_is_refused(rego: str, libs: list[str]) -> None:
    with pytest.raises(RegoError, match="rego_recursion_error"):
        RegoProgram("t", rego, libs)


@pytest.mark.parametrize(("rego", "libs"), LEGAL.values(), ids=LEGAL.keys())
def test_legal_policies_compile(rego: str, libs: list[str]) -> None:
    RegoProgram("t", rego, libs)


@pytest.mark.parametrize(
    "call", ["numbers.range(1, 1e9)", "numbers.range(-5e8, 5e8)", "numbers.range_step(0, 1e12, 2)"]
)
def test_oversized_literal_ranges_are_refused(call: str) -> None:
    with pytest.raises(RegoError, match="would build"):
        RegoProgram("t", f'package t\nviolation[{{"msg": m}}] {{ r := {call}; m := "x" }}\n', [])


def test_backtraces_stay_out_of_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    with pytest.raises(RegoError) as caught:
        RegoProgram("t", "package t\nviolation[ {\n", [])
    assert "Stack backtrace" not in str(caught.value)


def _chain(rules: int, closed: bool) -> str:
    last = "r0" if closed else "1"
    return (
        "package t\n"
        + "".join(f"r{i} = x {{ x := r{i + 1} }}\n" for i in range(rules))
        + f'r{rules} = x {{ x := {last} }}\nviolation[{{"msg": m}}] {{ m := r0 }}\n'
    )


def test_a_long_chain_of_rules_is_legal_and_a_long_cycle_is_found() -> None:
    """Thousands of rules: the check walks the graph once (it used to walk it from every rule)."""
    RegoProgram("t", _chain(3000, closed=False), [])
    with pytest.raises(RegoError) as found:
        RegoProgram("t", _chain(3000, closed=True), [])
    message = str(found.value)
    assert "rego_recursion_error: data.t.r0 " in message and "data.t.r0 -> data.t.r1 ->" in message
    assert len(message) < 1000  # the cycle is cut short, not listed rule by rule
