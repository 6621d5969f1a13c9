"""The Kafka JSON body: the orjson fast path is byte-identical to the exact Go-style encoder."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kapacity.alert import event as event_module
from kapacity.alert.event import (
    AlertData,
    Result,
    Series,
    _encode_alert_json_fast,
    _rfc3339nano,
    encode_alert_json,
    encode_alert_json_exact,
)
from kapacity.gotypes import Duration, Level, Time

NS = 1_767_225_600_000_000_000

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-7, max_value=1e-5),
    st.sampled_from([0.0, -0.0, 10.0, 1e16, 1e21, 1.5e-6, 2.0**53]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(),
    st.builds(Time, st.integers(min_value=0, max_value=4_000_000_000 * 10**9)),
)


@st.composite
def alerts(draw: st.DrawFn) -> AlertData:
    fields = draw(st.lists(st.text(min_size=1, max_size=5), max_size=3, unique=True))
    series = Series(
        draw(st.text(max_size=8)),
        draw(st.dictionaries(st.text(max_size=5), st.text(max_size=8), max_size=3)),
        ["time", *sorted(fields)] if fields else [],
        [[Time(NS), *[draw(values) for _ in fields]]] if fields else [],
    )
    return AlertData(
        id=draw(st.text()),
        message=draw(st.text()),
        details=draw(st.text()),
        time=Time(draw(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))),
        duration=Duration(draw(st.integers(min_value=0, max_value=10**15))),
        level=draw(st.sampled_from(list(Level))),
        data=Result([series]),
        previous_level=draw(st.sampled_from(list(Level))),
        recoverable=draw(st.booleans()),
    )


@settings(max_examples=400, deadline=None)  # a loaded CI machine must not fail it on time
@given(alerts())
def test_fast_path_is_byte_identical_to_the_exact_encoder(alert: AlertData) -> None:
    assert encode_alert_json(alert) == encode_alert_json_exact(alert)


def test_common_alert_takes_the_fast_path_with_go_spelling() -> None:
    alert = AlertData(
        "cpu:host=a", "<b> & \u2028", "", Time(NS + 500), Duration(90 * 10**9), Level.CRITICAL,
        Result([Series("cpu", {"z": "1", "a": "2"}, ["time", "n", "v"], [[Time(NS), 10.0, 0.25]])]),
        Level.WARNING, False,
    )
    body = _encode_alert_json_fast(alert)
    assert body is not None
    assert body == (
        b'{"id":"cpu:host=a","message":"\\u003cb\\u003e \\u0026 \\u2028","details":"",'
        b'"time":"2026-01-01T00:00:00.0000005Z","duration":90000000000,"level":"CRITICAL",'
        b'"data":{"series":[{"name":"cpu","tags":{"a":"2","z":"1"},"columns":["time","n","v"],'
        b'"values":[["2026-01-01T00:00:00Z",10,0.25]]}]},"previousLevel":"WARNING","recoverable":false}\n'
    )
    assert json.loads(body)["data"]["series"][0]["values"][0][1] == 10


def test_values_go_spells_differently_fall_back_to_the_exact_encoder() -> None:
    for odd in (1e16, 1.5e-6, -0.0):
        alert = AlertData("x", "", "", Time(NS), Duration(0), Level.OK,
                          Result([Series("m", {}, ["time", "v"], [[Time(NS), odd]])]))
        assert _encode_alert_json_fast(alert) is None
        assert encode_alert_json(alert) == encode_alert_json_exact(alert)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-62_135_596_800 * 10**9, max_value=253_402_300_799 * 10**9 + 999_999_999))
def test_fast_time_formatting_matches_go_rfc3339nano(ns: int) -> None:
    assert _rfc3339nano(ns) == Time(ns).rfc3339nano()


def test_second_cache_stays_bounded() -> None:
    for s in range(event_module._SECONDS_MAX + 10):
        assert _rfc3339nano(s * 10**9 + 5) == Time(s * 10**9 + 5).rfc3339nano()
    assert len(event_module._SECONDS) <= event_module._SECONDS_MAX


def test_values_time_equal_to_the_alert_time_and_other_times() -> None:
    alert = AlertData("x", "", "", Time(NS + 1_000), Duration(0), Level.INFO,
                      Result([Series("m", {"b": "1", "a": "<&>"}, ["time", "v", "s", "n"],
                                     [[Time(NS + 1_000), 2.5, "\u2029", None], [Time(NS), -3.0, "", 7]])]))
    body = _encode_alert_json_fast(alert)
    assert body is not None and body == encode_alert_json_exact(alert)
    assert b'"tags":{"a":"\\u003c\\u0026\\u003e","b":"1"}' in body
    assert b'"values":[["2026-01-01T00:00:00.000001Z",2.5,"\\u2029",null],["2026-01-01T00:00:00Z",-3,"",7]]' in body
