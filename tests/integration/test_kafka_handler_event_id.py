"""Issue 6 on a real broker: a Kafka handler targeting a cluster other than the queue's is
at-least-once (outside the delivery transaction), and its records carry the event id in the
``kapacity-event-id`` header so receivers can de-duplicate a re-sent event."""

from __future__ import annotations

import pytest

from kapacity.alert.event import AlertData, Result
from kapacity.config.model import Config
from kapacity.gotypes import Duration, Level, Time
from kapacity.runtime.delivery import Deliverer
from kapacity.runtime.records import EVENT_ID_HEADER, EventRecord
from tests.support.kafka import Broker, consume, create_topic, unique

pytestmark = pytest.mark.integration


def test_records_of_a_handler_on_another_cluster_carry_the_event_id(broker: Broker) -> None:
    topic = unique("event-id")
    create_topic(broker.bootstrap, topic, 2)
    config = Config.model_validate({"kafka": [
        {"enabled": True, "id": "target", "brokers": [broker.bootstrap], "batch-timeout": "10ms"},
    ]})
    in_txn: list[object] = []
    # The queue lives elsewhere (never contacted here): the handler's cluster is "another".
    d = Deliverer(config, queue_bootstrap="127.0.0.1:1", txn_sink=lambda *a: in_txn.append(a),
                  partitions=lambda t: 1)
    d.apply_handler("cpu/out", {"id": "out", "topic": "cpu", "kind": "kafka",
                                "options": {"cluster": "target", "topic": topic}})
    try:
        eids = [f"0:{i}:t:0" for i in range(3)]
        for eid in eids:
            alert = AlertData("cpu:host=a", "m", "", Time(1), Duration(0), Level.CRITICAL, Result([]), Level.OK)
            d.deliver(EventRecord(eid, "t", "alert2", "cpu", True, (), "cpu", {}, alert), lambda k, v: None)
        assert d.counters.delivered == 3 and in_txn == []
    finally:
        d.close(10)
    records = consume(broker.bootstrap, topic, 3)
    assert sorted(dict(m.headers() or [])[EVENT_ID_HEADER].decode() for m in records) == eids
    assert {m.key() for m in records} == {b"cpu:host=a"}
