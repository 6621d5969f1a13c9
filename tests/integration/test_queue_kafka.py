"""Kafka-only queue behaviour on real brokers: topic admin at start-up and record loggers.

Configs are read back on noida only: Tansu's describe_configs returns only keys set
explicitly (test-brokers.md), which is still enough to see what kapacity set.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType

from kapacity.config.queue import KafkaQueueConfig, QueueConfig
from kapacity.kafka.devbroker import free_port
from kapacity.queue import Kind
from kapacity.queue.admin import ensure_topics, topic_specs
from kapacity.queue.errors import MessageTooLargeError, QueueUnavailableError, TopicAdminError
from kapacity.queue.kafka import KafkaQueue
from kapacity.queue.loggers import LOGGER_NAME
from kapacity.queue.protection import FileStorage, Protector
from tests.support.kafka import Broker, create_topic
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def settings(bootstrap: str, prefix: str, **kafka: Any) -> KafkaQueueConfig:
    base: dict[str, Any] = {
        "client": {"properties": {"bootstrap.servers": bootstrap}},
        "defaults": {
            "topic": {"partitions": 2},
            "topic-prefix": prefix,
            "consumer-prefix": prefix,
            "consumer": {"properties": {"session.timeout.ms": 6000, "group.protocol": "classic"}},
        },
    }
    for k, v in kafka.items():
        base[k.replace("_", "-")] = {**base.get(k.replace("_", "-"), {}), **v}
    cfg = QueueConfig.model_validate({"type": "kafka", "kafka": base}, by_alias=True, by_name=False)
    assert cfg.problems() == []
    return cfg.kafka


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}_"


def describe(bootstrap: str, topic: str) -> dict[str, str | None]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    res = ConfigResource(ResourceType.TOPIC, topic)
    return {k: v.value for k, v in admin.describe_configs([res])[res].result(15).items()}


def partitions(bootstrap: str, topic: str) -> int:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return len(md.topics[topic].partitions)


def test_start_up_creates_every_topic_with_names_prefixes_and_partitions(broker: Broker) -> None:
    p = prefix()
    s = settings(broker.bootstrap, p, topics={"events": {"name": f"{p}alerts_out", "partitions": 3}})
    q = KafkaQueue(s)
    try:
        expected = {f"{p}{k.value}" for k in Kind if k is not Kind.EVENTS} | {f"{p}alerts_out"}
        assert set(q.report.created) == expected
        assert partitions(broker.bootstrap, f"{p}alerts_out") == 3
        assert partitions(broker.bootstrap, f"{p}points") == 2
        for topic, want in ((f"{p}points", ("delete", "604800000")), (f"{p}tasks", ("compact", "-1"))):
            got = describe(broker.bootstrap, topic)  # explicitly set: Tansu returns these too
            assert (got["cleanup.policy"], got["retention.ms"]) == want
    finally:
        q.close()
    again = KafkaQueue(s)  # a second start-up finds everything in place
    assert again.report.created == [] and again.report.updated == {}
    again.close()


def test_existing_topic_gets_configs_updated_but_keeps_its_partitions(broker: Broker) -> None:
    p = prefix()
    create_topic(broker.bootstrap, f"{p}events", partitions=1)
    s = settings(broker.bootstrap, p, topics={"events": {"partitions": 4, "properties": {"retention.ms": "3600000"}}})
    q = KafkaQueue(s)
    q.close()
    assert f"{p}events" not in q.report.created
    assert q.report.updated[f"{p}events"]["retention.ms"] == "3600000"
    assert partitions(broker.bootstrap, f"{p}events") == 1  # never repartitioned
    assert describe(broker.bootstrap, f"{p}events")["retention.ms"] == "3600000"


def test_noida_reports_every_config_including_broker_defaults(noida: Broker) -> None:
    p = prefix()
    q = KafkaQueue(settings(noida.bootstrap, p, defaults={"topic": {"partitions": 2, "properties": {"max.message.bytes": "2097152"}}}))
    q.close()
    got = describe(noida.bootstrap, f"{p}alert_state")
    assert (got["cleanup.policy"], got["retention.ms"], got["max.message.bytes"]) == ("compact", "-1", "2097152")


def test_an_unreachable_cluster_fails_fast_and_clearly() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(QueueUnavailableError, match=f"cannot reach the Kafka cluster at 127.0.0.1:{port} within 2s"):
        ensure_topics({"bootstrap.servers": f"127.0.0.1:{port}"}, [], timeout=2)
    assert time.monotonic() - started < 8
    assert QueueUnavailableError.retriable


def test_a_refused_topic_stops_start_up_with_the_brokers_reason(noida: Broker) -> None:
    p = prefix()
    s = settings(noida.bootstrap, p, topics={"logs": {"replication-factor": 3}})
    specs = [t for t in topic_specs(s) if t.kind is Kind.LOGS]
    with pytest.raises(TopicAdminError, match=f'cannot create topic "{p}logs": '):
        ensure_topics(s.client_properties(), specs, timeout=10)


def test_loggers_print_the_documented_lines_for_matching_records_only(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    p = prefix()
    rules = {
        "loggers": [
            {"level": "INFO", "type": "PRODUCER", "topic-regexp": f"{p}events", "key-regexp": ".*parallel.*"},
            {"level": "DEBUG", "type": "CONSUMER", "value-regexp": ".*parallel.*"},
            {"level": "INFO", "type": "CONSUMER_COMMIT", "topic-regexp": f"{p}events"},
            {"level": "INFO", "type": "PRODUCER_ACK", "topic-regexp": f"{p}events"},
        ]
    }
    q = KafkaQueue(settings(broker.bootstrap, p, client=rules))
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    try:
        q.emit(Kind.EVENTS, "a-parallel-key", {"x": 1})
        q.emit(Kind.EVENTS, "plain", {"mode": "parallel"})
        q.emit(Kind.POINTS, "a-parallel-key", {"x": 2})  # topic does not match: no PRODUCER line
        got: list[str] = []
        wait_for(lambda: q.receive(Kind.EVENTS, "h", lambda m: got.append(m.key), timeout=0.2) >= 0 and len(got) == 2,
                 timeout=30, what="two events")
    finally:
        q.close()
    lines = caplog.messages
    assert [x for x in lines if x.startswith("[PRODUCER >")] == [f'[PRODUCER > {p}events] a-parallel-key = {{"x":1}}']
    consumed = [x for x in lines if x.startswith("[CONSUMER >")]
    assert len(consumed) == 1
    assert consumed[0].startswith(f"[CONSUMER > {p}events[")
    assert consumed[0].endswith('Z] plain = {"mode":"parallel"}')
    acks = [x for x in lines if x.startswith("[PRODUCER_ACK>")]
    assert len(acks) == 2 and all(x.startswith(f"[PRODUCER_ACK> {p}events[") and x.endswith("Z]") for x in acks)
    commits = [x for x in lines if x.startswith("[CONSUMER_COMMIT>")]
    assert commits and all(x.startswith(f"[CONSUMER_COMMIT> {p}events[") for x in commits)


def test_without_rules_no_interceptor_is_installed(broker: Broker) -> None:
    q = KafkaQueue(settings(broker.bootstrap, prefix()), ensure=False)
    assert q.loggers is None
    q.close()


def test_stored_payloads_are_swept_after_their_topics_retention(noida: Broker, tmp_path: Path) -> None:
    p = prefix()
    storage = FileStorage(tmp_path / "_messages")
    q = KafkaQueue(settings(noida.bootstrap, p), protector=Protector(10, None, storage), sweep_interval_s=0)
    try:
        q.emit(Kind.EVENTS, "old", "x" * 100)
        q.emit(Kind.TASKS, "definition", "y" * 100)
        long_ago = time.time() - 8 * 24 * 3600  # beyond events' 7-day retention
        for topic in (f"{p}events", f"{p}tasks"):
            for name, _ in storage.list(topic):
                os.utime(tmp_path / "_messages" / name, (long_ago, long_ago))
        q.emit(Kind.EVENTS, "fresh", "z" * 100)
        assert q.sweep_storage() == 1
        assert len(list(storage.list(f"{p}events"))) == 1  # the fresh one
        assert len(list(storage.list(f"{p}tasks"))) == 1  # unlimited retention: kept
    finally:
        q.close()


def test_without_protection_librdkafkas_size_limit_refuses_cleanly(broker: Broker) -> None:
    q = KafkaQueue(settings(broker.bootstrap, prefix()))
    try:
        with pytest.raises(MessageTooLargeError, match=r"above the limit of 10485760 bytes \(the producer's message.max.bytes"):
            q.emit(Kind.EVENTS, "huge", "x" * (11 * 1024 * 1024))
        assert q.stats.refused == 1
        q.emit(Kind.EVENTS, "small", 1)  # still working
    finally:
        q.close()
