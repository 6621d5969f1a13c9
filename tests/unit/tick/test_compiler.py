"""Lambda evaluation: types, operators, functions, missing values, state."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from kapacity.gotypes import Duration, Time
from kapacity.tick import (
    BinaryOp,
    LambdaError,
    Reference,
    TickError,
    compile_lambda,
    lambda_references,
    parse,
    parse_lambda,
)

FIELDS: dict[str, Any] = {"i": 7, "neg": -7, "f": 2.5, "zero": 0, "s": "web01", "b": True, "usage_idle": 5.0}
TAGS = {"host": "server-a", "region": "eu", "s": "tag-loses"}
# 2021-03-04T05:06:07Z, a Thursday
T = 1_614_834_367 * 10**9


def ev(source: str, fields: dict[str, Any] | None = None, scope: dict[str, Any] | None = None) -> Any:
    return compile_lambda(parse_lambda(source), scope).fn(FIELDS if fields is None else fields, TAGS, T)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # int/int division truncates like Go, also for negatives
        ('"i" / 2', 3),
        ('"neg" / 2', -3),
        ('"neg" % 3', -1),
        ("7 / 2", 3),
        ("7.0 / 2.0", 3.5),
        ('"f" * 2.0', 5.0),
        ('"i" + 1', 8),
        ('"i" - 10', -3),
        ('-"i"', -7),
        ('-"f"', -2.5),
        # mixed comparisons are fine
        ('"i" > 6.5', True),
        ('"f" < 3', True),
        ('"i" == 7.0', True),
        ("1 < 1.5", True),
        # strings
        ('"s" + \'-x\'', "web01-x"),
        ('"s" == \'web01\'', True),
        ("'a' < 'b'", True),
        ('"host" =~ /^server-/', True),
        ('"host" !~ /^server-/', False),
        ('"host" =~ /A/', False),
        # field wins over a tag of the same name
        ('"s"', "web01"),
        ('"region"', "eu"),
        # booleans and logic
        ('"b" AND TRUE', True),
        ('!"b"', False),
        ('"b" == FALSE', False),
        ('"i" > 5 AND "f" < 1 OR "host" == \'server-a\'', True),
        ("TRUE OR FALSE AND FALSE", True),
        ("(TRUE OR FALSE) AND FALSE", False),
        # durations
        ("5m + 30s", Duration(330 * 10**9)),
        ("5m > 299s", True),
        ("2 * 1s", Duration(2 * 10**9)),
        ("1h / 2", Duration(1800 * 10**9)),
        ("1h / 1m", 60),
        ("-1s", Duration(-(10**9))),
        # time
        ('"time"', Time(T)),
        ('unixNano("time")', T),
        ('hour("time")', 5),
        ('minute("time")', 6),
        ('day("time")', 4),
        ('month("time")', 3),
        ('year("time")', 2021),
        ('weekday("time")', 4),
        ('"time" - 1h < "time"', True),
    ],
)
def test_operators(source: str, expected: Any) -> None:
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('"i" * 1.5', "mismatched type to binary operator. got int * float"),
        ('"f" + 1', "mismatched type to binary operator. got float + int"),
        ('"s" > 1', "mismatched type to binary operator. got string > int"),
        ('"b" + 1', "invalid math operator + for type boolean"),
        ('"i" AND TRUE', "AND expects a boolean, got int"),
        ('!"i"', "'!' expects a boolean, got int"),
        ('"i" / "zero"', "integer divide by zero"),
        ('-"s"', "invalid argument to '-': string"),
        ('"f" =~ /x/', "got float =~ regex"),
    ],
)
def test_runtime_type_errors(source: str, message: str) -> None:
    with pytest.raises(LambdaError) as info:
        ev(source)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("source", "col", "message"),
    [
        ("'a' + 1", 5, "mismatched type to binary operator. got string + int"),
        ("1 + 1.5", 3, "got int + float"),
        ("TRUE < FALSE", 6, "invalid comparison operator < for type boolean"),
        ('"x" AND 1', 5, "invalid logical operator AND for type int"),
        ("'a' =~ 'a'", 5, "got string =~ string"),
        ("!1", 1, "invalid argument to '!': int"),
        ('nope("x")', 1, 'undefined function "nope"'),
        ("strContans('a', 'b')", 1, "did you mean strContains"),
        ("abs(1)", 1, 'Cannot call function "abs" with args (1: int), available signatures are [(float)]'),
        ("strLength(1, 2)", 1, 'Cannot call function "strLength"'),
        ("if(TRUE, 1, 'a')", 1, 'Cannot call function "if"'),
        ('x > 1', 1, "undefined identifier x"),
    ],
)
def test_compile_time_type_errors(source: str, col: int, message: str) -> None:
    with pytest.raises(TickError) as info:
        compile_lambda(parse_lambda(source))
    assert message in info.value.message
    assert (info.value.line, info.value.col) == (1, col)


def test_compile_error_points_into_the_script() -> None:
    program = parse("stream\n  |from()\n  |alert()\n    .crit(lambda: \"x\" > 1 AND 'a' + 2)")
    lam = program.statements[0].call.args[0]  # type: ignore[union-attr]
    with pytest.raises(TickError) as info:
        compile_lambda(lam)
    assert (info.value.line, info.value.col) == (4, 35)


def test_missing_field_or_tag() -> None:
    with pytest.raises(LambdaError, match='no field or tag exists for "nope"'):
        ev('"nope" > 1')
    # short-circuit: the missing side is never evaluated
    assert ev('"i" > 1 OR "nope" > 1') is True
    assert ev('"i" < 1 AND "nope" > 1') is False
    assert ev('isPresent("nope")') is False
    assert ev('isPresent("host") AND isPresent("i")') is True
    assert ev('isPresent("nope") AND "nope" > 1') is False


def test_missing_fields_in_the_fast_path() -> None:
    fn = compile_lambda(parse_lambda('"usage_idle" < 10')).fn
    assert fn({"usage_idle": 5}, {}, 0) is True
    assert fn({"usage_idle": 50.5}, {}, 0) is False
    with pytest.raises(LambdaError, match="mismatched type"):
        fn({}, {"usage_idle": "5"}, 0)
    with pytest.raises(LambdaError, match="no field or tag"):
        fn({"other": 1.0}, {}, 0)


def test_scope_values_and_lambda_vars() -> None:
    scope = {
        "warn": 70,
        "name": "web01",
        "pattern": re.compile("^server"),
        "period": Duration(60 * 10**9),
        "crit_lambda": parse("var c = lambda: \"i\" > 5").statements[0].value,  # type: ignore[union-attr]
        "ratio": 0.5,
        "on": True,
    }
    assert ev('"i" < warn', scope=scope) is True
    assert ev('"s" == name', scope=scope) is True
    assert ev('"host" =~ pattern', scope=scope) is True
    assert ev("period > 30s", scope=scope) is True
    assert ev("crit_lambda AND on", scope=scope) is True
    assert ev('"f" * ratio', scope=scope) == 1.25
    with pytest.raises(TickError, match="got int \\+ float"):
        compile_lambda(parse_lambda("warn + ratio"), scope)


def test_predicate_mode() -> None:
    assert compile_lambda(parse_lambda('"b"'), predicate=True).fn(FIELDS, TAGS, 0) is True
    with pytest.raises(LambdaError, match="expects a boolean"):
        compile_lambda(parse_lambda('"i"'), predicate=True).fn(FIELDS, TAGS, 0)
    with pytest.raises(TickError, match="must evaluate to a boolean, got int"):
        compile_lambda(parse_lambda("1 + 1"), predicate=True)


def test_compiled_lambda_metadata() -> None:
    compiled = compile_lambda(parse_lambda('"a" > 1 AND strHasPrefix("host", \'x\') OR isPresent("b")'))
    assert compiled.references == {"a", "host", "b"}
    assert compiled.result_type == "boolean"
    assert not compiled.stateful
    assert "def _lambda" in compiled.source
    assert compiled(FIELDS | {"a": 2}, TAGS) is True
    assert lambda_references(parse_lambda('"x" + "y" * abs("z")')) == {"x", "y", "z"}


def test_stateful_functions_keep_state_per_new_state() -> None:
    compiled = compile_lambda(parse_lambda("count()"))
    assert compiled.stateful
    first, second = compiled.new_state(), compiled.new_state()
    assert [first({}, {}, 0) for _ in range(3)] == [1, 2, 3]
    assert second({}, {}, 0) == 1
    assert compiled.fn({}, {}, 0) == 1

    spread = compile_lambda(parse_lambda('spread("f")')).new_state()
    assert [spread({"f": v}, {}, 0) for v in (3.0, 1.0, 4.0, 2.0)] == [0.0, 2.0, 3.0, 3.0]

    sigma = compile_lambda(parse_lambda('sigma("f")')).new_state()
    values = [sigma({"f": v}, {}, 0) for v in (1.0, 2.0, 3.0, 10.0)]
    assert values[:2] == [0.0, pytest.approx(0.7071067811865476)]
    assert values[3] == pytest.approx(abs(10 - 4.0) / math.sqrt(((1 - 4) ** 2 + (2 - 4) ** 2 + (3 - 4) ** 2 + 36) / 3))
    with pytest.raises(LambdaError, match='Cannot call function "sigma" with args \\(int\\)'):
        compile_lambda(parse_lambda('sigma("i")')).fn(FIELDS, TAGS, 0)


def test_now_uses_the_injected_clock() -> None:
    compiled = compile_lambda(parse_lambda("now()"), now=lambda: 42)
    assert compiled.fn({}, {}, 0) == Time(42)
    assert compile_lambda(parse_lambda('"time" < now()'), now=lambda: T + 1).fn({}, {}, T) is True


def test_extra_functions() -> None:
    compiled = compile_lambda(parse_lambda("level() >= 2"), functions={"level": lambda: 3})
    assert compiled.fn({}, {}, 0) is True


def test_lambda_nodes_not_allowed_inside_expressions() -> None:
    with pytest.raises(TickError, match="cannot be used in a lambda"):
        compile_lambda(parse_lambda("*"))


def test_deep_nesting_is_a_tick_error() -> None:
    expr: Any = parse_lambda('"a"')
    for _ in range(2000):
        expr = BinaryOp("-", expr, Reference("b"))
    with pytest.raises(TickError, match="nested too deeply"):
        compile_lambda(expr)
