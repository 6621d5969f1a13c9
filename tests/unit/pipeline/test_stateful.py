"""Stateful lambda functions (``sigma``, ``count``, ``spread``) keep their state per group,
and see every point exactly once, even when another expression of the node fails."""

from __future__ import annotations

from typing import Any

from kapacity.models import Point
from kapacity.pipeline import build_task

S = 1_000_000_000


def cpu(t: int, host: str = "a", **fields: Any) -> Point:
    return Point("cpu", {"host": host}, fields, time=t * S)


def levels(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.group, e.data.level.name) for e in events]


def test_alert_count_is_per_group() -> None:
    task = build_task("stream|from().groupBy('host')|alert().crit(lambda: count() >= 3)", task_name="t")
    events = []
    for t, host in enumerate(["a", "b", "a", "b", "a", "b"]):
        events += task.process(cpu(t, host=host, v=1.0))
    # One counter for both hosts would reach 3 at the third point (host a, second point).
    assert [(e.group, e.data.level.name, e.data.time.ns // S) for e in events] == [
        ("host=a", "CRITICAL", 4), ("host=b", "CRITICAL", 5)]


def test_alert_spread_is_per_group() -> None:
    script = "stream|from().groupBy('host')|alert().crit(lambda: spread(\"v\") > 5.0)"
    task = build_task(script, task_name="t")
    events = []
    for t, (host, v) in enumerate([("a", 1.0), ("b", 10.0), ("a", 2.0), ("b", 11.0), ("a", 9.0)]):
        events += task.process(cpu(t, host=host, v=v))
    assert levels(events) == [("host=a", "CRITICAL")]


def test_where_sigma_is_per_group() -> None:
    script = """
    stream|from().groupBy('host')
      |where(lambda: sigma("v") > 1.0)
      |alert().crit(lambda: TRUE)
    """
    task = build_task(script, task_name="t")
    events = []
    # Host a is steady; host b jumps. A shared sigma would see a's values jump too.
    for t, (host, v) in enumerate([("a", 10.0), ("b", 100.0), ("a", 10.0), ("b", 101.0), ("a", 10.0),
                                   ("b", 99.0), ("b", 100.0), ("b", 500.0), ("a", 10.0)]):
        events += task.process(cpu(t, host=host, v=v))
    assert levels(events) == [("host=b", "CRITICAL")]


def test_eval_count_is_per_group() -> None:
    script = "stream|from().groupBy('host')|eval(lambda: count()).as('n')|httpOut('out')"
    task = build_task(script, task_name="t")
    for t, host in enumerate(["a", "a", "b", "a"]):
        task.process(cpu(t, host=host, v=1.0))
    out = task.http_out("out")
    assert out is not None
    assert {s.tags["host"]: s.values[0][1] for s in out.series} == {"a": 3, "b": 1}


def test_from_where_count_is_per_group() -> None:
    script = "stream|from().groupBy('host').where(lambda: count() > 1)|httpOut('out')"
    task = build_task(script, task_name="t")
    for t, host in enumerate(["a", "b"]):
        task.process(cpu(t, host=host, v=1.0))
    out = task.http_out("out")
    assert out is not None and out.series == []
    task.process(cpu(3, host="b", v=1.0))
    out = task.http_out("out")
    assert out is not None and [s.tags["host"] for s in out.series] == ["b"]


def test_failing_level_does_not_count_a_point_twice() -> None:
    # crit fails on every point (no field "missing"); warn's count() must still see each
    # point once, so the third point, not the second, reaches WARNING.
    script = "stream|from()|alert().crit(lambda: \"missing\" > 1).warn(lambda: count() >= 3)"
    task = build_task(script, task_name="t")
    got = [levels(task.process(cpu(t, v=1.0))) for t in range(4)]
    assert got == [[], [], [("", "WARNING")], [("", "WARNING")]]
    assert task.stats()["alert2"]["errors"] == 4


def test_reset_path_evaluates_current_level_once() -> None:
    # At WARNING with a passing reset, Kapacitor would evaluate warn again in its second
    # pass; here each expression sees a point once: count() advances by one per point.
    script = """
    stream|from()
      |alert()
        .warn(lambda: count() % 2 == 1)
        .warnReset(lambda: TRUE)
        .info(lambda: FALSE)
    """
    task = build_task(script, task_name="t")
    got = [levels(task.process(cpu(t, v=1.0))) for t in range(4)]
    assert got == [[("", "WARNING")], [("", "OK")], [("", "WARNING")], [("", "OK")]]
