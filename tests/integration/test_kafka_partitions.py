"""kapacity's partition choice equals what the real clients choose.

librdkafka's partitioners are observed through a real produce (no explicit partition,
``partitioner=...``, the partition read from the delivery report); kafka-python's murmur2
(the Java client's algorithm) is compared as a pure function for several partition counts.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
from confluent_kafka import Producer

with warnings.catch_warnings():
    # kafka-python 3.0 imports its protocol schemas with a deprecated importlib API.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from kapacity.kafka.partitioners import get_partitioner
from tests.support.kafka import Broker, create_topic, unique

pytestmark = pytest.mark.integration

N_KEYS = 1200


def _keys() -> list[bytes]:
    """Alert-ID-like keys plus arbitrary bytes of many lengths (every tail length of the hashes)."""
    rng = random.Random(20260101)
    keys = [f"cpu:host=server{i:04d},region=eu-{i % 7}".encode() for i in range(N_KEYS // 2)]
    keys += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 65))) for _ in range(N_KEYS // 2)]
    return keys


KEYS = _keys()


def _observe(bootstrap: str, topic: str, partitioner: str, keys: list[bytes]) -> list[int]:
    """Partition librdkafka picked for each key, as reported by the broker's acknowledgement."""
    seen: dict[bytes, int] = {}
    errors: list[str] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            seen[msg.key()] = msg.partition()

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": partitioner, "linger.ms": 5})
    for key in keys:
        producer.produce(topic, value=b"x", key=key, on_delivery=report)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors[:3]
    return [seen[k] for k in keys]


@pytest.mark.parametrize(
    ("librdkafka_name", "kapacity_name"),
    [("consistent", "crc32"), ("murmur2", "murmur2"), ("fnv1a", "fnv-1a")],
)
def test_partition_matches_librdkafka_observed(broker: Broker, librdkafka_name: str, kapacity_name: str) -> None:
    topic = unique(f"parts-{librdkafka_name}")
    create_topic(broker.bootstrap, topic, partitions=16)
    observed = _observe(broker.bootstrap, topic, librdkafka_name, KEYS)
    ours = get_partitioner(kapacity_name)
    mismatches = [(k, p, ours(k, 16)) for k, p in zip(KEYS, observed, strict=True) if ours(k, 16) != p]
    assert not mismatches, f"{len(mismatches)} of {len(KEYS)} keys differ, e.g. {mismatches[:3]}"
    # The keys really spread: a partitioner stuck on one partition would also "match" itself.
    assert len(set(observed)) == 16


@pytest.mark.parametrize("n", [1, 3, 7, 16, 100, 1000])
def test_murmur2_matches_kafka_python(n: int) -> None:
    ours = get_partitioner("murmur2")
    for key in [*KEYS, b""]:
        expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % n
        assert ours(key, n) == expected, key
