"""Work-item records: keys that route, values that round-trip."""

from __future__ import annotations

import orjson
import pytest

from kapacity.alert.event import AlertData, Result, Series
from kapacity.gotypes import Duration, Level, Time
from kapacity.models import Point
from kapacity.runtime.records import (
    EventRecord,
    RecordError,
    TaskDefinition,
    alert_from_value,
    alert_value,
    point_from_value,
    point_value,
    series_key,
    split_state_key,
    state_key,
)


def test_series_key_is_independent_of_tag_order_and_escapes() -> None:
    a = Point("cpu", {"host": "a", "dc": "x"}, {"v": 1.0}, 1)
    b = Point("cpu", {"dc": "x", "host": "a"}, {"v": 2.0}, 2)
    assert series_key(a) == series_key(b) == "cpu,dc=x,host=a"
    assert series_key(Point("c p,u", {"k=1": "v,w"}, {}, 0)) == "c\\ p\\,u,k\\=1=v\\,w"
    assert series_key(Point("mem", {}, {"v": 1}, 0)) == "mem"


def test_point_round_trips_through_json() -> None:
    p = Point("cpu", {"host": "a"}, {"v": 1.5, "n": 3, "s": "x", "b": True}, 10**18, "db", "rp")
    back = point_from_value(orjson.loads(orjson.dumps(point_value(p))))
    assert back == p


def test_point_without_fields_names_the_field() -> None:
    with pytest.raises(RecordError, match="field 'f'"):
        point_from_value({"m": "cpu", "ts": 1})


def _alert() -> AlertData:
    series = Series("cpu", {"host": "a"}, ["time", "v"], [[Time(5 * 10**9), 42.5]])
    return AlertData("cpu:a", "msg", "det", Time(5 * 10**9), Duration(7), Level.CRITICAL, Result([series]),
                     Level.WARNING, False)


def test_alert_round_trips_with_time_column() -> None:
    a = _alert()
    back = alert_from_value(orjson.loads(orjson.dumps(alert_value(a))))
    assert back == a
    assert isinstance(back.data.series[0].values[0][0], Time)


def test_event_record_round_trips() -> None:
    rec = EventRecord("3:17:t:0", "t", "alert2", "cpu", True, (("kafka", {"topic": "x"}),), "cpu", {"host": "a"},
                      _alert())
    assert EventRecord.from_value(orjson.loads(orjson.dumps(rec.value()))) == rec


def test_state_key_keeps_slashes_in_groups() -> None:
    key = state_key("task", "alert2", "path=/a/b")
    assert split_state_key(key) == ("task", "alert2", "path=/a/b")
    with pytest.raises(RecordError):
        split_state_key("nogroup")


def test_task_definition_round_trips() -> None:
    d = TaskDefinition("t", "stream|from()", {"x": {"type": "int", "value": 1}}, (("db", "rp"),), False)
    assert TaskDefinition.from_value(orjson.loads(orjson.dumps(d.value()))) == d
