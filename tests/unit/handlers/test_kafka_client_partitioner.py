"""Handlers whose algorithm the client applies itself (crc32 = librdkafka's
``consistent_random``) leave the partition to it; every other choice stays in kapacity."""

from __future__ import annotations

from typing import Any

from kapacity.alert.event import AlertData, Result
from kapacity.config.model import Config
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.kafka import KafkaHandler, ProducerPool
from kapacity.kafka.partitioners import get_partitioner
from kapacity.kafka.producer import PARTITION_BY_CLIENT, ClusterProducer
from tests.unit.kafka.test_producer import FakeTransport

CONFIG = Config.model_validate({"kafka": [{"enabled": True, "id": "main", "brokers": ["127.0.0.1:1"]}]})


def _alert(i: int) -> AlertData:
    return AlertData(f"cpu:host=h{i}", "m", "", Time(1), Duration(0), Level.CRITICAL, Result([]), Level.OK)


def _sent_partitions(client_partitioner: str | None, options: dict[str, Any]) -> list[int]:
    t = FakeTransport(partitions={"out": 5}, client_partitioner=client_partitioner, direct=True)

    def factory(cluster: Any, capacity: int) -> ClusterProducer:
        return ClusterProducer(cluster.id, t, capacity=capacity, message_timeout=5.0, start_thread=False)

    handler = KafkaHandler.create({"topic": "out", **options}, CONFIG, ProducerPool(capacity=100, factory=factory))
    handler.handle(_alert(0))
    handler._producer.run_once(0)  # noqa: SLF001 - metadata, then the steady state
    for i in range(1, 20):
        handler.handle(_alert(i))
    assert len(t.produced) == 20
    return [s.partition for s in t.produced]


def test_default_crc32_is_left_to_a_client_that_hashes_the_same_way() -> None:
    assert _sent_partitions("crc32", {}) == [PARTITION_BY_CLIENT] * 20


def test_partitions_are_computed_when_the_client_hashes_otherwise_or_not_at_all() -> None:
    keys = [_alert(i).id.encode() for i in range(20)]
    crc32, murmur2 = get_partitioner("crc32"), get_partitioner("murmur2")
    assert _sent_partitions(None, {}) == [crc32(k, 5) for k in keys]
    assert _sent_partitions("crc32", {"partitionAlgorithm": "murmur2"}) == [murmur2(k, 5) for k in keys]
    least_bytes = _sent_partitions("crc32", {"disablePartitionById": True})
    assert PARTITION_BY_CLIENT not in least_bytes and set(least_bytes) == {0, 1, 2, 3, 4}
