"""The C alert JSON encoder against its pure-Python twin: same bytes for arbitrary alerts.

``kapacity._native.alertjson.encode`` may decline (return None) and leave an alert to the
Python path, but whatever it returns must be byte-identical to ``encode_alert_json_exact``
(Go's ``encoding/json`` spelling). ``encode_alert_json`` is checked both ways: with the C
module and with it switched off (the twin users get without a compiler).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kapacity._native import load
from kapacity.alert import event as event_module
from kapacity.alert.event import AlertData, Result, Series, encode_alert_json, encode_alert_json_exact
from kapacity.gotypes import Duration, Level, Time

native = load("alertjson")
needs_native = pytest.mark.skipif(native is None, reason="kapacity._native.alertjson is not built")

NS = 1_767_225_600_000_000_000
MAX_NS = 253_402_300_799 * 10**9 + 999_999_999  # 9999-12-31T23:59:59.999999999Z

# Text that exercises every escaping rule: HTML-safe <>&, U+2028/2029, control characters,
# quotes and backslashes, multi-byte UTF-8, and (rarely) lone surrogates.
special = st.sampled_from(["<", ">", "&", "\u2028", "\u2029", "\x00", "\x1f", "\x7f", "\b", "\f",
                           "\n", "\r", "\t", '"', "\\", "é", "€", "😀", "\ud800", "/"])
texts = st.lists(st.one_of(st.text(max_size=6), special), max_size=6).map("".join)

floats = st.one_of(
    st.floats(),
    st.floats(min_value=1e-7, max_value=1e-4),
    st.floats(min_value=1e15, max_value=1e22),
    st.floats(min_value=-1e9, max_value=1e9).map(lambda f: round(f, 3)),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda i: i / 10**6),
    st.sampled_from([0.0, -0.0, 10.0, 1e16, 1e21, 9.999999999999999e20, 1e-6, 9.99999e-7, 1.5e-6,
                     5e-324, 2.0**53, 0.1, 4.2, -91.7, 123456789.123456, 999999999.9999999]),
)
times = st.builds(Time, st.integers(min_value=-(10**18), max_value=MAX_NS + 10**10))
scalars = st.one_of(floats, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none(),
                    texts, times, st.builds(Duration, st.integers(0, 10**12)))


@st.composite
def alerts(draw: st.DrawFn) -> AlertData:
    series = []
    for _ in range(draw(st.integers(0, 2))):
        columns = draw(st.lists(texts, max_size=4))
        rows = draw(st.lists(st.lists(scalars, min_size=len(columns), max_size=len(columns)), max_size=3))
        series.append(Series(draw(texts), draw(st.dictionaries(texts, texts, max_size=4)), columns, rows))
    return AlertData(
        id=draw(texts),
        message=draw(texts),
        details=draw(texts),
        time=draw(times),
        duration=Duration(draw(st.integers(min_value=0, max_value=2**64))),
        level=draw(st.sampled_from(list(Level))),
        data=Result(series),
        previous_level=draw(st.sampled_from(list(Level))),
        recoverable=draw(st.booleans()),
    )


def exact_or_error(alert: AlertData) -> bytes | type[BaseException]:
    try:
        return encode_alert_json_exact(alert)
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError) as exc:
        return type(exc)


def typical(i: int = 0, value: Any = 4.2) -> AlertData:
    host = f"server-{i:05d}.example.com"
    return AlertData(
        f"cpu:cpu=cpu-total,host={host}", f"CPU idle {host} <CRITICAL> & more", "", Time(NS + i * 1_000_500),
        Duration(90 * 10**9), Level.CRITICAL,
        Result([Series("cpu", {"host": host, "cpu": "cpu-total"}, ["time", "usage_idle", "n", "ok", "s"],
                       [[Time(NS), value, 7, True, "\u2028"], [Time(NS + 1), -0.5, -(2**63), False, None]])]),
        Level.WARNING,
    )


@pytest.fixture(params=["native", "pure"])
def encoder(request: pytest.FixtureRequest) -> Callable[[AlertData], bytes]:
    """``encode_alert_json`` as built (the C module's render), and its pure-Python twin."""
    if request.param == "native":
        if native is None:
            pytest.skip("kapacity._native.alertjson is not built")
        assert encode_alert_json is not event_module.encode_alert_json_py
        return encode_alert_json
    return event_module.encode_alert_json_py


@needs_native
@settings(max_examples=500, deadline=None)
@given(alerts())
@example(typical())
def test_native_bytes_equal_the_exact_encoder_or_it_declines(alert: AlertData) -> None:
    assert native is not None
    got = native.encode(alert)
    want = exact_or_error(alert)
    if got is not None:
        assert got == want


@needs_native
@settings(max_examples=500, deadline=None)
@given(floats)
def test_native_floats_are_spelled_like_go(value: float) -> None:
    assert native is not None
    alert = AlertData("x", "", "", Time(NS), Duration(0), Level.OK, Result([Series("m", {}, ["v"], [[value]])]))
    got = native.encode(alert)
    assert got is not None  # every float is handled in C, none declined
    assert got == encode_alert_json_exact(alert)


@needs_native
def test_native_handles_the_common_alert_without_declining() -> None:
    assert native is not None
    for i in range(200):
        alert = typical(i, value=i / 7)
        assert native.encode(alert) == encode_alert_json_exact(alert)
    body = native.encode(typical())
    assert body is not None
    assert body.endswith(b"}\n") and b'"message":"CPU idle server-00000.example.com \\u003cCRITICAL\\u003e \\u0026 more"' in body
    assert b'"tags":{"cpu":"cpu-total","host":"server-00000.example.com"}' in body
    assert b'[["2026-01-01T00:00:00Z",4.2,7,true,"\\u2028"],["2026-01-01T00:00:00.000000001Z",-0.5,-9223372036854775808,false,null]]' in body


@needs_native
@pytest.mark.parametrize("alert", [
    AlertData("x", "\ud800", "", Time(NS), Duration(0), Level.OK, Result([])),  # lone surrogate
    AlertData("x", "", "", Time(-1), Duration(0), Level.OK, Result([])),  # before 1970
    AlertData("x", "", "", Time(NS), Duration(2**64), Level.OK, Result([])),  # beyond int64
    AlertData("x", "", "", Time(NS), Duration(0), Level.OK, Result([Series("m", {}, ["v"], [[2**64]])])),
    AlertData("x", "", "", Time(NS), Duration(0), Level.OK, Result([Series("m", {}, ["v"], [[Duration(5)]])])),
    AlertData("x", "", "", Time(NS), Duration(0), Level.OK, Result([Series("m", {"k": 1}, [], [])])),  # type: ignore[dict-item]
    AlertData("x", "", "", Time(NS), Duration(0), 7, Result([])),  # type: ignore[arg-type]
])
def test_native_declines_what_only_python_spells(alert: AlertData) -> None:
    assert native is not None
    assert native.encode(alert) is None


# The fixture only selects an implementation: nothing in it needs resetting between examples.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alert=alerts())
def test_encode_alert_json_is_the_same_with_and_without_c(
    encoder: Callable[[AlertData], bytes], alert: AlertData
) -> None:
    want = exact_or_error(alert)
    if isinstance(want, bytes):
        assert encoder(alert) == want
    else:
        with pytest.raises(want):
            encoder(alert)


def test_both_paths_write_a_json_line_go_can_read(encoder: Callable[[AlertData], bytes]) -> None:
    body = encoder(typical(3, value=1e-7))
    assert body.count(b"\n") == 1 and body.endswith(b"\n")
    doc = json.loads(body)
    assert doc["level"] == "CRITICAL" and doc["previousLevel"] == "WARNING" and doc["recoverable"] is True
    assert doc["time"] == "2026-01-01T00:00:00.0030015Z"
    assert math.isclose(doc["data"]["series"][0]["values"][0][1], 1e-7)
    assert b",1e-7," in body
