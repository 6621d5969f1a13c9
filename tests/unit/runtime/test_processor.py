"""The engine's pure core: events, state changes, restore and abort."""

from __future__ import annotations

from typing import Any

from kapacity.gotypes import Level
from kapacity.models import Point
from kapacity.runtime.processor import PartitionProcessor, TaskSet

SCRIPT = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)


def _tasks(script: str = SCRIPT) -> TaskSet:
    ts = TaskSet()
    ts.apply("t1", {"id": "t1", "script": script})
    return ts


def _p(host: str, v: float, t: int) -> Point:
    return Point("cpu", {"host": host}, {"v": v}, t * 10**9)


def _run(proc: PartitionProcessor, points: list[Point], first: int = 0) -> list[tuple[str, Level, Level]]:
    out = []
    for i, p in enumerate(points):
        for ev in proc.process(first + i, p):
            out.append((ev.alert.id, ev.alert.level, ev.alert.previous_level))
        proc.apply(proc.drain_changes())
    return out


def test_events_carry_stable_ids_and_levels() -> None:
    proc = PartitionProcessor(2, _tasks())
    ev = proc.process(7, _p("a", 50, 1))
    assert [(e.eid, e.alert.id, e.alert.level, e.publish, e.topic) for e in ev] == [
        ("2:7:t1:0", "cpu:host=a", Level.CRITICAL, True, "cpu")
    ]


def test_only_changed_groups_are_written() -> None:
    proc = PartitionProcessor(0, _tasks())
    proc.process(0, _p("a", 1, 1))
    assert proc.drain_changes() == {}  # OK after OK: nothing changed
    proc.process(1, _p("a", 50, 2))
    changes = proc.drain_changes()
    assert list(changes) == ["t1/alert2/host=a"]
    assert changes["t1/alert2/host=a"]["l"] == {"cpu:host=a": 3}


def test_restored_state_continues_where_it_stopped() -> None:
    points = [_p("a", 50, 1), _p("b", 50, 2), _p("a", 1, 3), _p("b", 60, 4), _p("b", 1, 5), _p("a", 70, 6)]
    whole = _run(PartitionProcessor(0, _tasks()), points)
    first = PartitionProcessor(0, _tasks())
    head = _run(first, points[:3])
    records: dict[str, Any] = dict(first.records)
    tail = _run(PartitionProcessor(0, _tasks(), records), points[3:], 3)
    assert head + tail == whole
    assert tail[0] == ("cpu:host=b", Level.OK, Level.CRITICAL)  # a recovery after restore


def test_abort_goes_back_to_the_committed_state() -> None:
    proc = PartitionProcessor(0, _tasks())
    _run(proc, [_p("a", 50, 1)])
    proc.process(1, _p("a", 1, 2))  # would recover...
    proc.drain_changes()
    proc.abort()  # ...but the transaction was aborted
    again = proc.process(1, _p("a", 1, 2))
    assert [(e.eid, e.alert.level, e.alert.previous_level) for e in again] == [("0:1:t1:0", Level.OK, Level.CRITICAL)]


def test_disabled_deleted_and_broken_tasks() -> None:
    ts = _tasks()
    proc = PartitionProcessor(0, ts)
    ts.apply("bad", {"id": "bad", "script": "stream|nosuchnode()"})
    assert proc.process(0, _p("a", 50, 1))  # t1 still runs
    assert "bad" in ts.errors
    ts.apply("t1", {"id": "t1", "script": SCRIPT, "enabled": False})
    assert proc.process(1, _p("b", 50, 2)) == []
    ts.apply("t1", None)
    assert "t1" not in ts.defs and proc.process(2, _p("c", 50, 3)) == []


def test_dbrp_routing() -> None:
    ts = TaskSet()
    ts.apply("t1", {"id": "t1", "script": SCRIPT, "dbrps": [["telegraf", "autogen"]]})
    proc = PartitionProcessor(0, ts)
    assert proc.process(0, _p("a", 50, 1)) == []
    p = Point("cpu", {"host": "a"}, {"v": 50.0}, 10**9, "telegraf", "autogen")
    assert len(proc.process(1, p)) == 1
