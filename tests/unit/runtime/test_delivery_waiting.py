"""Delivery waits for a target that holds an event unacknowledged (an unreachable cluster):
no dead letter, no second send of the waiting message, no resend of what was acknowledged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from kapacity.alert.event import AlertData, Result
from kapacity.config.model import Config
from kapacity.gotypes import Duration, Level, Time
from kapacity.runtime.delivery import MAX_ATTEMPTS, Deliverer
from kapacity.runtime.errors import TargetUnavailable
from kapacity.runtime.records import EventRecord


class BufferingHandler:
    """Like a Kafka handler: ``handle`` buffers, ``flush`` is True once the target took it all."""

    def __init__(self) -> None:
        self.reachable = True
        self.buffered: list[str] = []
        self.delivered: list[str] = []
        self.write_errors = 0

    def handle(self, alert: AlertData) -> None:
        self.buffered.append(alert.message)

    def flush(self, timeout: float) -> bool:
        if self.reachable:
            self.delivered += self.buffered
            self.buffered = []
        return not self.buffered

    def close(self, timeout: float) -> None:
        return None

    def stats(self) -> Mapping[str, int]:
        return {"write_errors": self.write_errors}


def _event(n: int) -> EventRecord:
    alert = AlertData("cpu:a", f"m{n}", "", Time(n), Duration(0), Level.CRITICAL, Result([]), Level.OK)
    return EventRecord(f"0:{n}:t:0", "t", "alert2", "cpu", True, (), "cpu", {"host": "a"}, alert)


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> tuple[Deliverer, BufferingHandler]:
    d = Deliverer(Config())
    h = BufferingHandler()
    monkeypatch.setattr(d.registry, "create", lambda kind, options: h)
    d.apply_handler("cpu/out", {"id": "out", "topic": "cpu", "kind": "kafka", "options": {}})
    return d, h


def test_an_unacknowledged_event_waits_and_is_sent_once(setup: tuple[Deliverer, BufferingHandler]) -> None:
    d, h = setup
    dead: list[Any] = []
    d.deliver(_event(1), lambda k, v: dead.append(v))
    h.reachable = False
    for _ in range(MAX_ATTEMPTS + 2):  # the stage runs the batch again and again: never dead-lettered
        d.deliver(_event(1), lambda k, v: dead.append(v))  # acknowledged before: skipped
        with pytest.raises(TargetUnavailable) as info:
            d.deliver(_event(2), lambda k, v: dead.append(v))
        assert info.value.retriable and info.value.target == "handler cpu/out" and info.value.event_id == "0:2:t:0"
    c = d.counters.as_dict()
    assert (c["waiting"], c["target_unavailable"], c["dead_lettered"]) == (1, MAX_ATTEMPTS + 2, 0)
    assert d.waiting_for == "handler cpu/out"
    assert h.buffered == ["m2"]  # handed over once, however often the batch ran again
    h.reachable = True
    d.deliver(_event(1), lambda k, v: dead.append(v))
    d.deliver(_event(2), lambda k, v: dead.append(v))
    d.deliver(_event(3), lambda k, v: dead.append(v))
    assert h.delivered == ["m1", "m2", "m3"] and dead == []
    c = d.counters.as_dict()
    assert (c["waiting"], c["delivered"], c["already_acknowledged"]) == (0, 3, MAX_ATTEMPTS + 3)
    assert d.waiting_for is None


def test_a_reported_failure_is_still_retried_then_dead_lettered(setup: tuple[Deliverer, BufferingHandler]) -> None:
    d, h = setup
    h.reachable = False

    def fail(timeout: float) -> bool:
        h.write_errors += 1  # the producer gave up on the message: a failure, not a wait
        h.buffered = []
        return True

    h.flush = fail  # type: ignore[method-assign]  # a failing target
    dead: list[dict[str, Any]] = []
    d.deliver(_event(1), lambda k, v: dead.append(v))
    assert [v["error"] for v in dead] == ["the handler reported a delivery failure"]
    assert d.counters.failed_attempts == MAX_ATTEMPTS and d.counters.waiting == 0
