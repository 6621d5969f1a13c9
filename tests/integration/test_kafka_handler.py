"""The Kafka handler against real brokers: bodies, keys, partitions, batching, outages."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from kapacity.alert.event import AlertData, Result, Series, encode_alert_json
from kapacity.config import Config, parse_config
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.kafka import KafkaHandler, ProducerPool
from kapacity.kafka.devbroker import free_port, start_tansu
from kapacity.kafka.partitioners import get_partitioner
from tests.support.kafka import Broker, consume, create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def cluster_toml(cluster_id: str, bootstrap: str, **keys: str | int) -> str:
    lines = [
        "[[kafka]]",
        "enabled = true",
        f'id = "{cluster_id}"',
        f'brokers = ["{bootstrap}"]',
        'timeout = "3s"',
        'batch-timeout = "20ms"',
    ]
    for key, value in keys.items():
        lines.append(f"{key.replace('_', '-')} = {value!r}".replace("'", '"'))
    return "\n".join(lines) + "\n"


def make_config(*sections: str) -> Config:
    return parse_config("\n".join(sections))


def alert(i: int, level: Level = Level.CRITICAL) -> AlertData:
    host = f"server{i:03d}"
    return AlertData(
        id=f"cpu:host={host}",
        message=f"cpu:host={host} is {level.name} <&>",
        details="",
        time=Time(1_767_225_610_000_000_000 + i),
        duration=Duration(i * 1_000_000_000),
        level=level,
        data=Result([Series("cpu", {"host": host}, ["time", "value"], [[Time(1_767_225_610_000_000_000), 91.5]])]),
    )


@pytest.fixture
def pool() -> Iterator[ProducerPool]:
    p = ProducerPool()
    yield p
    p.close(5)


def test_json_body_key_and_partition(broker: Broker, pool: ProducerPool) -> None:
    topic = unique("alerts")
    create_topic(broker.bootstrap, topic, partitions=4)
    config = make_config(cluster_toml("main", broker.bootstrap))
    handler = KafkaHandler.create({"topic": topic}, config, pool)  # the only cluster: no "cluster"
    alerts = [alert(i) for i in range(40)]
    for a in alerts:
        handler.handle(a)
    assert handler.flush(15)
    assert handler.stats() == {"write_messages": 40, "write_errors": 0, "dropped": 0, "in_flight": 0}

    by_key = {m.key(): m for m in consume(broker.bootstrap, topic, 40)}
    crc32 = get_partitioner("crc32")
    for a in alerts:
        msg = by_key[a.id.encode()]
        assert msg.value() == encode_alert_json(a)
        assert msg.partition() == crc32(a.id.encode(), 4)
        assert not msg.headers()


def test_template_body_and_murmur2(broker: Broker, pool: ProducerPool) -> None:
    topic = unique("tmpl")
    create_topic(broker.bootstrap, topic, partitions=3)
    config = make_config(cluster_toml("main", broker.bootstrap))
    handler = KafkaHandler.create(
        {
            "Cluster": "main",
            "topic": topic,
            "template": '{{ .ID }} is {{ .Level }} on {{ index (index .Data.Series 0).Tags "host" }}',
            "partitionAlgorithm": "MURMUR2",
        },
        config,
        pool,
    )
    for i in range(6):
        handler.handle(alert(i, Level.WARNING))
    assert handler.flush(15)
    murmur2 = get_partitioner("murmur2")
    got = {(m.key().decode(), m.value().decode(), m.partition()) for m in consume(broker.bootstrap, topic, 6)}
    assert got == {
        (f"cpu:host=server{i:03d}", f"cpu:host=server{i:03d} is WARNING on server{i:03d}",
         murmur2(f"cpu:host=server{i:03d}".encode(), 3))
        for i in range(6)
    }


def test_disable_partition_by_id_balances_least_bytes(broker: Broker, pool: ProducerPool) -> None:
    topic = unique("least")
    create_topic(broker.bootstrap, topic, partitions=3)
    config = make_config(cluster_toml("main", broker.bootstrap))
    handler = KafkaHandler.create({"topic": topic, "disablePartitionById": True}, config, pool)
    same = alert(1)
    for _ in range(9):
        handler.handle(same)  # one ID: hashing would put all nine on one partition
    assert handler.flush(15)
    counts = [0, 0, 0]
    for m in consume(broker.bootstrap, topic, 9):
        counts[m.partition()] += 1
        assert m.key() == same.id.encode()
    assert counts == [3, 3, 3]


def test_two_clusters_at_once(tansu: Broker, noida: Broker, pool: ProducerPool) -> None:
    topic = unique("two")
    create_topic(tansu.bootstrap, topic, partitions=2)
    create_topic(noida.bootstrap, topic, partitions=2)
    config = make_config(cluster_toml("t", tansu.bootstrap), cluster_toml("n", noida.bootstrap))
    to_tansu = KafkaHandler.create({"cluster": "t", "topic": topic}, config, pool)
    to_noida = KafkaHandler.create({"cluster": "n", "topic": topic}, config, pool)
    for i in range(5):
        to_tansu.handle(alert(i))
    for i in range(100, 103):
        to_noida.handle(alert(i))
    assert to_tansu.flush(15) and to_noida.flush(15)
    assert {m.key() for m in consume(tansu.bootstrap, topic, 5)} == {alert(i).id.encode() for i in range(5)}
    assert {m.key() for m in consume(noida.bootstrap, topic, 3)} == {alert(i).id.encode() for i in range(100, 103)}
    assert set(pool.stats()) == {("t", topic), ("n", topic)}
    assert pool.stats()[("t", topic)].write_messages == 5
    assert pool.stats()[("n", topic)].write_messages == 3


def test_batch_goes_out_when_batch_size_is_reached(broker: Broker, pool: ProducerPool) -> None:
    topic = unique("batch")
    create_topic(broker.bootstrap, topic, partitions=1)
    # batch-timeout far beyond the test: only a full batch can make the broker see anything.
    config = make_config(cluster_toml("main", broker.bootstrap, batch_size=10).replace('"20ms"', '"60s"'))
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    for i in range(9):
        handler.handle(alert(i))
    wait_for(lambda: handler.stats()["in_flight"] == 9, what="nine alerts accepted")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # an incomplete batch stays unsent
        assert handler.stats()["write_messages"] == 0
        time.sleep(0.05)
    handler.handle(alert(9))
    wait_for(lambda: handler.stats()["write_messages"] == 10, timeout=15, what="the full batch acknowledged")


def test_lone_alert_goes_out_after_batch_timeout(broker: Broker, pool: ProducerPool) -> None:
    topic = unique("linger")
    create_topic(broker.bootstrap, topic, partitions=1)
    config = make_config(cluster_toml("main", broker.bootstrap).replace('"20ms"', '"300ms"'))
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    handler.handle(alert(1))
    # No flush: only the batch timeout can send it.
    wait_for(lambda: handler.stats()["write_messages"] == 1, timeout=15, what="the lone alert acknowledged")
    assert [m.key() for m in consume(broker.bootstrap, topic, 1)] == [alert(1).id.encode()]


def test_broker_down_at_start_then_up_loses_nothing(pool: ProducerPool) -> None:
    port = free_port()
    topic = unique("late")
    config = make_config(cluster_toml("main", f"127.0.0.1:{port}"))
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    for i in range(25):
        handler.handle(alert(i))
    assert handler.stats()["in_flight"] == 25
    assert not handler.flush(0.5)  # nothing listens yet
    # The producer's own metadata requests create the topic (Tansu auto-creates topics).
    broker = start_tansu(port=port)
    try:
        assert handler.flush(30)
        assert handler.stats() == {"write_messages": 25, "write_errors": 0, "dropped": 0, "in_flight": 0}
        keys = sorted(m.key() for m in consume(broker.bootstrap, topic, 25))
        assert keys == sorted(alert(i).id.encode() for i in range(25))
    finally:
        pool.close(5)
        broker.stop()


def test_close_flushes_pending_alerts(broker: Broker) -> None:
    topic = unique("close")
    create_topic(broker.bootstrap, topic, partitions=1)
    config = make_config(cluster_toml("main", broker.bootstrap).replace('"20ms"', '"30s"'))
    pool = ProducerPool()
    handler = KafkaHandler.create({"topic": topic}, config, pool)
    for i in range(7):
        handler.handle(alert(i))
    handler.close(15)  # the last handler of the cluster: flushes, then closes the producer
    assert len(consume(broker.bootstrap, topic, 7)) == 7


def test_message_too_large_is_counted_and_logged(
    broker: Broker, pool: ProducerPool, caplog: pytest.LogCaptureFixture
) -> None:
    topic = unique("large")
    create_topic(broker.bootstrap, topic, partitions=1)
    config = make_config(cluster_toml("main", broker.bootstrap))
    handler = KafkaHandler.create({"topic": topic, "template": "{{ .Message }}"}, config, pool)
    big = alert(1)
    big.message = "x" * 1_100_000  # over librdkafka's message.max.bytes (1 MB)
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        handler.handle(alert(0))
        handler.handle(big)
        handler.handle(alert(2))
        assert handler.flush(15)
    assert handler.stats() == {"write_messages": 2, "write_errors": 1, "dropped": 0, "in_flight": 0}
    assert "too large" in caplog.text.lower()
    assert sorted(m.key() for m in consume(broker.bootstrap, topic, 2)) == [alert(0).id.encode(), alert(2).id.encode()]


def test_broker_restart_mid_stream_loses_nothing(pool: ProducerPool) -> None:
    # Tansu keeps topics in memory, so the restarted broker re-creates the topic (with its
    # own default partition count) and only what was sent after the restart is there: the
    # 20 alerts handled while it was down. (noida-db would keep the data, but after its
    # restart it never acknowledges an already-connected client: not usable here.)
    broker = start_tansu()
    port = broker.port
    try:
        topic = unique("restart")
        create_topic(broker.bootstrap, topic, partitions=2)
        config = make_config(cluster_toml("main", broker.bootstrap))
        handler = KafkaHandler.create({"topic": topic}, config, pool)
        for i in range(10):
            handler.handle(alert(i))
        assert handler.flush(15)
        broker.stop()
        for i in range(10, 30):  # the broker is down: these wait, counted in flight
            handler.handle(alert(i))
        assert handler.stats()["in_flight"] == 20
        broker = start_tansu(port=port)
        assert handler.flush(30)
        assert handler.stats() == {"write_messages": 30, "write_errors": 0, "dropped": 0, "in_flight": 0}
        keys = sorted(m.key() for m in consume(broker.bootstrap, topic, 20))
        assert keys == sorted(alert(i).id.encode() for i in range(10, 30))
    finally:
        pool.close(5)
        broker.stop()
