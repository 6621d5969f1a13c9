"""The engine's per-point hot path: state records built once per batch, the fast point decoder."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.models import Point
from kapacity.queue.base import Message
from kapacity.queue.kinds import Kind
from kapacity.runtime.engine import _point_outputs, _process_points
from kapacity.runtime.processor import PartitionProcessor, TaskSet
from kapacity.runtime.records import RecordError, _checked_point, point_from_value, point_value

SCRIPT = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)


def _tasks() -> TaskSet:
    ts = TaskSet()
    ts.apply("t1", {"id": "t1", "script": SCRIPT})
    return ts


def _points(n: int, hosts: int) -> list[Point]:
    return [Point("cpu", {"host": f"h{i % hosts}"}, {"v": 50.0 if (i // 7) % 2 else 1.0}, (i + 1) * 10**9)
            for i in range(n)]


def test_one_drain_per_batch_writes_what_a_drain_per_point_wrote() -> None:
    points = _points(120, 4)
    per_point, per_batch = PartitionProcessor(0, _tasks()), PartitionProcessor(0, _tasks())
    events_a, events_b = [], []
    for i, p in enumerate(points):
        events_a += [e.value() for e in per_point.process(i, p)]
        per_point.apply(per_point.drain_changes())
    for start in range(0, len(points), 40):
        for i in range(start, start + 40):
            events_b += [e.value() for e in per_batch.process(i, points[i])]
        per_batch.apply(per_batch.drain_changes())
    assert events_a == events_b and events_a  # same events, same ids
    assert per_point.records == per_batch.records
    assert len(per_batch.records) == 4  # one record per group


def test_a_group_touched_many_times_in_a_batch_is_one_record() -> None:
    proc = PartitionProcessor(0, _tasks())
    for i in range(10):
        proc.process(i, Point("cpu", {"host": "a"}, {"v": 50.0 if i % 2 else 1.0}, (i + 1) * 10**9))
    changes = proc.drain_changes()
    assert list(changes) == ["t1/alert2/host=a"]
    assert changes["t1/alert2/host=a"]["l"] == {"cpu:host=a": 3}  # the last level (i = 9: crit)
    assert proc.drain_changes() == {}  # drained


def test_changes_before_a_redefinition_in_the_same_batch_are_kept() -> None:
    ts = _tasks()
    proc = PartitionProcessor(0, ts)
    proc.process(0, Point("cpu", {"host": "a"}, {"v": 50.0}, 10**9))
    ts.apply("t1", {"id": "t1", "script": SCRIPT.replace("> 10", "> 20")})  # rebuilt at the next point
    proc.process(1, Point("cpu", {"host": "b"}, {"v": 1.0}, 2 * 10**9))
    changes = proc.drain_changes()
    assert changes["t1/alert2/host=a"]["l"] == {"cpu:host=a": 3}


@pytest.mark.parametrize("value", [
    {"m": "cpu", "t": {"h": "a"}, "f": {"v": 1.5}, "ts": 5, "db": "d", "rp": "r"},
    {"m": "cpu", "f": {"v": 1}, "ts": 5},
    {"m": "cpu", "t": None, "f": {}, "ts": 0},
    {"m": "cpu", "t": {}, "f": {"v": "x"}, "ts": True},  # bool is an int (JSON true): as before
    {"m": "cpu", "t": {}, "f": {"v": 1}, "ts": 5, "db": None},  # odd, but decoded as before
])
def test_fast_point_decoder_agrees_with_the_checked_one(value: dict[str, Any]) -> None:
    assert point_from_value(dict(value)) == _checked_point(dict(value))


@pytest.mark.parametrize(("value", "field"), [
    ({"t": {}, "f": {"v": 1}, "ts": 5}, "'m'"),
    ({"m": "cpu", "t": {}, "f": [1], "ts": 5}, "'f'"),
    ({"m": "cpu", "t": {}, "f": {"v": 1}, "ts": "5"}, "'ts'"),
    ([1, 2], "'m'"),
])
def test_bad_points_still_name_the_field(value: Any, field: str) -> None:
    with pytest.raises(RecordError, match=field):
        point_from_value(value)


def test_point_round_trip() -> None:
    p = Point("cpu", {"host": "a"}, {"v": 1.0, "n": 3}, 7, "telegraf", "autogen")
    assert point_from_value(point_value(p)) == p


def test_point_outputs_match_the_generator_and_dead_letter_poison() -> None:
    proc_a, proc_b = PartitionProcessor(0, _tasks()), PartitionProcessor(0, _tasks())
    msgs = [Message(Kind.POINTS, "cpu,host=a", point_value(p), i) for i, p in enumerate(_points(30, 2))]
    msgs.insert(3, Message(Kind.POINTS, "bad", {"m": 1}, 99))
    listed = [o for m in msgs for o in _point_outputs(proc_a, m, None)]
    assert listed == list(_process_points(proc_b, msgs))
    assert [o[0] for o in listed].count(Kind.DEAD_LETTER) == 1
    assert Kind.EVENTS in {o[0] for o in listed}
