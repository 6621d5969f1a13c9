"""The fused fast path of ``from → where → alert``: which chains are fused, and that a fused
task produces exactly what the node-by-node graph produces (events, stats, state)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapacity.models import Point
from kapacity.pipeline import AlertEvent, Task, build_task

S = 1_000_000_000

BENCH_SHAPE = """
stream
    |from()
        .measurement('cpu'){group}
    |where(lambda: "host" != 'x')
    |alert()
        .info(lambda: "usage_user" > 70.0)
        .warn(lambda: "usage_user" > 80.0)
        .crit(lambda: "usage_user" > 90.0)
"""

RESETS = """
stream
    |from().database('db').measurement('cpu').where(lambda: "v" >= 0){group}
    |where(lambda: "host" =~ /^s/)
    |where(lambda: isPresent("v"))
    |alert()
        .info(lambda: "v" > 60).infoReset(lambda: "v" < 50)
        .warn(lambda: "v" > 70).warnReset(lambda: "v" < 60)
        .crit(lambda: "v" > 80).critReset(lambda: "v" < 70)
        .stateChangesOnly()
        .message('{{ .ID }} {{ .Level }} {{ index .Fields "v" }}')
"""


def cpu(t: int, host: str = "s1", db: str = "db", name: str = "cpu", **fields: Any) -> Point:
    return Point(name, {"host": host}, fields, time=t * S, database=db)


def summary(events: list[AlertEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.data.id, e.data.level.name, e.data.previous_level.name, e.data.message, e.data.time.ns,
         e.data.duration.ns, e.group, e.changed)
        for e in events
    ]


def both(script: str, **kw: Any) -> tuple[Task, Task]:
    fused = build_task(script, task_name="t", **kw)
    plain = build_task(script, task_name="t", fused=False, **kw)
    return fused, plain


@pytest.mark.parametrize("group", ["", "\n        .groupBy('host')", "\n        .groupBy('host', 'dc')",
                                   "\n        .groupBy(*)", "\n        .groupByMeasurement()"])
def test_bench_shape_is_fused(group: str) -> None:
    fused, plain = both(BENCH_SHAPE.format(group=group))
    assert len(fused.graph.fused) == 1 and not plain.graph.fused
    assert "def _accept(p):" in fused.graph.fused[0].source


@pytest.mark.parametrize("script", [
    # A stateful expression keeps per-group state, which inline code cannot.
    "stream|from()|alert().crit(lambda: sigma(\"v\") > 2)",
    "stream|from()|where(lambda: count() > 1)|alert().crit(lambda: \"v\" > 2)",
    # Flapping needs every point recorded in the history ring.
    "stream|from()|alert().crit(lambda: \"v\" > 2).flapping(0.2, 0.5)",
    "stream|from().truncate(1s)|alert().crit(lambda: \"v\" > 2)",
    "stream|from()|eval(lambda: \"v\" * 2).as('v')|alert().crit(lambda: \"v\" > 2)",
    "stream|from()|window().period(1s)|alert().crit(lambda: \"v\" > 2)",
    # from() with two children.
    "var s = stream|from()\ns|alert().crit(lambda: \"v\" > 2)\ns|httpOut('x')",
])
def test_other_shapes_are_not_fused(script: str) -> None:
    task = build_task(script, task_name="t")
    assert task.graph.alerts and not task.graph.fused


def test_healthy_points_cost_no_state_and_count_exactly() -> None:
    fused, plain = both(BENCH_SHAPE.format(group=""))
    points = [cpu(i, host="x" if i % 5 == 0 else "a", usage_user=30.0) for i in range(1, 21)]
    points.append(cpu(21, name="mem", usage_user=99.0))
    assert fused.process_many(points) == [] == plain.process_many(points)
    assert fused.stats() == plain.stats()
    assert fused.stats()["where2"]["points_in"] == 20 and fused.stats()["where2"]["points_out"] == 16
    assert fused.snapshot() == plain.snapshot()


def test_alerting_stream_matches_unfused() -> None:
    fused, plain = both(RESETS.format(group="\n        .groupBy('host')"))
    values = [61, 73, 64, 85, 62, 56, 47, 10, 95, 95, 30]
    points = []
    for i, v in enumerate(values):
        points.append(cpu(i, host="s1", v=v))
        points.append(cpu(i, host="s2", v=100 - v))
        points.append(cpu(i, host="other", v=v))  # filtered by the second where
        points.append(cpu(i, host="s3", db="x", v=v))  # another database
    events = summary(fused.process_many(points))
    assert events == summary(plain.process_many(points))
    assert [e[1] for e in events if e[0] == "cpu:host=s1"] == [
        "INFO", "WARNING", "CRITICAL", "INFO", "OK", "CRITICAL", "OK"]
    assert fused.stats() == plain.stats()
    assert fused.snapshot() == plain.snapshot()


def test_lambda_error_is_logged_once_and_counted_once(caplog: pytest.LogCaptureFixture) -> None:
    script = "stream|from().measurement('cpu')|alert().warn(lambda: \"v\" > 1).crit(lambda: \"missing\" > 1)"
    fused, plain = both(script)
    points = [cpu(1, v=0), cpu(2, v=0), cpu(3, v=5), cpu(4, v=0)]
    with caplog.at_level(logging.WARNING, logger="kapacity.pipeline"):
        got = summary(fused.process_many(points))
    logged = [r for r in caplog.records if "missing" in r.getMessage()]
    assert got == summary(plain.process_many(points))
    assert [e[1] for e in got] == ["WARNING", "OK"]
    # Every point's crit raises once: counted per evaluation, logged once (rate limit).
    assert fused.stats()["alert2"]["errors"] == 4 == plain.stats()["alert2"]["errors"]
    assert len(logged) == 1


def test_where_error_falls_back_to_the_exact_path() -> None:
    fused, plain = both("stream|from()|where(lambda: \"v\" > 1)|alert().crit(lambda: \"v\" > 5)")
    points = [cpu(1, v=2), cpu(2, w=1), cpu(3, v="text"), cpu(4, v=9)]
    assert summary(fused.process_many(points)) == summary(plain.process_many(points))
    assert fused.stats() == plain.stats()
    assert fused.stats()["where2"]["errors"] == 2


def test_restore_is_seen_by_the_fused_path() -> None:
    script = BENCH_SHAPE.format(group="")
    first = build_task(script, task_name="t")
    assert [e.data.level.name for e in first.process_many([cpu(1, usage_user=95.0)])] == ["CRITICAL"]
    second = build_task(script, task_name="t")
    second.restore(first.snapshot())
    events = second.process_many([cpu(2, usage_user=10.0)])
    assert [(e.data.level.name, e.data.duration.ns) for e in events] == [("OK", 1 * S)]


def test_sink_receives_fused_events() -> None:
    seen: list[AlertEvent] = []
    task = build_task(BENCH_SHAPE.format(group=""), task_name="t", sink=seen.append)
    assert task.process(cpu(1, usage_user=85.0)) == []
    assert [e.data.level.name for e in seen] == ["WARNING"]


_VALUES = st.one_of(st.floats(min_value=0, max_value=100, allow_nan=False), st.integers(0, 100), st.just("s"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", "x"]), st.sampled_from(["cpu", "mem"]),
                          st.one_of(st.none(), _VALUES)), max_size=40),
       st.sampled_from(["", "\n        .groupBy('host')"]))
def test_fused_equals_unfused_on_random_streams(rows: list[tuple[str, str, Any]], group: str) -> None:
    fused, plain = both(RESETS.format(group=group))
    points = [cpu(i, host=h, name=m, **({} if v is None else {"v": v})) for i, (h, m, v) in enumerate(rows)]
    assert summary(fused.process_many(points)) == summary(plain.process_many(points))
    assert fused.stats() == plain.stats()
    assert fused.snapshot() == plain.snapshot()


def _count_fallbacks(task: Task) -> list[Point]:
    """Points the fused chain hands to the exact (node-by-node) path, recorded from now on."""
    chain = task.graph.fused[0]
    namespace = chain.accept.__globals__
    slow = namespace["_slow"]
    seen: list[Point] = []

    def counting(p: Point) -> None:
        seen.append(p)
        slow(p)

    namespace["_slow"] = counting
    return seen


@pytest.mark.parametrize("group", ["\n        .groupBy('host')", "\n        .groupBy('host', 'dc')"])
def test_new_groups_and_alerts_take_no_fallback(group: str) -> None:
    fused, plain = both(BENCH_SHAPE.format(group=group))
    fallbacks = _count_fallbacks(fused)
    # Every point of a group at OK (new groups included) stays on the fused path, alerting
    # or not; only a group at a non-OK level (resets apply) takes the exact path.
    points = [cpu(i, host=f"h{i}", usage_user=95.0 if i % 5 == 0 else 30.0) for i in range(1, 30)]
    assert summary(fused.process_many(points)) == summary(plain.process_many(points))
    assert fallbacks == []
    again = [cpu(40 + i, host=f"h{i}", usage_user=30.0) for i in range(1, 30)]
    assert summary(fused.process_many(again)) == summary(plain.process_many(again))
    assert fallbacks == [p for p in again if p.tags["host"] in {"h5", "h10", "h15", "h20", "h25"}]
    assert fused.stats() == plain.stats()
    assert fused.snapshot() == plain.snapshot()


def test_restore_replaces_the_group_shortcut() -> None:
    script = BENCH_SHAPE.format(group="\n        .groupBy('host')")
    task = build_task(script, task_name="t")
    assert task.process_many([cpu(1, host="a", usage_user=10.0)]) == []  # group 'a' known, OK
    critical = build_task(script, task_name="t")
    critical.process_many([cpu(1, host="a", usage_user=95.0)])
    task.restore(critical.snapshot())
    # The restored state (CRITICAL) is the one used, not the state cached before the restore.
    events = task.process_many([cpu(2, host="a", usage_user=10.0)])
    assert [(e.data.level.name, e.data.previous_level.name) for e in events] == [("OK", "CRITICAL")]


def test_group_shortcut_is_bounded() -> None:
    fused, plain = both(BENCH_SHAPE.format(group="\n        .groupBy('host')"))
    namespace = fused.graph.fused[0].accept.__globals__
    namespace["_SHORT_MAX"] = 3
    points = [cpu(i, host=f"h{i % 10}", usage_user=95.0 if i % 4 == 0 else 30.0) for i in range(1, 80)]
    assert summary(fused.process_many(points)) == summary(plain.process_many(points))
    assert len(namespace["_short"]) <= 3
    assert fused.snapshot() == plain.snapshot()


def test_batch_counts_survive_an_exception_mid_batch() -> None:
    class Boom(Exception):
        pass

    def sink(event: AlertEvent) -> None:
        if event.data.level.name == "CRITICAL":
            raise Boom

    script = BENCH_SHAPE.format(group="\n        .groupBy('host')")
    fused = build_task(script, task_name="t", sink=sink)
    plain = build_task(script, task_name="t", sink=sink, fused=False)
    points = [cpu(i, host=f"h{i % 3}", usage_user=30.0) for i in range(1, 10)]
    points.append(cpu(10, host="h0", usage_user=95.0))
    points += [cpu(i, host="h1", usage_user=30.0) for i in range(11, 15)]
    for task in (fused, plain):
        with pytest.raises(Boom):
            task.process_many(points)
    assert fused.stats() == plain.stats()
    assert fused.stats()["alert3"]["points_in"] == 10


def test_expressions_reading_the_time_stay_on_the_fused_path() -> None:
    script = """stream
    |from().measurement('cpu').groupBy('host').where(lambda: hour("time") >= 0)
    |alert().crit(lambda: unixNano("time") > 5000000000 AND "usage_user" > 90)"""
    fused, plain = both(script)
    fallbacks = _count_fallbacks(fused)
    points = [cpu(i, host=f"h{i}", usage_user=95.0) for i in range(1, 10)]
    assert summary(fused.process_many(points)) == summary(plain.process_many(points))
    assert fallbacks == []
    assert fused.stats() == plain.stats()
