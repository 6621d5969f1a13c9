"""The broker fixtures give real brokers that produce and consume."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from tests.support.kafka import Broker, consume, create_topic, unique

pytestmark = pytest.mark.integration


def test_broker_round_trip(broker: Broker) -> None:
    topic = unique("rt")
    create_topic(broker.bootstrap, topic, partitions=3)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        producer.produce(topic, key=f"k{i}", value=f"v{i}")
    assert producer.flush(15) == 0
    values = sorted(m.value().decode() for m in consume(broker.bootstrap, topic, 10))
    assert values == sorted(f"v{i}" for i in range(10))
