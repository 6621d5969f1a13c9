"""The C line-protocol fast path against its pure-Python twin: same points, same errors.

``parse_lines`` takes a plain body through ``kapacity._native.lineproto`` when it is built;
every test here parses the same body with it and with the pure path (``_LINEPROTO = None``)
and requires equal results, field types included — on cold and warm series-key caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapacity._native import load
from kapacity.lineprotocol import ParseResult, parse_lines
from kapacity.lineprotocol import _parse
from kapacity.models import Point

NATIVE = load("lineproto")
pytestmark = pytest.mark.skipif(NATIVE is None, reason="kapacity._native.lineproto not built")

PRECISIONS = ["n", "u", "ms", "s", "m", "h"]


def _run(body: bytes | str, native: bool, **kw: Any) -> ParseResult:
    saved = _parse._LINEPROTO
    _parse._LINEPROTO = NATIVE if native else None
    try:
        return parse_lines(body, **kw)
    finally:
        _parse._LINEPROTO = saved


def _typed(result: ParseResult) -> list[tuple[Any, ...]]:
    return [
        (p.name, list(p.tags.items()), [(k, type(v), v) for k, v in p.fields.items()],
         p.time, p.database, p.retention_policy)
        for p in result.points
    ]


def assert_twins(body: bytes | str, precision: str = "n", now_ns: int = 42) -> ParseResult:
    """Parse ``body`` both ways, cold cache then warm cache; return the native result."""
    kw = {"precision": precision, "now_ns": now_ns, "database": "db", "retention_policy": "rp"}
    results = []
    for native in (True, False, True, False):
        if len(results) < 2:
            _parse._KEYS.clear()
            _parse._TYPED.clear()
        results.append(_run(body, native, **kw))
    want = results[1]
    for got in results:
        assert _typed(got) == _typed(want), body
        assert got.points == want.points
        assert got.errors == want.errors, body
    return results[0]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    yield
    _parse._KEYS.clear()
    _parse._TYPED.clear()


# --------------------------------------------------------------------- examples

def test_plain_body_all_types() -> None:
    body = (
        b"cpu,z=1,a=2 f=1.5,i=-3i,u=4u,b=t,B=FALSE,e=1e-3,d=.5,n=-0.0 17\n"
        b"# a comment\n\n"
        b"mem free=10i\n"
    )
    r = assert_twins(body, precision="s", now_ns=99)
    assert r.errors == []
    first, second = r.points
    assert first == Point("cpu", {"a": "2", "z": "1"},
                          {"f": 1.5, "i": -3, "u": 4, "b": True, "B": False, "e": 0.001,
                           "d": 0.5, "n": -0.0}, 17_000_000_000, "db", "rp")
    assert list(first.tags) == ["a", "z"]
    assert second.time == 99  # no timestamp: now, not rounded to the precision
    assert type(first.fields["b"]) is bool and type(first.fields["i"]) is int


@pytest.mark.parametrize("line", [
    "cpu v=9223372036854775807i", "cpu v=-9223372036854775808i",
    "cpu v=9223372036854775808i", "cpu v=-9223372036854775809i",
    "cpu v=18446744073709551615u", "cpu v=18446744073709551616u", "cpu v=-1u",
    "cpu v=1e308", "cpu v=1e309", "cpu v=-1e309", "cpu v=1e-400", "cpu v=1.", "cpu v=.",
    "cpu v=-", "cpu v=1.5i", "cpu v=0x10", "cpu v=1_0", "cpu v=+1", "cpu v=nan", "cpu v=inf",
    "cpu v=1 9223372036854775806", "cpu v=1 9223372036854775807", "cpu v=1 -5",
    "cpu v=1 99999999999999999999999", "cpu v=1 000000000000000000000000012",
    "cpu v=1 1 2", "cpu  v=1", "cpu v=1 ", " cpu v=1", "cpu", "cpu v=", "cpu =1", "cpu v",
    "cpu,a=1,a=2 v=1", "cpu,a=1,b=2,a=3 v=1", "cpu,=1 v=1", "cpu,a= v=1", "cpu,a==1 v=1",
    "cpu,a=1=2 v=1", "cpu, v=1", "cpu,a=1, v=1", ",a=1 v=1", "c=pu v=1", "cpu v=1,v=2",
    "cpu v=1,,w=2", "cpu v=1,w=2,", "cpu v=t,w=tru", "cpu v=1=2", "#cpu v=1", "cpu v=1 1x",
    "cpu v=" + "1" * 70, "cpu v=1." + "0" * 70, "cpu,a\x01=b v=1\x01", "cpu,a=b v=1\x7f",
])
@pytest.mark.parametrize("precision", ["n", "h"])
def test_edge_lines_agree(line: str, precision: str) -> None:
    assert_twins(f"ok v=1 5\n{line}\nok v=2", precision=precision)


def test_long_key_is_left_to_the_exact_scanner() -> None:
    tag = "x" * 70_000
    r = assert_twins(f"cpu,t={tag} v=1\ncpu,t=a v=1")
    assert len(r.points) == 1 and r.errors[0].line == 1
    assert "max key length exceeded" in r.errors[0].message


@pytest.mark.parametrize("char", ['\\', '"', "\t", "\0", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "é"])
def test_bodies_that_are_not_plain_go_to_the_pure_path(char: str) -> None:
    body = f"cpu v=1\ncpu,h=a{char}b v=2 3\n".encode()
    assert NATIVE is not None
    answer = NATIVE.fast_body(body, 1, 0, "db", "rp", Point, {}, set(), 10, 65535)
    assert answer is None
    assert_twins(body)


def test_unsure_lines_are_reported_by_index() -> None:
    assert NATIVE is not None
    found, unsure = NATIVE.fast_body(
        b"cpu v=1\n\nbad\n#c\ncpu v=1i 7", 1, 5, "d", "r", Point, {}, set(), 10, 65535)
    assert unsure == [2]
    assert found == [Point("cpu", {}, {"v": 1.0}, 5, "d", "r"), None,
                     Point("cpu", {}, {"v": 1}, 7, "d", "r")]


def test_errors_name_line_and_column_as_the_pure_path_does() -> None:
    r = assert_twins(b"cpu v=1\ncpu v=1 12x\ncpu v=9223372036854775808i")
    assert [str(e) for e in r.errors] == [
        "line 2:11: unable to parse 'cpu v=1 12x': bad timestamp",
        "line 3:7: unable to parse 'cpu v=9223372036854775808i': "
        "unable to parse integer 9223372036854775808: value out of range",
    ]


def test_a_full_key_cache_is_emptied_not_grown() -> None:
    assert NATIVE is not None
    keys: dict[str, tuple[str, dict[str, str]]] = {}
    typed = {"old"}
    body = "\n".join(f"cpu,h={i} v=1" for i in range(5)).encode()
    NATIVE.fast_body(body, 1, 0, "d", "r", Point, keys, typed, 3, 65535)
    assert len(keys) <= 3 and typed == set()
    assert keys["cpu,h=4"] == ("cpu", {"h": "4"})


def test_the_cache_is_shared_with_the_pure_path() -> None:
    _run(b"cpu,b=2,a=1 v=1", True, now_ns=0)
    assert _parse._KEYS["cpu,b=2,a=1"] == _parse._fast_key("cpu,b=2,a=1")


def test_points_get_their_own_tags() -> None:
    r = _run(b"cpu,h=a v=1\ncpu,h=a v=2", True, now_ns=0)
    first, second = r.points
    first.tags["x"] = "y"
    assert second.tags == {"h": "a"}


class _Plain:
    """Not a slots dataclass: the C code must call it rather than fill it in."""

    def __init__(self, *args: Any) -> None:
        self.args = args


def test_other_point_types_are_called() -> None:
    assert NATIVE is not None
    found, unsure = NATIVE.fast_body(b"cpu,h=a v=1 3", 1, 0, "d", "r", _Plain, {}, set(), 10, 9)
    assert unsure == [] and found[0].args == ("cpu", {"h": "a"}, {"v": 1.0}, 3, "d", "r")


def test_str_bodies_too() -> None:
    assert_twins("cpu v=1 5\ncpu v=2")
    assert_twins("cpu,h=é v=1 5")


# ------------------------------------------------------------------- properties

_PLAIN_ALPHABET = "cpu,= \n#01-.eE+iutfTFrx_9"


@settings(max_examples=600, deadline=None)
@given(st.text(st.sampled_from(_PLAIN_ALPHABET), max_size=80), st.sampled_from(PRECISIONS))
def test_plain_shaped_text_agrees(body: str, precision: str) -> None:
    assert_twins(body, precision=precision)


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(_PLAIN_ALPHABET + '\\"\t\r\0é€\U0001f600'), max_size=80))
def test_any_shaped_text_agrees(body: str) -> None:
    assert_twins(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_bytes_agree(body: bytes) -> None:
    assert_twins(body)


_ident = st.text(st.sampled_from("abcxyzAB09_-.#=é"), min_size=0, max_size=6)
_value = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:e}"),
    st.integers(-(2**64), 2**65).map(lambda i: f"{i}i"),
    st.integers(-5, 2**65).map(lambda i: f"{i}u"),
    st.sampled_from(["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE",
                     "tRue", "yes", '"s"', '"a \\"q\\" b"', "1.2.3", "--1", "1e", "1e+5"]),
)
_line = st.builds(
    lambda name, tags, fields, stamp: (
        name + "".join(f",{k}={v}" for k, v in tags)
        + " " + ",".join(f"{k}={v}" for k, v in fields)
        + ("" if stamp is None else f" {stamp}")
    ),
    _ident,
    st.lists(st.tuples(_ident, _ident), max_size=4),
    st.lists(st.tuples(_ident, _value), min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(-(2**64), 2**64)),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_line, min_size=1, max_size=6), st.sampled_from(PRECISIONS))
def test_structured_lines_agree(lines: list[str], precision: str) -> None:
    assert_twins("\n".join(lines), precision=precision)


def test_a_foreign_cache_entry_is_an_error_not_a_crash() -> None:
    assert NATIVE is not None
    with pytest.raises(TypeError, match="series-key cache"):
        NATIVE.fast_body(b"cpu v=1", 1, 0, "d", "r", Point, {"cpu": "junk"}, set(), 10, 65535)
