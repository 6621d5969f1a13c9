"""Predicates compiled inline (for the pipeline's fused fast path): one load per reference
and section, and the same answers and compile-time errors as :func:`compile_lambda`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapacity.tick import LambdaError, TickError, compile_lambda, parse_lambda
from kapacity.tick.compiler import inline_predicates

SOURCES = [
    '"v" > 10',
    '"v" > 10.5 AND "host" == \'a\'',
    '"host" =~ /^a/ OR "v" < 0',
    'isPresent("w") AND "w" > 1',
    '!("v" >= 3)',
    'float("v") / 2.0 > 1.0',
    '"v" % 3 == 0',
    'hour("time") < 12',
    '"v" > lim',
    '"flag"',
]
SCOPE = {"lim": 4, "pattern": re.compile("x")}


def inline_fn(sources: list[str]) -> Any:
    """A function evaluating ``sources`` in one section, as the fused path would."""
    il = inline_predicates([[parse_lambda(s) for s in sources]], SCOPE)
    section = il.sections[0]
    body = [f"    {local} = {code}" for local, code in section.loads]
    body.append("    return [" + ", ".join(section.exprs) + "]")
    ns = il.namespace
    exec("def f(fields, tags, time_ns):\n" + "\n".join(body) + "\n", ns)  # noqa: S102
    return ns["f"]


def test_each_reference_is_loaded_once_per_section() -> None:
    il = inline_predicates([[parse_lambda('"v" > 1'), parse_lambda('"v" < 5 AND "h" == \'a\'')],
                            [parse_lambda('"v" != 0')]])
    first, second = il.sections
    assert [code for _, code in first.loads] == [
        "(fields['v'] if 'v' in fields else _tag(tags, 'v'))",
        "(fields['h'] if 'h' in fields else _tag(tags, 'h'))",
    ]
    assert len(second.loads) == 1 and second.loads[0][0] not in {local for local, _ in first.loads}
    assert not il.stateful


def test_stateful_functions_are_flagged() -> None:
    assert inline_predicates([[parse_lambda("count() > 2")]]).stateful


@pytest.mark.parametrize("source", ["'text'", "1 + 2", '"v" > 1 AND 2'])
def test_non_boolean_predicates_are_compile_errors(source: str) -> None:
    with pytest.raises(TickError, match="boolean"):
        inline_predicates([[parse_lambda(source)]])


_FIELD = st.one_of(st.integers(-20, 20), st.floats(-20, 20, allow_nan=False), st.booleans(), st.sampled_from(["a", "b"]))


@given(st.dictionaries(st.sampled_from(["v", "w", "flag", "host"]), _FIELD, max_size=4),
       st.sampled_from(["a", "b"]), st.integers(0, 2 * 86_400))
def test_inline_answers_match_compiled_lambdas(fields: dict[str, Any], host: str, seconds: int) -> None:
    tags = {"host": host}
    t = seconds * 10**9
    expected: list[Any] = []
    for source in SOURCES:
        try:
            expected.append(compile_lambda(parse_lambda(source), SCOPE, predicate=True).fn(fields, tags, t))
        except LambdaError:
            expected.append("error")
    f = inline_fn(SOURCES)
    try:
        got = f(fields, tags, t)
    except Exception:  # noqa: BLE001 - hoisted loads raise where a lambda would short-circuit
        # The fused path then takes the exact path: fine as long as some lambda needed to
        # read a missing reference or failed.
        assert "error" in expected or not {"v", "w", "flag", "host"} <= set(fields) | set(tags)
        return
    assert got == expected
