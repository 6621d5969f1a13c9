"""``|window().periodCount(n).everyCount(m)``: windows counted in points, per group, and the
define-time checks Kapacitor makes on them."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.gotypes import Time
from kapacity.models import Point
from kapacity.pipeline import PipelineError, build_task

S = 1_000_000_000


def cpu(t: int, host: str = "a", **fields: Any) -> Point:
    return Point("cpu", {"host": host}, fields, time=t * S)


def windows(script: str, points: list[Point]) -> list[list[tuple[int, Any]]]:
    """The windows the task emitted, as (time s, v) rows; each window's stamp is checked too."""
    seen: list[list[tuple[int, Any]]] = []
    task = build_task(script + "|httpOut('out')", task_name="t")
    last = None
    for p in points:
        task.process(p)
        out = task.http_out("out")
        assert out is not None
        if out.series and out.series[0].values != last:
            last = out.series[0].values
            rows = [(r[0].ns // S, r[1]) for r in last]
            seen.append(rows)
    return seen


def test_sliding_count_window() -> None:
    got = windows("stream|from()|window().periodCount(3).everyCount(1)",
                  [cpu(t, v=t) for t in range(1, 6)])
    assert got == [[(1, 1)], [(1, 1), (2, 2)], [(1, 1), (2, 2), (3, 3)],
                   [(2, 2), (3, 3), (4, 4)], [(3, 3), (4, 4), (5, 5)]]


def test_tumbling_count_window() -> None:
    got = windows("stream|from()|window().periodCount(2).everyCount(2)",
                  [cpu(t, v=t) for t in range(1, 7)])
    assert got == [[(1, 1), (2, 2)], [(3, 3), (4, 4)], [(5, 5), (6, 6)]]


def test_fill_period_waits_for_period_count_points() -> None:
    got = windows("stream|from()|window().periodCount(3).everyCount(1).fillPeriod()",
                  [cpu(t, v=t) for t in range(1, 5)])
    assert got == [[(1, 1), (2, 2), (3, 3)], [(2, 2), (3, 3), (4, 4)]]


def test_count_window_is_stamped_with_its_newest_point_and_feeds_aggregates() -> None:
    task = build_task("stream|from()|window().periodCount(2).everyCount(2)|mean('v')|httpOut('out')",
                      task_name="t")
    for t, v in [(1, 2.0), (5, 4.0)]:
        task.process(cpu(t, v=v))
    out = task.http_out("out")
    assert out is not None and out.series[0].values == [[Time(5 * S), 3.0]]


def test_count_windows_are_per_group() -> None:
    script = "stream|from().groupBy('host')|window().periodCount(2).everyCount(2)|count('v')|httpOut('out')"
    task = build_task(script, task_name="t")
    for t, host in enumerate(["a", "b", "a", "a", "b"]):
        task.process(cpu(t, host=host, v=1.0))
    out = task.http_out("out")
    assert out is not None
    assert {s.tags["host"]: s.values[0][0].ns // S for s in out.series} == {"a": 2, "b": 4}
    assert task.stats()["window2"]["groups"] == 2


@pytest.mark.parametrize(("props", "message"), [
    (".period(10s).periodCount(3).everyCount(1)", "one windowing scheme"),
    (".every(10s).periodCount(3).everyCount(1)", "one windowing scheme"),
    (".periodCount(3)", "everyCount must be greater than zero"),
    (".periodCount(3).everyCount(0)", "everyCount must be greater than zero"),
    (".periodCount(0).everyCount(1)", "periodCount must be greater than zero"),
    (".everyCount(2)", "needs a .periodCount()"),
    (".periodCount(3).everyCount(1).align()", "can only align windows based off time"),
    (".periodCount(1s).everyCount(1)", "expected an integer"),
])
def test_invalid_count_windows_are_rejected_at_define_time(props: str, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        build_task(f"stream|from()\n|window(){props}", task_name="t")
    assert message in str(info.value)
    assert "line 2" in str(info.value)
