"""Deadman in Kafka mode (pure parts): a task with timed nodes is regrouped, each group's
deadman fires on the one partition that holds the group, and a stream that delivered
nothing at all is reported by one partition only."""

from __future__ import annotations

import pytest

from kapacity.gotypes import Level
from kapacity.models import Point
from kapacity.runtime.processor import PartitionProcessor, TaskSet
from kapacity.runtime.regroup import Router
from kapacity.runtime.ticks import QuietOwners

S = 10**9
GROUPED = "stream|from().measurement('cpu').groupBy('host')|deadman(0.0, 2s)"
UNGROUPED = "stream|from().measurement('cpu')|deadman(0.0, 2s)"


def _tasks(script: str) -> TaskSet:
    ts = TaskSet()
    ts.apply("t", {"id": "t", "script": script})
    return ts


def _levels(proc: PartitionProcessor, start_s: int, seconds: int, owner: bool) -> list[tuple[str, Level]]:
    out = []
    for s in range(start_s, start_s + seconds):
        out += [(ev.alert.id, ev.alert.level) for ev in proc.tick(s * S, lambda tid: owner)]
    return out


@pytest.mark.parametrize("script", [GROUPED, UNGROUPED, "stream|from().measurement('cpu').groupBy(*)|deadman(0.0, 2s)"])
def test_a_task_with_a_deadman_is_regrouped_even_when_series_aligned(script: str) -> None:
    router = Router(_tasks(script))
    d = router._tasks.defs["t"]
    assert router.regrouped(d) and router.routes(Point("cpu", {"host": "a"}, {"v": 1.0}, 0))


def test_only_a_task_whose_points_share_one_key_has_a_quiet_key() -> None:
    assert Router(_tasks(UNGROUPED)).quiet_key("t") == "t/cpu"
    assert Router(_tasks(GROUPED)).quiet_key("t") is None
    owners = QuietOwners(Router(_tasks(UNGROUPED)).quiet_key, "consistent_random", 4)
    assert owners("t") in range(4) and QuietOwners(Router(_tasks(GROUPED)).quiet_key, "consistent_random", 4)("t") is None


def test_a_quiet_group_fires_once_where_it_lives_and_recovers_when_points_return() -> None:
    ts = _tasks(GROUPED)
    home, other = PartitionProcessor(0, ts, select=lambda d: True), PartitionProcessor(1, ts, select=lambda d: True)
    assert home.timed and other.timed
    home.process(0, Point("cpu", {"host": "a"}, {"v": 1.0}, 0))
    home.tick(0, lambda tid: False)  # the clock starts
    assert _levels(home, 1, 2, owner=False) == []  # points counted in the first interval
    fired = _levels(home, 3, 4, owner=False)  # critical at each interval while quiet
    assert fired and {lvl for _id, lvl in fired} == {Level.CRITICAL} and "host=a" in fired[0][0]
    assert _levels(other, 0, 8, owner=False) == []  # nothing of host a there, not the owner
    back: list[Level] = []
    for n in range(4):  # points again: the next check recovers
        home.process(1 + n, Point("cpu", {"host": "a"}, {"v": 1.0}, (7 + n) * S))
        back += [ev.alert.level for ev in home.tick((7 + n) * S, lambda tid: False)]
    assert back == [Level.OK]


def test_a_stream_that_delivered_nothing_is_reported_by_its_owner_only() -> None:
    ts = _tasks(UNGROUPED)
    owner, other = PartitionProcessor(0, ts, select=lambda d: True), PartitionProcessor(1, ts, select=lambda d: True)
    assert {lvl for _id, lvl in _levels(owner, 0, 8, owner=True)} == {Level.CRITICAL}
    assert _levels(other, 0, 8, owner=False) == []


def test_tick_events_have_ids_of_their_own_and_their_state_is_written() -> None:
    proc = PartitionProcessor(3, _tasks(UNGROUPED), select=lambda d: True, eid_prefix="r")
    events = [ev for s in range(8) for ev in proc.tick(s * S, lambda tid: True)]
    assert events and all(ev.eid.startswith("rt3:") for ev in events)
    assert len({ev.eid for ev in events}) == len(events)
    assert any(k.startswith("t/") for k in proc.drain_changes())
