"""The queue contract, run against every backend: embedded (SQLite) and Kafka on each broker.

One module, one parametrized fixture (STYLE 2): a behaviour is part of the contract only if
it holds on every backend.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from kapacity.config.queue import QueueConfig
from kapacity.queue import Kind
from kapacity.queue.base import Message, Queue
from kapacity.queue.embedded import EmbeddedQueue
from kapacity.queue.errors import MessageTooLargeError
from kapacity.queue.factory import protector_for
from kapacity.queue.kafka import KafkaQueue
from tests.conftest import BROKER_KINDS, _broker_for
from tests.support.kafka import Broker, consume
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def queue_config(bootstrap: str | None, prefix: str, protection: dict[str, int] | None = None) -> QueueConfig:
    kafka: dict[str, Any] = {
        "defaults": {
            "topic": {"partitions": 2},
            "topic-prefix": prefix,
            "consumer-prefix": prefix,
            # Tansu: joins take half the session timeout; KIP-848 hangs (test-brokers.md).
            "consumer": {"properties": {"session.timeout.ms": 6000, "group.protocol": "classic"}},
        },
        "message-protection": protection or {},
    }
    if bootstrap:
        kafka["client"] = {"properties": {"bootstrap.servers": bootstrap}}
    return QueueConfig.model_validate(
        {"type": "kafka" if bootstrap else "embedded", "kafka": kafka}, by_alias=True, by_name=False
    )


@dataclass
class Backend:
    """Builds queues of one backend and reads/writes raw records behind the queue's back."""

    kind: str
    data_dir: Path
    broker: Broker | None
    opened: list[Queue] = field(default_factory=list)

    def make(self, prefix: str, protection: dict[str, int] | None = None) -> Queue:
        cfg = queue_config(self.broker.bootstrap if self.broker else None, prefix, protection)
        protector = protector_for(cfg, self.data_dir)
        q: Queue
        if self.broker is None:
            q = EmbeddedQueue(
                self.data_dir / "queue.db",
                naming=cfg.kafka.naming(),
                topic_properties=cfg.kafka.topic_properties,
                protector=protector,
                lease_ms=60_000,
                cleaner_interval_s=0,
            )
        else:
            q = KafkaQueue(cfg.kafka, protector=protector)
        self.opened.append(q)
        return q

    def raw_insert(self, q: Queue, kind: Kind, key: str, raw: bytes) -> None:
        topic = q.naming.topic(kind)
        if self.broker is None:
            with sqlite3.connect(self.data_dir / "queue.db") as db:
                db.execute(
                    f"INSERT INTO {q.naming.table(kind)} (key, value, created) VALUES (?, ?, 0)", (key, raw)
                )
            return
        p = Producer({"bootstrap.servers": self.broker.bootstrap})
        p.produce(topic, raw, key.encode())
        assert p.flush(15) == 0

    def raw_sizes(self, q: Queue, kind: Kind, count: int) -> list[int]:
        if self.broker is None:
            with sqlite3.connect(self.data_dir / "queue.db") as db:
                rows = db.execute(f"SELECT length(value) FROM {q.naming.table(kind)}").fetchall()
            return [r[0] for r in rows]
        return [len(m.value()) for m in consume(self.broker.bootstrap, q.naming.topic(kind), count)]


BACKENDS = ["embedded", *BROKER_KINDS]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    broker = None if request.param == "embedded" else _broker_for(request.param, request)
    b = Backend(request.param, tmp_path, broker)
    yield b
    for q in b.opened:
        q.close()


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}_"


def drain(
    q: Queue, kind: Kind, group: str, want: int, timeout: float = 30.0, handler: Callable[[Message], None] | None = None
) -> list[Message]:
    got: list[Message] = []

    def handle(m: Message) -> None:
        if handler is not None:
            handler(m)
        got.append(m)

    def step() -> bool:
        q.receive(kind, group, handle, timeout=0.2)
        return len(got) >= want

    wait_for(step, timeout=timeout, what=f"{want} messages on {kind}")
    return got


def test_emit_then_receive_delivers_keys_and_json_values_in_order(backend: Backend) -> None:
    q = backend.make(prefix())
    q.emit(Kind.EVENTS, "cpu", {"level": "CRIT", "value": 97.5})
    q.emit_many(Kind.EVENTS, [("cpu", {"n": i}) for i in range(5)])
    q.delete(Kind.EVENTS, "cpu")
    got = drain(q, Kind.EVENTS, "handlers", 7)
    assert [m.key for m in got] == ["cpu"] * 7
    assert [m.value for m in got] == [{"level": "CRIT", "value": 97.5}, *({"n": i} for i in range(5)), None]
    assert q.receive(Kind.EVENTS, "handlers", lambda m: None, timeout=0.3) == 0  # all committed


def test_emit_async_is_delivered_after_flush(backend: Backend) -> None:
    q = backend.make(prefix())
    for i in range(100):
        q.emit_async(Kind.POINTS, f"series-{i % 3}", {"i": i})
    q.flush()
    got = drain(q, Kind.POINTS, "engine", 100)
    assert sorted(m.value["i"] for m in got) == list(range(100))
    assert q.stats.emitted == 100


