"""Takeover: the pure adoption decision, the membership rule for adopted records, and one
round of the Takeover thread with fake stages (no broker)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from kapacity.queue.kinds import Kind
from kapacity.runtime.membership import Membership, MembershipView
from kapacity.runtime.takeover import Decision, Takeover, adopted_dir, decide, session_timeout_ms

INTERVAL = 2_000
SESSION = 6_000
#: A record is lost 3 intervals after it was seen; adoptable a session timeout later.
ADOPTABLE_AFTER = 3 * INTERVAL + SESSION


def rec(seen: int, *, started: int = 0, state: str = "running", stages: bool = True, **extra: Any) -> dict[str, Any]:
    return {"seen_ms": seen, "interval_ms": INTERVAL, "started_ms": started, "state": state,
            "stages": {"engine": {"partitions": [0]}} if stages else {}, **extra}


def d(records: dict[str, dict[str, Any]], me: str, now: int, **kw: Any) -> Decision:
    return decide(records, me=me, now_ms=now, session_timeout_ms=SESSION, **kw)


# --- when --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dead_for", "adopts"), [
    (0, False), (3 * INTERVAL, False), (ADOPTABLE_AFTER, False), (ADOPTABLE_AFTER + 1, True), (10 * ADOPTABLE_AFTER, True),
])
def test_an_instance_is_adopted_only_once_lost_for_longer_than_the_session_timeout(dead_for: int, adopts: bool) -> None:
    now = 100_000
    got = d({"a": rec(now - dead_for), "b": rec(now)}, "b", now)
    assert got.adopt == (["a"] if adopts else [])


def test_the_session_timeout_comes_from_the_consumer_properties_with_librdkafkas_default() -> None:
    assert session_timeout_ms({"session.timeout.ms": "6000"}) == 6000
    assert session_timeout_ms({"session.timeout.ms": 10_000}) == 10_000
    assert session_timeout_ms({}) == 45_000
    assert session_timeout_ms({"session.timeout.ms": "soon"}) == 45_000


# --- who ---------------------------------------------------------------------------------------


def test_the_smallest_running_instance_with_stages_adopts_and_no_other() -> None:
    now = 100_000
    records = {"a": rec(0), "b": rec(now), "c": rec(now), "0feeder": rec(now, stages=False)}
    assert {me: d(records, me, now).adopt for me in ("b", "c", "0feeder")} == {"b": ["a"], "c": [], "0feeder": []}


def test_never_two_adopters_whatever_the_survivors_and_the_dead() -> None:
    now = 100_000
    names = ["a", "b", "c", "d"]
    for alive in itertools.chain.from_iterable(itertools.combinations(names, k) for k in range(1, 5)):
        records = {n: rec(now if n in alive else 0) for n in names}
        adopters: dict[str, list[str]] = {}
        for me in alive:
            for name in d(records, me, now).adopt:
                adopters.setdefault(name, []).append(me)
        dead = sorted(set(names) - set(alive))
        assert adopters == {n: [min(alive)] for n in dead}


def test_instances_without_stages_stopped_ones_and_oneself_are_never_adopted() -> None:
    now = 100_000
    records = {"b": rec(now), "feeder": rec(0, stages=False), "s": rec(0, state="stopped"), "z": rec(0, state="stopping")}
    assert d(records, "b", now).adopt == ["z"]  # killed while stopping: still holds partitions
    assert d({"b": rec(0)}, "b", now).adopt == []


def test_a_fresh_adoption_by_another_is_respected_a_stale_one_is_taken_over() -> None:
    now = 100_000
    adopted_by_b = rec(now - INTERVAL, state="adopted", adopted_by="b")
    assert d({"a": adopted_by_b, "b": rec(now), "c": rec(now)}, "c", now).adopt == []
    # b died too: its adoption record went stale with it; c (now the smallest) adopts both.
    stale = rec(now - ADOPTABLE_AFTER - 1, state="adopted", adopted_by="b")
    got = d({"a": stale, "b": rec(now - ADOPTABLE_AFTER - 1), "c": rec(now)}, "c", now)
    assert got.adopt == ["a", "b"]


# --- back, released, refused --------------------------------------------------------------------


def test_the_adopter_releases_an_instance_that_is_back_and_keeps_one_that_is_not() -> None:
    now = 100_000
    ours = rec(now, state="adopted", adopted_by="b")
    assert d({"a": ours, "b": rec(now)}, "b", now, adopted={"a": 0}) == Decision([], [])
    back = rec(now, started=90_000)
    assert d({"a": back, "b": rec(now)}, "b", now, adopted={"a": 0}) == Decision([], ["a"])


def test_of_two_adopters_the_larger_name_releases() -> None:
    now = 100_000
    records = {"a": rec(now, state="adopted", adopted_by="b"), "b": rec(now), "c": rec(now)}
    assert d(records, "c", now, adopted={"a": 0}).release == ["a"]
    assert d({**records, "a": rec(now, state="adopted", adopted_by="c")}, "b", now, adopted={"a": 0}).release == []


def test_a_refused_incarnation_is_never_adopted_again_a_later_one_is() -> None:
    now = 100_000
    dead = {"a": rec(0, started=5), "b": rec(now)}
    assert d(dead, "b", now, refused={"a": 5}).adopt == []
    dead_again = {"a": rec(now - ADOPTABLE_AFTER - 1, started=50_000), "b": rec(now)}
    assert d(dead_again, "b", now, refused={"a": 5}).adopt == ["a"]


def test_an_instance_that_is_back_is_not_adopted() -> None:
    now = 100_000
    assert d({"a": rec(now - INTERVAL, started=90_000), "b": rec(now)}, "b", now, refused={"a": 0}).adopt == []


# --- the membership view ------------------------------------------------------------------------


def test_an_adopted_record_replaces_its_incarnation_but_never_the_instance_that_is_back() -> None:
    view = MembershipView()
    view.apply("a", rec(1_000, started=10))
    view.apply("a", rec(20_000, started=10, state="adopted", adopted_by="b"))
    assert view.records["a"]["state"] == "adopted"
    view.apply("a", rec(21_000, started=30_000))  # a itself, a new incarnation
    view.apply("a", rec(22_000, started=10, state="adopted", adopted_by="b"))  # b's late record
    assert view.records["a"]["state"] == "running" and "adopted_by" not in view.records["a"]


def test_the_view_shows_an_adopted_instance_as_adopted_while_fresh_then_lost() -> None:
    view = MembershipView()
    view.apply("a", rec(1_000, state="adopted", adopted_by="b"))
    assert [(i["state"], i["adopted_by"]) for i in view.instances(2_000)] == [("adopted", "b")]
    assert [i["state"] for i in view.instances(1_000 + 3 * INTERVAL + 1)] == ["lost"]


# --- one round of the thread ---------------------------------------------------------------------


class FakeQueue:
    def __init__(self) -> None:
        self.emitted: list[tuple[Kind, str, Any]] = []

    def emit(self, kind: Kind, key: str, value: Any) -> None:
        self.emitted.append((kind, key, value))


class FakeThread:
    def __init__(self) -> None:
        self.dropped, self.alive, self.stopped = False, True, False

    def stop(self, timeout: float, drain: bool = True) -> bool:
        self.stopped, self.alive = True, False
        return True


def test_a_round_adopts_publishes_then_drops_fenced_stages_and_never_readopts(tmp_path: Path) -> None:
    now = [100_000]
    queue = FakeQueue()
    membership = Membership(queue, "b", lambda: {"instance": "b", "stages": {"engine": {"partitions": [1]}}},  # type: ignore[arg-type]  # a fake queue
                            interval_s=INTERVAL / 1000, clock_ms=lambda: now[0])
    membership.view.apply("a", rec(0, started=7))
    started: list[tuple[str, Path]] = []
    threads: list[FakeThread] = []

    def start(name: str, state_dir: Path) -> list[Any]:
        started.append((name, state_dir))
        threads[:] = [FakeThread(), FakeThread()]
        return list(threads)

    t = Takeover(queue, membership, tmp_path, session_timeout_ms=SESSION,  # type: ignore[arg-type]  # fakes
                 start_stages=start, stages_status=lambda ts: {"engine": {"partitions": [0]}})
    assert t.step().adopt == ["a"]
    assert started == [("a", adopted_dir(tmp_path, "b") / "a")]
    (kind, key, record), = queue.emitted
    assert (kind, key, record["state"], record["adopted_by"], record["started_ms"]) == (Kind.INSTANCES, "a", "adopted", "b", 7)
    assert record["stages"]["engine"]["partitions"] == [0]
    membership.view.apply("a", record)

    for th in threads:  # a's restart fenced every adopted stage: their threads ended, dropped
        th.dropped, th.alive = True, False
    now[0] += INTERVAL
    t.step()
    assert t.status() == {"adopted": [], "adopted_total": 1, "released_total": 0, "dropped_total": 1, "errors": 0}
    now[0] += 10 * ADOPTABLE_AFTER  # a's old record long stale: that incarnation is still refused
    assert t.step().adopt == [] and len(started) == 1


def test_stopping_the_takeover_stops_the_adopted_stages(tmp_path: Path) -> None:
    queue = FakeQueue()
    membership = Membership(queue, "b", lambda: {"instance": "b", "stages": {"engine": {}}},  # type: ignore[arg-type]  # a fake queue
                            interval_s=INTERVAL / 1000, clock_ms=lambda: 100_000)
    membership.view.apply("a", rec(0))
    threads = [FakeThread()]
    t = Takeover(queue, membership, tmp_path, session_timeout_ms=SESSION,  # type: ignore[arg-type]  # fakes
                 start_stages=lambda name, d: list(threads), stages_status=lambda ts: {})
    t.step()
    t.stop(1.0)
    assert threads[0].stopped and t.status()["adopted"] == []
