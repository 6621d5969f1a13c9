"""After an abort the loop writes with a new producer id (noida-db: see kapacity.queue.transactional).

noida-db 0.2.3 lists an aborted transaction in every later fetch response, so a librdkafka
``read_committed`` consumer that fetches from past its abort marker drops every later record
of that producer id on the partition. These tests read from exactly there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kapacity.queue import Kind
from kapacity.queue.kafka import KafkaQueue
from kapacity.queue.base import Message
from kapacity.queue.transactional import Output, PartitionState, TransactionalLoop
from tests.integration.test_queue_transactional import Counter, run_until, settings
from tests.support.kafka import Broker, create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def _read_from(bootstrap: str, topic: str, positions: dict[int, int], n: int) -> list[Any]:
    """``n`` records read_committed from ``positions`` (partition → offset), else what came in 5 s."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("rd"), "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, o) for p, o in positions.items()])
    got: list[Any] = []
    deadline = time.monotonic() + 5
    try:
        while len(got) < n and time.monotonic() < deadline:
            got.extend(m.value() for m in c.consume(100, 0.2) if m.error() is None)
    finally:
        c.close()
    return got


def _ends(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("wm")})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        c.close()


def test_the_broker_defect_worked_around(noida: Broker) -> None:
    """The defect itself, with a bare producer: if this starts failing, noida-db was fixed."""
    topic = unique("abort")
    create_topic(noida.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": noida.bootstrap, "transactional.id": unique("tx")})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, b"aborted")
    p.flush(10)
    p.abort_transaction(30)
    after_marker = _ends(noida.bootstrap, topic, 1)
    p.begin_transaction()
    p.produce(topic, b"committed")
    p.commit_transaction(30)
    assert _read_from(noida.bootstrap, topic, {0: 0}, 1) == [b"committed"]
    if noida.kind == "noida":
        assert _read_from(noida.bootstrap, topic, after_marker, 1) == []  # lost: same producer id


def test_outputs_after_an_abort_reach_a_reader_that_starts_past_the_abort_marker(noida: Broker, tmp_path: Path) -> None:
    s = settings(noida.bootstrap)
    q = KafkaQueue(s)
    q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(6)])
    counter = Counter()

    def process(m: Message, state: PartitionState) -> Iterable[Output]:
        if m.value == 3 and not failed:
            failed.append(m.value)
            loop._producer.flush(10)  # the aborted records reach the log, then its abort marker
            raise RuntimeError("processing failed")
        return counter(m, state)

    failed: list[int] = []
    loop = TransactionalLoop(s, name="counter", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
                             process=process, state_dir=tmp_path)
    first_id = loop.working_id
    with pytest.raises(RuntimeError):
        run_until(loop, 6)
    events = loop.naming.topic(Kind.EVENTS)
    after_abort = _ends(noida.bootstrap, events, 2)  # past the abort markers
    assert sum(after_abort.values()) > 0  # aborted records and markers are in the log
    run_until(loop, 6)
    got = [json.loads(v) for v in _read_from(noida.bootstrap, events, after_abort, 6)]
    assert sorted((m["key"], m["count"]) for m in got) == [("k0", 1), ("k0", 2), ("k0", 3),
                                                           ("k1", 1), ("k1", 2), ("k1", 3)]
    assert first_id.startswith(loop.transactional_id + ".")
    assert loop.working_id != first_id  # a new producer id for what follows the abort
    loop.close()
    q.close()


def test_each_incarnation_writes_with_its_own_id_and_fences_the_previous_one(noida: Broker, tmp_path: Path) -> None:
    s = settings(noida.bootstrap)
    q = KafkaQueue(s)
    q.emit_many(Kind.POINTS, [("a", 1), ("b", 2)])
    first = TransactionalLoop(s, name="c", source=Kind.POINTS, changelog=Kind.ALERT_STATE, process=Counter(),
                              state_dir=tmp_path)
    run_until(first, 2)
    second = TransactionalLoop(s, name="c", source=Kind.POINTS, changelog=Kind.ALERT_STATE, process=Counter(),
                               state_dir=tmp_path)
    assert second.transactional_id == first.transactional_id  # the state dir and membership name
    base, epoch = second.working_id.rsplit(".", 1)
    assert base == first.transactional_id and first.working_id == f"{base}.{int(epoch) - 1}"
    # The previous incarnation, still alive (a zombie), can no longer commit.
    first._producer.begin_transaction()
    first._producer.produce(first.naming.topic(Kind.EVENTS), b"zombie", b"z")
    with pytest.raises(Exception, match="(?i)fenc"):
        first._producer.commit_transaction(10)
    first._consumer.close()  # (closing a fenced producer raises in confluent-kafka 2.16)
    q.emit(Kind.POINTS, "a", 3)
    run_until(second, 1)
    wait_for(lambda: second.states and sum(len(st.items()) for st in second.states.values()) == 2,
             timeout=10, what="the restored state")
    second.close()
    q.close()