def test_a_group_shares_messages_and_other_groups_get_everything(backend: Backend) -> None:
    p = prefix()
    a, b = backend.make(p), backend.make(p)
    a.emit_many(Kind.EVENTS, [(f"k{i}", i) for i in range(40)])
    seen_a: list[int] = []
    seen_b: list[int] = []
    ca, cb = a.consumer(Kind.EVENTS, "workers"), b.consumer(Kind.EVENTS, "workers")

    def step() -> bool:
        for c, seen in ((ca, seen_a), (cb, seen_b)):
            batch = c.poll(max_messages=7, timeout=0.2)
            seen.extend(m.value for m in batch)
            c.commit(batch)
        return len(seen_a) + len(seen_b) >= 40

    wait_for(step, timeout=40, what="the group to consume 40 messages")
    assert sorted(seen_a + seen_b) == list(range(40))  # each message to one member only
    ca.close()
    cb.close()
    other = drain(b, Kind.EVENTS, "audit", 40)
    assert sorted(m.value for m in other) == list(range(40))


def test_a_failing_handler_gets_the_message_again(backend: Backend) -> None:
    q = backend.make(prefix())
    q.emit_many(Kind.EVENTS, [("a", 1), ("a", 2), ("a", 3)])
    calls: list[int] = []

    def flaky(m: Message) -> None:
        calls.append(m.value)
        if m.value == 2 and calls.count(2) == 1:
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        wait_for(lambda: q.receive(Kind.EVENTS, "h", flaky, timeout=0.2) and False, timeout=20, what="failure")
    drain(q, Kind.EVENTS, "h", 2, handler=flaky)
    assert calls[: calls.index(2) + 1] == [1, 2]
    assert calls[calls.index(2) + 1 :] == [2, 3]  # 1 was committed; 2 and 3 came again


def test_uncommitted_messages_go_to_another_member_when_one_closes(backend: Backend) -> None:
    p = prefix()
    a, b = backend.make(p), backend.make(p)
    a.emit_many(Kind.POINTS, [("s", i) for i in range(5)])
    ca = a.consumer(Kind.POINTS, "engine")
    first = wait_for(lambda: ca.poll(timeout=0.2), timeout=30, what="a first batch")
    assert first
    ca.close()  # dies without committing
    again = drain(b, Kind.POINTS, "engine", 5)
    assert [m.value for m in again][:5] == list(range(5))


def test_broadcast_readers_each_read_everything_from_the_beginning(backend: Backend) -> None:
    p = prefix()
    a, b = backend.make(p), backend.make(p)
    a.emit_many(Kind.TASKS, [("cpu_alert", {"v": 1}), ("mem_alert", {"v": 1})])
    a.emit(Kind.TASKS, "cpu_alert", {"v": 2})
    for q in (a, b, a):  # a second reader on the same instance also starts at the beginning
        r = q.broadcast(Kind.TASKS)
        got: list[Message] = []
        wait_for(lambda: got.extend(r.poll(timeout=0.2)) or len(got) >= 3, timeout=20, what="3 definitions")
        latest = {m.key: m.value for m in got}
        assert latest == {"cpu_alert": {"v": 2}, "mem_alert": {"v": 1}}
        r.close()


def test_prefixes_separate_instances_on_one_cluster(backend: Backend) -> None:
    mine, theirs = backend.make(prefix()), backend.make(prefix())
    assert mine.naming.topic(Kind.EVENTS) != theirs.naming.topic(Kind.EVENTS)
    theirs.emit(Kind.EVENTS, "x", "theirs")
    mine.emit(Kind.EVENTS, "x", "mine")
    got = drain(mine, Kind.EVENTS, "h", 1)
    assert [m.value for m in got] == ["mine"]
    assert mine.receive(Kind.EVENTS, "h", got.append, timeout=0.5) == 0


def test_a_poison_record_is_dead_lettered_and_does_not_stop_the_consumer(backend: Backend) -> None:
    q = backend.make(prefix())
    q.emit(Kind.EVENTS, "good-1", 1)
    backend.raw_insert(q, Kind.EVENTS, "bad", b"{not json")
    q.emit(Kind.EVENTS, "good-2", 2)
    got = drain(q, Kind.EVENTS, "h", 2)
    assert sorted(m.value for m in got) == [1, 2]  # keys may sit on different partitions
    assert q.stats.poison == 1 and q.stats.dead_lettered == 1
    dead = drain(q, Kind.DEAD_LETTER, "ops", 1)
    assert dead[0].key == "bad"
    assert dead[0].value["topic"] == q.naming.topic(Kind.EVENTS)
    assert "not JSON" in dead[0].value["error"]


def test_a_large_message_travels_through_storage_and_a_huge_one_is_refused(backend: Backend) -> None:
    q = backend.make(prefix(), {"soft-limit": 1 * MIB, "hard-limit": 10 * MIB})
    big = "x" * (2 * MIB)
    q.emit(Kind.EVENTS, "big", {"payload": big})
    with pytest.raises(MessageTooLargeError) as info:
        q.emit(Kind.EVENTS, "huge", {"payload": "y" * (12 * MIB)})
    assert "above the hard limit of 10485760 bytes" in str(info.value)
    assert info.value.size > 12 * MIB
    q.emit(Kind.EVENTS, "small", {"payload": "ok"})  # the queue keeps working
    got = sorted(drain(q, Kind.EVENTS, "h", 2), key=lambda m: m.key)
    assert [m.key for m in got] == ["big", "small"]
    assert got[0].value == {"payload": big}
    sizes = backend.raw_sizes(q, Kind.EVENTS, 2)
    assert max(sizes) < 1024  # the record holds a reference, not the payload
    protector = q.protector
    assert protector is not None
    assert protector.stats.stored == 1 and protector.stats.refused == 1
    assert q.stats.refused == 1
