"""Helpers for integration tests on a real broker: unique names, topics, consuming."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


@dataclass(frozen=True)
class Broker:
    """A broker under test and what it gets right (see shared/reference/test-brokers.md)."""

    kind: str  # "tansu", "noida" or "external"
    bootstrap: str
    #: read_committed hides aborted transactional records (Tansu: no).
    hides_aborted: bool
    #: correct high watermarks / "latest" offsets (Tansu: no).
    correct_watermarks: bool
    #: accepts any SASL PLAIN / OAUTHBEARER credentials (noida: yes).
    accepts_any_sasl: bool
    #: data survives a restart (noida: yes).
    persistent: bool


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, extra: dict[str, Any] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **(extra or {})})
    futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    for fut in futures.values():
        try:
            fut.result(15)
        except KafkaException as exc:
            if "already exists" not in str(exc).lower():
                raise
    # Wait until metadata shows every partition: producers need them all.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.05)
    raise AssertionError(f"topic {name} did not get {partitions} partitions")


def consume(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float = 30.0,
    extra: dict[str, Any] | None = None,
) -> list[Any]:
    """Read ``count`` messages from the beginning of ``topic`` (fails after ``timeout`` s)."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique("test"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        **(extra or {}),
    })
    out: list[Any] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            out.append(msg)
    finally:
        consumer.close()
    if len(out) < count:
        raise AssertionError(f"consumed {len(out)} of {count} messages from {topic} in {timeout}s")
    return out
