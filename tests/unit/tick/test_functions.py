"""Built-in lambda functions: results, Go edge cases, argument type checks."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapacity.gotypes import Duration, Time
from kapacity.tick import LambdaError, TickError, compile_lambda, parse_lambda
from kapacity.tick.functions import BUILTINS

FIELDS: dict[str, Any] = {"f": 2.0, "i": 3, "s": "héllo wörld", "neg": -1.0, "zero": 0.0, "n": 1_500_000}


def ev(source: str, time_ns: int = 0) -> Any:
    return compile_lambda(parse_lambda(source), now=lambda: 86_400 * 10**9).fn(FIELDS, {"host": "a"}, time_ns)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("abs(-2.5)", 2.5),
        ('sqrt("f")', math.sqrt(2.0)),
        ("pow(2.0, 10.0)", 1024.0),
        ("pow10(3)", 1000.0),
        ("max(1.0, 2.0)", 2.0),
        ("min(1.0, 2.0)", 1.0),
        ("mod(7.0, 3.0)", 1.0),
        ("mod(-7.0, 3.0)", -1.0),
        ("floor(-1.5)", -2.0),
        ("ceil(1.2)", 2.0),
        ("trunc(-1.7)", -1.0),
        ("exp2(3.0)", 8.0),
        ("logb(8.0)", 3.0),
        ("log10(1000.0)", 3.0),
        ("log2(8.0)", 3.0),
        ("hypot(3.0, 4.0)", 5.0),
        ("atan2(1.0, 1.0)", math.pi / 4),
        ("cbrt(-27.0)", -3.0),
        ("gamma(5.0)", 24.0),
        ("lgamma(1.0)", 0.0),
        ("erf(0.0)", 0.0),
        ("j0(1.0)", pytest.approx(0.7651976865579666, abs=1e-9)),
        ("j1(1.0)", pytest.approx(0.44005058574493355, abs=1e-9)),
        ("jn(2, 10.0)", pytest.approx(0.2546303137, abs=1e-8)),
        ("jN(2, 10.0)", pytest.approx(0.2546303137, abs=1e-8)),
        ("y0(1.0)", pytest.approx(0.08825696421567697, abs=1e-8)),
        ("y1(1.0)", pytest.approx(-0.7812128213002887, abs=1e-8)),
        ("yn(2, 10.0)", pytest.approx(-0.0058680825, abs=1e-8)),
        # Go returns NaN / Inf where Python's math raises
        ('log("zero")', -math.inf),
        ("sqrt(-1.0)", "nan"),
        ("exp(1000.0)", math.inf),
        ("atanh(1.0)", math.inf),
        ("y0(0.0)", -math.inf),
        ("pow(0.0, -1.0)", math.inf),
    ],
)
def test_math(source: str, expected: Any) -> None:
    result = ev(source)
    if expected == "nan":
        assert math.isnan(result)
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("strContains('seafood', 'foo')", True),
        ("strContainsAny('failure', 'ui')", True),
        ("strCount('cheese', 'e')", 3),
        ("strHasPrefix('golang', 'go')", True),
        ("strHasSuffix('golang', 'ng')", True),
        # byte offsets, as in Go
        ('strIndex("s", \'w\')', 7),
        ('strIndexAny("s", \'wö\')', 7),
        ('strLastIndex("s", \'l\')', 11),
        ('strLastIndexAny("s", \'lh\')', 11),
        ('strLength("s")', 13),
        ("strReplace('oink oink oink', 'k', 'ky', 2)", "oinky oinky oink"),
        ("strReplace('oink oink', 'oink', 'moo', -1)", "moo moo"),
        ("strSubstring('kapacity', 1, 4)", "apa"),
        ("strSubstring('kapacity', 0, 8)", "kapacity"),
        ("strToLower('AbC')", "abc"),
        ("strToUpper('AbC')", "ABC"),
        ("strTrim('xxhixx', 'x')", "hi"),
        ("strTrimLeft('xxhixx', 'x')", "hixx"),
        ("strTrimRight('xxhixx', 'x')", "xxhi"),
        ("strTrimPrefix('prefix-x', 'prefix-')", "x"),
        ("strTrimSuffix('x.log', '.log')", "x"),
        ("strTrimSpace('  \t hi \n')", "hi"),
        ("regexReplace(/a(x*)b/, '-ab-axxb-', 'T')", "-T-T-"),
        ("regexReplace(/a(x*)b/, '-ab-axxb-', '$1W')", "---"),
        ("regexReplace(/a(x*)b/, '-ab-axxb-', '${1}W')", "-W-xxW-"),
        ("regexReplace(/(?P<host>[a-z]+)-(\\d+)/, 'web-12', '$2:${host}$$')", "12:web$"),
        ("humanBytes(82854982)", "83 MB"),
        ("humanBytes(1024.0)", "1.0 kB"),
        ("humanBytes(5)", "5 B"),
    ],
)
def test_strings(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("bool('true')", True),
        ("bool('F')", False),
        ("bool(1)", True),
        ("bool(0.0)", False),
        ("int(3.9)", 3),
        ("int(-3.9)", -3),
        ("int('42')", 42),
        ("int(TRUE)", 1),
        ("int(1s)", 10**9),
        ("float(3)", 3.0),
        ("float('1e3')", 1000.0),
        ("float(FALSE)", 0.0),
        ("string(1.5)", "1.5"),
        ("string(2.0)", "2"),
        ("string(42)", "42"),
        ("string(TRUE)", "true"),
        ("string(90s)", "90s"),
        ("string(1h)", "1h"),
        ("duration(5m)", Duration(300 * 10**9)),
        ("duration(5, 1m)", Duration(300 * 10**9)),
        ("duration(1.5, 1s)", Duration(1_500_000_000)),
        ("duration('1h30m')", Duration(5_400 * 10**9)),
        ('duration("i", 1s)', Duration(3 * 10**9)),
        ("if(TRUE, 'a', 'b')", "a"),
        ('if("f" > 5.0, 1, 2)', 2),
        ("now()", Time(86_400 * 10**9)),
        ("unixNano(now())", 86_400 * 10**9),
        ("weekday(now())", 5),  # 1970-01-02 was a Friday
    ],
)
def test_conversions_and_misc(source: str, expected: Any) -> None:
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("bool('yes')", 'parsing "yes": invalid syntax'),
        ("bool(2)", "cannot convert 2 to boolean"),
        ("int('4.2')", 'parsing "4.2": invalid syntax'),
        ("float('x')", 'parsing "x": invalid syntax'),
        ("duration('soon')", "invalid duration string"),
        ("strSubstring('abc', 2, 9)", "stop index too large"),
        ("strSubstring('abc', -1, 2)", "negative index"),
        ('abs("i")', 'Cannot call function "abs" with args (int), available signatures are [(float)]'),
        ('if(TRUE, "i", "f")', 'Cannot call function "if" with args (boolean,int,float)'),
        ('strLength("i")', 'Cannot call function "strLength" with args (int)'),
    ],
)
def test_runtime_function_errors(source: str, message: str) -> None:
    with pytest.raises(LambdaError) as info:
        ev(source)
    assert message in str(info.value)


def test_wrong_arity_is_a_compile_error() -> None:
    with pytest.raises(TickError, match='Cannot call function "strContains"'):
        compile_lambda(parse_lambda("strContains('a')"))
    with pytest.raises(TickError, match='Cannot call function "count"'):
        compile_lambda(parse_lambda("count(1)"))
    with pytest.raises(TickError, match=r"available signatures are \[\(duration\), \(string\), \(int,duration\)"):
        compile_lambda(parse_lambda("duration(5)"))


def test_every_documented_function_exists() -> None:
    documented = """isPresent if int float string bool duration abs acos asin atan atan2 ceil cos cosh
    erf erfc exp exp2 expm1 floor gamma hypot j0 j1 jN lgamma log log10 log1p log2 logb max min mod
    pow pow10 sin sinh sqrt tan tanh trunc y0 y1 yN strContains strContainsAny strCount strHasPrefix
    strHasSuffix strIndex strIndexAny strLastIndex strLastIndexAny strLength strReplace strSubstring
    strToLower strToUpper strTrim strTrimLeft strTrimPrefix strTrimRight strTrimSpace strTrimSuffix
    regexReplace hour minute weekday day month year unixNano now sigma count spread""".split()
    assert set(documented) <= set(BUILTINS)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**62), 2**62))
def test_time_functions_match_the_calendar(ns: int) -> None:
    when = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=ns // 1000)
    expected = {
        "minute": when.minute,
        "hour": when.hour,
        "weekday": (when.weekday() + 1) % 7,
        "day": when.day,
        "month": when.month,
        "year": when.year,
        "unixNano": ns,
    }
    for name, value in expected.items():
        assert ev(f'{name}("time")', ns) == value
        assert compile_lambda(parse_lambda(f"{name}(t)"), {"t": Time(ns)}).fn({}, {}, 0) == value
