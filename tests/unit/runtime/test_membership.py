"""Membership core: records, merging, staleness (pure; no queue, no clock)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kapacity.runtime.membership import (
    FORGET_AFTER_MS,
    LOST_AFTER_INTERVALS,
    MembershipView,
    make_record,
    stage_summary,
)

LOCAL: dict[str, Any] = {
    "instance": "a", "queue": "kafka", "accepting": True, "pending_points": 0,
    "stages": {
        "engine": {"partitions": [2, 0], "restoring": {1: 500}, "lag": {0: 4, 2: 6}, "events": 10,
                   "points": 99, "tasks": ["cpu", "mem"], "task_errors": [], "handled": 99, "errors": 0,
                   "idle": False},
        "delivery": {"partitions": [1], "lag": {1: 0}, "events": 10, "delivered": 10, "handled": 10,
                     "errors": 0, "idle": True},
    },
}


def _record(name: str = "a", *, seen: int = 10_000, interval: int = 2_000, state: str = "running",
            started: int = 1_000) -> dict[str, Any]:
    return make_record({**LOCAL, "instance": name}, host="h", pid=7, started_ms=started, now_ms=seen,
                       interval_ms=interval, state=state)


def test_stage_summary_keeps_partitions_lag_restoring_and_counters() -> None:
    s = stage_summary(LOCAL["stages"]["engine"])
    assert s == {"partitions": [0, 2], "lag": {"0": 4, "2": 6}, "lag_total": 10, "restoring": {"1": 500},
                 "events": 10, "points": 99, "handled": 99, "errors": 0, "idle": False,
                 "tasks": 2, "task_errors": 0}


def test_stage_summary_of_a_failing_stage_is_its_error() -> None:
    assert stage_summary({"error": "rebalancing", "handled": 3}) == {"error": "rebalancing"}


def test_a_record_is_the_same_after_a_json_round_trip() -> None:
    rec = _record()
    assert json.loads(json.dumps(rec)) == rec
    assert (rec["instance"], rec["host"], rec["pid"], rec["state"]) == ("a", "h", 7, "running")
    assert rec["stages"]["delivery"]["partitions"] == [1]


def test_an_unknown_state_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match='unknown published state "lost"; valid choices: running, stopping, stopped'):
        _record(state="lost")


def test_view_shows_every_instance_sorted_with_time_fields() -> None:
    view = MembershipView()
    view.apply("b", _record("b", seen=10_000))
    view.apply("a", _record("a", seen=9_000))
    out = view.instances(now_ms=10_500)
    assert [i["instance"] for i in out] == ["a", "b"]
    a = out[0]
    assert a["state"] == "running" and a["last_seen_ago_s"] == 1.5 and a["interval_s"] == 2.0
    assert a["started"] == "1970-01-01T00:00:01.000Z" and a["last_seen"] == "1970-01-01T00:00:09.000Z"
    assert "seen_ms" not in a and a["stages"]["engine"]["partitions"] == [0, 2]


@pytest.mark.parametrize(("age", "state"), [
    (LOST_AFTER_INTERVALS * 2_000, "running"),      # exactly 3 intervals: not yet
    (LOST_AFTER_INTERVALS * 2_000 + 1, "lost"),
])
def test_an_instance_not_seen_for_more_than_three_intervals_is_lost(age: int, state: str) -> None:
    view = MembershipView()
    view.apply("a", _record(seen=10_000, interval=2_000))
    assert view.instances(now_ms=10_000 + age)[0]["state"] == state


def test_staleness_uses_each_instance_s_own_interval() -> None:
    view = MembershipView()
    view.apply("fast", _record("fast", seen=0, interval=1_000))
    view.apply("slow", _record("slow", seen=0, interval=10_000))
    assert {i["instance"]: i["state"] for i in view.instances(now_ms=5_000)} == {"fast": "lost", "slow": "running"}


def test_a_stopped_instance_stays_stopped_not_lost_until_forgotten() -> None:
    view = MembershipView()
    view.apply("a", _record(seen=0, state="stopped"))
    assert view.instances(now_ms=60_000)[0]["state"] == "stopped"
    assert view.instances(now_ms=FORGET_AFTER_MS + 1) == []


def test_a_tombstone_removes_an_instance_and_newer_records_replace_older() -> None:
    view = MembershipView()
    view.apply("a", _record(seen=5_000, state="stopping"))
    view.apply("a", _record(seen=4_000, state="running"))  # replayed older message: ignored
    assert view.instances(now_ms=5_000)[0]["state"] == "stopping"
    view.apply("a", _record(seen=3_000, started=2_000))  # a restarted incarnation always wins
    assert view.instances(now_ms=3_000)[0]["state"] == "running"
    view.apply("a", None)
    assert view.instances(now_ms=5_000) == []


def test_records_that_are_not_status_records_are_counted_and_ignored() -> None:
    view = MembershipView()
    view.apply("x", {"hello": 1})
    view.apply("y", "text")
    assert view.instances(now_ms=0) == [] and view.invalid == 2


def test_own_record_overrides_what_the_topic_said_of_this_instance() -> None:
    view = MembershipView()
    view.apply("a", _record(seen=0))  # long ago: would be lost
    view.apply("b", _record("b", seen=9_000))
    own = _record(seen=10_000, state="stopping")
    out = {i["instance"]: i["state"] for i in view.instances(now_ms=10_000, own=own)}
    assert out == {"a": "stopping", "b": "running"}
