"""Shared data for the template tests: one Kapacitor alert and a plain map."""

from __future__ import annotations

from typing import Any

from kapacity.alert.event import AlertData, Result, Series
from kapacity.gotypes import Duration, Level, Time

# 2023-11-14T22:13:20.123Z
ALERT_TIME_NS = 1_700_000_000_123_000_000


def make_alert() -> AlertData:
    series = Series(
        name="cpu",
        tags={"host": "server01", "region": "eu"},
        columns=["time", "value"],
        values=[[Time(ALERT_TIME_NS), 91.456]],
    )
    return AlertData(
        id="cpu:host=server01",
        message="cpu is high",
        details="",
        time=Time(ALERT_TIME_NS),
        duration=Duration(90_500_000_000),
        level=Level.CRITICAL,
        data=Result(series=[series]),
        previous_level=Level.WARNING,
    )


MAP_DATA: dict[str, Any] = {
    "A": {"B": {"C": "deep"}},
    "L": [1, 2, 3],
    "E": [],
    "M": {"b": 2, "a": 1},
    "Tags": {"host": "h1"},
    "S": "str",
    "F": 1.5,
    "I": 7,
    "N": None,
    "T": True,
    "Z": 0,
}
