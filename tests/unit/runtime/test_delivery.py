"""Delivery core: targets, match, bounded retries, dead-letter, Kafka-in-transaction headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from kapacity.alert.event import AlertData, Result
from kapacity.config.model import Config
from kapacity.gotypes import Duration, Level, Time
from kapacity.runtime.delivery import MAX_ATTEMPTS, Deliverer
from kapacity.runtime.records import EVENT_ID_HEADER, EventRecord


class FakeHandler:
    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.alerts: list[AlertData] = []
        self.calls = 0

    def handle(self, alert: AlertData) -> None:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise OSError("receiver down")
        self.alerts.append(alert)

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        return None

    def stats(self) -> Mapping[str, int]:
        return {}


def _event(level: Level = Level.CRITICAL, handlers: tuple[tuple[str, dict[str, Any]], ...] = ()) -> EventRecord:
    alert = AlertData("cpu:a", "m", "", Time(1), Duration(0), level, Result([]), Level.OK)
    return EventRecord("0:1:t:0", "t", "alert2", "cpu", True, handlers, "cpu", {"host": "a"}, alert)


@pytest.fixture
def deliverer(monkeypatch: pytest.MonkeyPatch) -> tuple[Deliverer, dict[str, FakeHandler]]:
    d = Deliverer(Config())
    made: dict[str, FakeHandler] = {}

    def create(kind: str, options: Mapping[str, Any]) -> FakeHandler:
        h = made[str(options.get("name", kind))] = FakeHandler(int(options.get("fail", 0)))
        return h

    monkeypatch.setattr(d.registry, "create", create)
    return d, made


def test_topic_handlers_with_match_and_chained_handlers(deliverer: tuple[Deliverer, dict[str, FakeHandler]]) -> None:
    d, made = deliverer
    d.apply_handler("cpu/all", {"id": "all", "topic": "cpu", "kind": "log", "options": {"name": "all"}})
    d.apply_handler("cpu/crit", {"id": "crit", "topic": "cpu", "kind": "log", "options": {"name": "crit"},
                                 "match": "level() == CRITICAL"})
    dead: list[Any] = []
    d.deliver(_event(Level.WARNING, (("log", {"name": "chained"}),)), lambda k, v: dead.append(v))
    assert [len(made[n].alerts) for n in ("chained", "all", "crit")] == [1, 1, 0]
    d.apply_handler("cpu/all", None)
    d.deliver(_event(Level.CRITICAL), lambda k, v: dead.append(v))
    assert [len(made[n].alerts) for n in ("all", "crit")] == [1, 1]
    assert dead == []


def test_a_failing_handler_is_retried_then_dead_lettered(deliverer: tuple[Deliverer, dict[str, FakeHandler]]) -> None:
    d, made = deliverer
    d.apply_handler("cpu/flaky", {"id": "flaky", "topic": "cpu", "kind": "log", "options": {"name": "flaky", "fail": 1}})
    d.apply_handler("cpu/down", {"id": "down", "topic": "cpu", "kind": "log", "options": {"name": "down", "fail": 99}})
    dead: list[tuple[str, Any]] = []
    d.deliver(_event(), lambda k, v: dead.append((k, v)))
    assert len(made["flaky"].alerts) == 1  # second attempt succeeded
    assert made["down"].calls == MAX_ATTEMPTS
    assert [(k, v["handler"], v["error"]) for k, v in dead] == [("cpu:a", "handler cpu/down", "receiver down")]
    assert dead[0][1]["event"]["eid"] == "0:1:t:0"
    assert d.counters.dead_lettered == 1


def test_kafka_handler_on_the_queue_cluster_writes_into_the_transaction() -> None:
    config = Config.model_validate({"kafka": [{"enabled": True, "id": "q", "brokers": ["127.0.0.1:1"]}]})
    sent: list[tuple[str, bytes, bytes, int | None, list[tuple[str, bytes]]]] = []
    d = Deliverer(config, queue_bootstrap="127.0.0.1:1", txn_sink=lambda *a: sent.append(a), partitions=lambda t: 3)
    d.apply_handler("cpu/k", {"id": "k", "topic": "cpu", "kind": "kafka", "options": {"cluster": "q", "topic": "out"}})
    d.deliver(_event(), lambda k, v: None)
    assert len(sent) == 1
    topic, key, value, partition, headers = sent[0]
    assert (topic, key, headers) == ("out", b"cpu:a", [(EVENT_ID_HEADER, b"0:1:t:0")])
    assert partition is not None and 0 <= partition < 3
    assert value.startswith(b'{"id":"cpu:a"')
