"""Issue 6: a Kafka handler outside the delivery transaction (another cluster, at-least-once)
puts the event id on its record, in the header the transactional path uses, so receivers can
de-duplicate an event sent again after a crash. Driven through the fake transport."""

from __future__ import annotations

from typing import Any

from kapacity.alert.event import AlertData, Result, encode_alert_json
from kapacity.config.model import Config
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.kafka import KafkaHandler, ProducerPool
from kapacity.kafka.producer import ClusterProducer
from kapacity.runtime.delivery import Deliverer
from kapacity.runtime.records import EVENT_ID_HEADER, EventRecord
from tests.unit.kafka.test_producer import FakeTransport

CONFIG = Config.model_validate({"kafka": [
    {"enabled": True, "id": "queue", "brokers": ["127.0.0.1:1"]},
    {"enabled": True, "id": "other", "brokers": ["127.0.0.1:2"]},
]})


class AckingTransport(FakeTransport):
    """The broker acknowledges whatever was sent by the next poll."""

    def poll(self, timeout: float) -> None:
        super().poll(timeout)
        self.report(None)


def _pool(transport: FakeTransport) -> ProducerPool:
    def factory(cluster: Any, capacity: int) -> ClusterProducer:
        return ClusterProducer(cluster.id, transport, capacity=capacity, message_timeout=5.0, start_thread=False)

    return ProducerPool(capacity=10, factory=factory)


def _event(eid: str) -> EventRecord:
    alert = AlertData("cpu:a", "m", "", Time(1), Duration(0), Level.CRITICAL, Result([]), Level.OK)
    return EventRecord(eid, "t", "alert2", "cpu", True, (), "cpu", {}, alert)


def test_handler_on_another_cluster_sends_the_event_id_header() -> None:
    t = AckingTransport(partitions={"out": 2})
    sent_in_txn: list[Any] = []
    d = Deliverer(CONFIG, queue_bootstrap="127.0.0.1:1", txn_sink=lambda *a: sent_in_txn.append(a),
                  partitions=lambda topic: 2)
    d.registry._pool = _pool(t)  # noqa: SLF001 - the registry's producers, over the fake transport
    d.apply_handler("cpu/k", {"id": "k", "topic": "cpu", "kind": "kafka",
                              "options": {"cluster": "other", "topic": "out"}})
    for eid in ("0:1:t:0", "0:1:t:1"):
        d.deliver(_event(eid), lambda k, v: None)
    assert sent_in_txn == []  # not the queue's cluster: not in the transaction
    assert [(s.topic, s.key, s.headers) for s in t.produced] == [
        ("out", b"cpu:a", [(EVENT_ID_HEADER, b"0:1:t:0")]),
        ("out", b"cpu:a", [(EVENT_ID_HEADER, b"0:1:t:1")]),
    ]
    assert d.counters.delivered == 2 and d.counters.dead_lettered == 0
    d.close(0.1)


def test_plain_handle_sends_no_headers() -> None:
    t = FakeTransport(partitions={"out": 1})
    handler = KafkaHandler.create({"topic": "out", "cluster": "other"}, CONFIG, _pool(t))
    alert = _event("e").alert
    handler.handle(alert)
    handler.handle(alert, [("x-trace", b"1")])
    handler._producer.run_once(0)  # noqa: SLF001
    assert [(s.value, s.headers) for s in t.produced] == [
        (encode_alert_json(alert), None), (encode_alert_json(alert), [("x-trace", b"1")]),
    ]
