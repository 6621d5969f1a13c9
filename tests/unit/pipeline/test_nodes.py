"""Stream nodes observed through |httpOut: from, where, groupBy, eval, default, derivative,
stateDuration, stateCount, window and the aggregates."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.gotypes import Time
from kapacity.models import Point
from kapacity.pipeline import Task, build_task

S = 1_000_000_000


def run(script: str, points: list[Point], endpoint: str = "out") -> tuple[Task, list[dict[str, Any]]]:
    """Feed points one at a time; return the task and httpOut snapshots after each point."""
    task = build_task(script, task_name="t")
    seen = []
    for p in points:
        task.process(p)
        res = task.http_out(endpoint)
        assert res is not None
        seen.append({
            s.name + "|" + ",".join(f"{k}={v}" for k, v in sorted(s.tags.items())): s.values
            for s in res.series
        })
    return task, seen


def cpu(t: int, tags: dict[str, str] | None = None, **fields: Any) -> Point:
    return Point("cpu", dict(tags or {}), fields, time=t * S)


def test_from_filters_measurement_database_and_where() -> None:
    script = """
    stream|from().database('db').retentionPolicy('rp').measurement('cpu')
        .where(lambda: "host" == 'a').where(lambda: "v" > 1)
      |httpOut('out')
    """
    task = build_task(script, task_name="t")
    pts = [
        Point("cpu", {"host": "a"}, {"v": 2}, 1 * S, "db", "rp"),
        Point("cpu", {"host": "b"}, {"v": 2}, 2 * S, "db", "rp"),  # where host
        Point("cpu", {"host": "a"}, {"v": 0}, 3 * S, "db", "rp"),  # where v
        Point("mem", {"host": "a"}, {"v": 2}, 4 * S, "db", "rp"),  # measurement
        Point("cpu", {"host": "a"}, {"v": 2}, 5 * S, "other", "rp"),  # database
        Point("cpu", {"host": "a"}, {"v": 2}, 6 * S, "db", "x"),  # retention policy
    ]
    for p in pts:
        task.process(p)
    res = task.http_out("out")
    assert res is not None and res.series[0].values == [[Time(1 * S), 2]]
    stats = task.stats()["from1"]
    assert stats["points_in"] == 3 and stats["points_out"] == 1


def test_from_truncate_and_round() -> None:
    script = "stream|from().measurement('cpu').truncate(1m)|httpOut('out')"
    _, seen = run(script, [cpu(119, v=1)])
    assert seen[0]["cpu|"][0][0] == Time(60 * S)
    script = "stream|from().measurement('cpu').round(1m)|httpOut('out')"
    _, seen = run(script, [cpu(90, v=1)])
    assert seen[0]["cpu|"][0][0] == Time(120 * S)


def test_where_node_and_stats() -> None:
    task, seen = run("stream|from()|where(lambda: \"v\" > 5)|httpOut('out')", [cpu(1, v=1), cpu(2, v=9)])
    assert seen[0] == {} and seen[1]["cpu|"] == [[Time(2 * S), 9]]
    st = task.stats()["where2"]
    assert (st["points_in"], st["points_out"]) == (2, 1)


def test_where_missing_field_counts_error_and_drops() -> None:
    task, seen = run("stream|from()|where(lambda: \"nope\" > 5)|httpOut('out')", [cpu(1, v=1)])
    assert seen == [{}] and task.stats()["where2"]["errors"] == 1


def test_group_by_keeps_latest_per_group() -> None:
    script = "stream|from().groupBy('host')|httpOut('out')"
    _, seen = run(script, [cpu(1, {"host": "a"}, v=1), cpu(2, {"host": "b"}, v=2), cpu(3, {"host": "a"}, v=3)])
    assert seen[-1] == {"cpu|host=a": [[Time(3 * S), 3]], "cpu|host=b": [[Time(2 * S), 2]]}


def test_eval_as_keep_and_tags() -> None:
    script = """
    stream|from()
      |eval(lambda: "a" * 2.0, lambda: "doubled" + 1.0, lambda: 'hi').as('doubled', 'plus', 'label')
        .tags('label').keep('a', 'plus')
      |httpOut('out')
    """
    task = build_task(script, task_name="t")
    task.process(cpu(1, a=3.0, b=1.0))
    res = task.http_out("out")
    assert res is not None
    s = res.series[0]
    assert s.tags == {"label": "hi"}
    assert s.columns == ["time", "a", "plus"] and s.values == [[Time(S), 3.0, 7.0]]


def test_eval_without_keep_drops_other_fields() -> None:
    _, seen = run("stream|from()|eval(lambda: \"a\" + 1).as('b')|httpOut('out')", [cpu(1, a=1, c=5)])
    assert seen[0]["cpu|"] == [[Time(S), 2]]


def test_eval_keep_all() -> None:
    task = build_task("stream|from()|eval(lambda: \"a\" + 1).as('b').keep()|httpOut('out')", task_name="t")
    task.process(cpu(1, a=1))
    res = task.http_out("out")
    assert res is not None and res.series[0].columns == ["time", "a", "b"]


def test_eval_error_drops_point_and_counts() -> None:
    task, seen = run("stream|from()|eval(lambda: \"missing\" + 1).as('b').quiet()|httpOut('out')", [cpu(1, a=1)])
    assert seen == [{}] and task.stats()["eval2"]["errors"] == 1


def test_default_fills_missing_fields_and_tags() -> None:
    script = "stream|from()|default().field('v', 0.0).tag('dc', 'none')|httpOut('out')"
    task = build_task(script, task_name="t")
    task.process(cpu(1, {"dc": "x"}, w=1))
    res = task.http_out("out")
    assert res is not None
    assert res.series[0].tags == {"dc": "x"}
    assert res.series[0].columns == ["time", "v", "w"] and res.series[0].values[0][1:] == [0.0, 1]


def test_derivative_unit_and_non_negative() -> None:
    script = "stream|from()|derivative('v').unit(1m).nonNegative().as('rate')|httpOut('out')"
    task = build_task(script, task_name="t")
    outs = []
    for t, v in [(0, 10.0), (30, 20.0), (60, 5.0), (90, 6.0)]:
        task.process(cpu(t, v=v))
        res = task.http_out("out")
        outs.append(res.series[0].values[0] if res and res.series else None)
    assert outs[0] is None
    assert outs[1] == [Time(30 * S), 20.0, 20.0]  # +10 in 30s = 20/min
    assert outs[2] == outs[1]  # negative dropped
    assert outs[3] == [Time(90 * S), 2.0, 6.0]


def test_derivative_default_as_is_the_field() -> None:
    task = build_task("stream|from()|derivative('v')|httpOut('out')", task_name="t")
    task.process(cpu(0, v=1.0))
    task.process(cpu(2, v=5.0))
    res = task.http_out("out")
    assert res is not None and res.series[0].values == [[Time(2 * S), 2.0]]


def test_state_duration_and_count() -> None:
    script = """
    stream|from()
      |stateDuration(lambda: "v" > 10).unit(1s)
      |stateCount(lambda: "v" > 10).as('n')
      |httpOut('out')
    """
    task = build_task(script, task_name="t")
    got = []
    for t, v in [(0, 20), (5, 30), (7, 1), (9, 11)]:
        task.process(cpu(t, v=v))
        res = task.http_out("out")
        assert res is not None
        row = dict(zip(res.series[0].columns, res.series[0].values[0], strict=True))
        got.append((row["state_duration"], row["n"]))
    assert got == [(0.0, 1), (5.0, 2), (-1.0, -1), (0.0, 1)]


def test_window_every_and_period_with_mean() -> None:
    script = """
    stream|from()
      |window().period(10s).every(10s).align()
      |mean('v').as('m')
      |httpOut('out')
    """
    task = build_task(script, task_name="t")
    for t, v in [(1, 1.0), (5, 3.0), (9, 5.0)]:
        task.process(cpu(t, v=v))
    assert task.http_out("out") is not None and task.http_out("out").series == []  # type: ignore[union-attr]
    task.process(cpu(11, v=100.0))  # passes the emit time 10s: the window [0s, 10s) closes
    res = task.http_out("out")
    assert res is not None and res.series[0].values == [[Time(10 * S), 3.0]]


def test_window_sliding_period_longer_than_every() -> None:
    script = "stream|from()|window().period(4s).every(2s)|count('v')|httpOut('out')"
    task = build_task(script, task_name="t")
    counts = []
    for t in range(0, 9):
        task.process(cpu(t, v=1))
        res = task.http_out("out")
        counts.append(res.series[0].values[0][1] if res and res.series else None)
    # First emit at t=2 (first point + every), covering [-2s, 2s): rows 0,1.
    assert counts[2] == 2
    # At t=6, emit time 6s covers [2s, 6s): rows 2..5.
    assert counts[6] == 4


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        ("count('v')", 4),
        ("sum('v')", 12),
        ("mean('v')", 3.0),
        ("min('v')", 1),
        ("max('v')", 6),
        ("first('v')", 2),
        ("last('v')", 1),
        ("median('v')", 2.5),
        ("mode('v')", 2),
        ("spread('v')", 5),
        ("percentile('v', 50.0)", 2),
        ("stddev('v')", pytest.approx(2.1602468994692865)),
    ],
)
def test_aggregates(func: str, expected: Any) -> None:
    name = func.split("(")[0]
    script = f"stream|from()|window().period(10s).every(10s)|{func}|httpOut('out')"
    task = build_task(script, task_name="t")
    for t, v in [(0, 2), (1, 3), (2, 6), (3, 1), (10, 0)]:
        task.process(cpu(t, v=v))
    res = task.http_out("out")
    assert res is not None
    s = res.series[0]
    assert s.columns == ["time", name]
    assert s.values[0][1] == expected


def test_distinct_emits_one_row_per_value() -> None:
    script = "stream|from()|window().period(10s).every(10s)|distinct('v')|httpOut('out')"
    task = build_task(script, task_name="t")
    for t, v in [(0, 2), (1, 3), (2, 2), (10, 0)]:
        task.process(cpu(t, v=v))
    res = task.http_out("out")
    assert res is not None and [r[1] for r in res.series[0].values] == [2, 3]


def test_window_groups_are_independent() -> None:
    script = "stream|from().groupBy('host')|window().period(10s).every(10s)|sum('v')|httpOut('out')"
    task = build_task(script, task_name="t")
    for t, host, v in [(0, "a", 1), (1, "b", 10), (2, "a", 2), (10, "a", 0)]:
        task.process(cpu(t, {"host": host}, v=v))
    res = task.http_out("out")
    assert res is not None
    assert [(s.tags, s.values[0][1]) for s in res.series] == [({"host": "a"}, 3)]


def test_vars_in_script_and_lambdas() -> None:
    script = """
    var m = 'cpu'
    var limit = 5
    var period = 10s
    stream|from().measurement(m)|where(lambda: "v" > limit)|httpOut('out')
    """
    _, seen = run(script, [cpu(1, v=1), cpu(2, v=9)])
    assert seen[-1]["cpu|"] == [[Time(2 * S), 9]]


def test_template_task_vars() -> None:
    script = "var m string\nvar crit lambda\nstream|from().measurement(m)|where(crit)|httpOut('out')"
    task = build_task(script, task_name="t", vars={"m": {"type": "string", "value": "cpu"},
                                                    "crit": {"type": "lambda", "value": '"v" > 5'}})
    task.process(cpu(1, v=1))
    task.process(cpu(2, v=9))
    res = task.http_out("out")
    assert res is not None and res.series[0].values == [[Time(2 * S), 9]]


def test_dbrps_are_reported() -> None:
    task = build_task('dbrp "telegraf"."autogen"\nstream|from()|httpOut(\'out\')', task_name="t")
    assert task.dbrps == [("telegraf", "autogen")]


def test_group_by_star_exclude_and_missing_tags() -> None:
    script = "stream|from()|groupBy(*).exclude('region')|httpOut('out')"
    _, seen = run(script, [cpu(1, {"host": "a", "region": "x"}, v=1), cpu(2, {"host": "b"}, v=2)])
    assert sorted(seen[-1]) == ["cpu|host=a,region=x", "cpu|host=b"]
    task = build_task("stream|from().groupBy('host', 'dc')|alert().crit(lambda: TRUE)", task_name="t")
    events = task.process(cpu(1, {"host": "a"}, v=1))
    assert events[0].group == "dc=,host=a" and events[0].data.id == "cpu:dc=,host=a"


def test_group_by_measurement() -> None:
    task = build_task("stream|from().groupBy('host').groupByMeasurement()|alert().crit(lambda: TRUE)",
                      task_name="t")
    events = task.process(cpu(1, {"host": "a"}, v=1))
    assert events[0].group == "cpu\nhost=a"


def test_log_node_logs_and_passes_rows(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    task = build_task("stream|from()|log().prefix('P').level('WARN')|httpOut('out')", task_name="t")
    with caplog.at_level(logging.WARNING, logger="kapacity.task"):
        task.process(cpu(1, v=1))
    assert any("P" in r.getMessage() and "cpu" in r.getMessage() for r in caplog.records)
    assert task.http_out("out") is not None and task.http_out("out").series  # type: ignore[union-attr]


def test_lambda_errors_are_logged_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    task = build_task("stream|from()|where(lambda: \"missing\" > 1)|httpOut('out')", task_name="t")
    with caplog.at_level(logging.WARNING, logger="kapacity.pipeline"):
        for t in range(50):
            task.process(cpu(t, v=1))
    assert task.stats()["where2"]["errors"] == 50
    assert len([r for r in caplog.records if "where2" in r.getMessage()]) == 1


def test_unknown_http_out_endpoint_is_none() -> None:
    task = build_task("stream|from()|httpOut('a')", task_name="t")
    assert task.http_out("b") is None


def test_window_fill_period_waits_a_full_period() -> None:
    script = "stream|from()|window().period(10s).every(5s).fillPeriod()|count('v')|httpOut('out')"
    task = build_task(script, task_name="t")
    first_emit = None
    for t in range(0, 16):
        task.process(cpu(t, v=1))
        res = task.http_out("out")
        if first_emit is None and res is not None and res.series:
            first_emit = (t, res.series[0].values[0])
    # Without fillPeriod the first window would close at 5s; with it, after a full 10s.
    assert first_emit == (10, [Time(10 * S), 10])


def test_var_holding_a_node_and_list_var() -> None:
    script = """
    var dims = ['host']
    var data = stream|from().measurement('cpu').groupBy(dims)
    data|httpOut('out')
    """
    _, seen = run(script, [cpu(1, {"host": "a", "x": "y"}, v=1)])
    assert list(seen[0]) == ["cpu|host=a,x=y"]


def test_from_measurement_then_where_counts_exactly() -> None:
    # from().measurement()|where() takes a fused fast path: same results, same counters.
    script = "stream|from().measurement('cpu')|where(lambda: \"v\" > 5)|httpOut('out')"
    task = build_task(script, task_name="t")
    for p in [cpu(1, v=1), cpu(2, v=9), Point("mem", {}, {"v": 9}, 3 * S), cpu(4, w=1)]:
        task.process(p)
    res = task.http_out("out")
    assert res is not None and res.series[0].values == [[Time(2 * S), 9]]
    st = task.stats()
    assert (st["from1"]["points_in"], st["from1"]["points_out"]) == (3, 3)
    assert (st["where2"]["points_in"], st["where2"]["points_out"], st["where2"]["errors"]) == (3, 1, 1)
    assert st["httpOut3"]["points_in"] == 1
