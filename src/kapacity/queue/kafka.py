"""The Kafka backend: one topic per kind, string keys, JSON values, confluent-kafka clients.

Delivery invariants:

* ``emit`` returns after the broker's ack (``acks=all`` by default); ``emit_many`` produces
  the whole batch, then waits once. The producer's local buffer is bounded by librdkafka
  (``queue.buffering.max.*``); when it is full, produce waits for room (block policy).
* Group consumers never auto-commit (``enable.auto.commit=false``): offsets are committed
  synchronously after the handler ran, so a crash re-delivers (at-least-once). On rebalance,
  uncommitted messages go to the partition's new owner.
* Broadcast readers assign every partition from the beginning without joining a group and
  never commit.
* A poison record is copied to the dead-letter topic before its offset is committed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue._records import dead_letter_value, decode_value, encode_value, log
from kapacity.queue.admin import STARTUP_TIMEOUT_S, ensure_topics, topic_specs
from kapacity.queue.base import DEFAULT_BATCH, BroadcastReader, GroupConsumer, Message, Queue, QueueStats
from kapacity.queue.errors import PoisonMessageError, QueueClosedError, QueueError, QueueUnavailableError
from kapacity.queue.kinds import Kind
from kapacity.queue.loggers import KafkaLoggers
from kapacity.queue.protection import SWEEP_GRACE_MS, Protector

__all__ = ["KafkaQueue"]

#: How long a synchronous emit waits for its ack before failing: above librdkafka's
#: default message.timeout.ms would be pointless, so it follows delivery.timeout.ms.
EMIT_TIMEOUT_S: Final = 60.0
#: Waiting for room in a full producer buffer, one poll at a time.
_BUFFER_WAIT_S: Final = 0.05


def _ms() -> int:
    return time.time_ns() // 1_000_000


class _Delivery:
    """Collects delivery reports of one batch (or of every async emit)."""

    def __init__(self, loggers: KafkaLoggers | None) -> None:
        self.pending = 0
        self.error: KafkaError | None = None
        self._lock = threading.Lock()
        self._loggers = loggers

    def __call__(self, err: KafkaError | None, msg: KafkaMessage) -> None:
        with self._lock:
            self.pending -= 1
            if err is not None and self.error is None:
                self.error = err
        if err is None and self._loggers is not None:
            self._loggers.acked(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1])


class KafkaQueue(Queue):
    """The Kafka backend. Creates/updates its topics at start-up unless ``ensure=False``."""

    def __init__(
        self,
        settings: KafkaQueueConfig,
        *,
        protector: Protector | None = None,
        instance_id: str | None = None,
        ensure: bool = True,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.naming = settings.naming()
        self.stats = QueueStats()
        self.protector = protector
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        rules = settings.client.loggers
        # No rule → no interceptor at all: the hot path only tests for None.
        self.loggers: KafkaLoggers | None = KafkaLoggers(rules) if rules else None
        self._client = settings.client_properties()
        self._consumer_props = settings.consumer_properties()
        if ensure:
            self.report = ensure_topics(self._client, topic_specs(settings), startup_timeout)
        self._producer = Producer({**settings.producer_properties(), "error_cb": self._on_error})
        self._async = _Delivery(self.loggers)
        self._closed = False

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        log.warning("kafka queue client: %s", err)

    # --- emitting ---------------------------------------------------------------------

    def _produce(self, kind: Kind, key: str, value: Any, delivery: _Delivery, raw: bool = False) -> None:
        if self._closed:
            raise QueueClosedError("the kafka queue is closed")
        topic = self.naming.topic(kind)
        data = value if raw else encode_value(self.protector, kind.value, topic, key, value)
        if self.loggers is not None:
            self.loggers.produced(topic, key, data)
        with delivery._lock:
            delivery.pending += 1
        while True:
            try:
                self._producer.produce(topic, data, key.encode("utf-8"), on_delivery=delivery)
                return
            except BufferError:
                self._producer.poll(_BUFFER_WAIT_S)
            except KafkaException as exc:
                with delivery._lock:
                    delivery.pending -= 1
                raise QueueError(f"cannot produce to {topic}: {exc}") from None

    def _wait(self, delivery: _Delivery, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while delivery.pending > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QueueUnavailableError(f"{what}: no ack from the broker within {timeout:g}s")
            self._producer.flush(min(left, 1.0))
        if delivery.error is not None:
            err, delivery.error = delivery.error, None
            raise QueueError(f"{what}: {err.name()}: {err.str()}")

    def emit(self, kind: Kind, key: str, value: Any) -> None:
        delivery = _Delivery(self.loggers)
        self._produce(kind, key, value, delivery)
        self._wait(delivery, EMIT_TIMEOUT_S, f"emit to {self.naming.topic(kind)}")
        self.stats.add("emitted")

    def emit_many(self, kind: Kind, items: Iterable[tuple[str, Any]]) -> None:
        delivery = _Delivery(self.loggers)
        n = 0
        for key, value in items:
            self._produce(kind, key, value, delivery)
            n += 1
        self._wait(delivery, EMIT_TIMEOUT_S, f"emit to {self.naming.topic(kind)}")
        self.stats.add("emitted", n)

    def emit_async(self, kind: Kind, key: str, value: Any) -> None:
        self._produce(kind, key, value, self._async)
        self.stats.add("emitted")
        self._producer.poll(0)  # serve delivery reports as we go

    def flush(self, timeout: float = 30.0) -> None:
        self._wait(self._async, timeout, "flush")

    def delete(self, kind: Kind, key: str) -> None:
        delivery = _Delivery(self.loggers)
        self._produce(kind, key, None, delivery)
        self._wait(delivery, EMIT_TIMEOUT_S, f"delete from {self.naming.topic(kind)}")

    # --- reading ----------------------------------------------------------------------

    def _decode(self, kind: Kind, msg: KafkaMessage) -> Message | None:
        """The message, or ``None`` for a poison record (dead-lettered here)."""
        topic = msg.topic() or ""
        partition, offset = msg.partition() or 0, msg.offset() or 0
        raw_key = msg.key()
        key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else str(raw_key or "")
        raw = msg.value()
        ts = msg.timestamp()[1]
        if self.loggers is not None:
            self.loggers.consumed(topic, partition, offset, ts, key, raw)
        try:
            value = decode_value(self.protector, raw)
        except PoisonMessageError as exc:
            self.stats.add("poison")
            delivery = _Delivery(self.loggers)
            dead = dead_letter_value(topic, partition, offset, key, raw, exc)
            self._produce(Kind.DEAD_LETTER, key, dead, delivery)
            self._wait(delivery, EMIT_TIMEOUT_S, "dead-letter")
            self.stats.add("dead_lettered")
            return None
        return Message(kind, key, value, offset, partition, ts)

    def _batch(self, consumer: Consumer, max_messages: int, timeout: float) -> list[KafkaMessage]:
        """Wait up to ``timeout`` for the first record, then take what is already there."""
        first = consumer.poll(timeout)
        if first is None:
            return []
        rest = consumer.consume(max_messages - 1, 0) if max_messages > 1 else []
        out: list[KafkaMessage] = []
        for m in [first, *rest]:
            err = m.error()
            if err is None:
                out.append(m)
            elif err.code() != KafkaError._PARTITION_EOF:
                if err.fatal():
                    raise QueueUnavailableError(f"kafka consumer failed: {err.str()}")
                log.warning("kafka queue consumer: %s", err.str())
        return out

    def consumer(self, kind: Kind, group: str) -> GroupConsumer:
        return _KafkaGroupConsumer(self, kind, group)

    def broadcast(self, kind: Kind) -> BroadcastReader:
        return _KafkaBroadcast(self, kind)

    def _new_consumer(self, group_id: str) -> Consumer:
        return Consumer({**self._consumer_props, "group.id": group_id, "error_cb": self._on_error})

    def sweep_storage(self) -> int:
        """Remove stored payloads older than their topic's retention (compacted kinds: kept)."""
        if self.protector is None:
            return 0
        now = _ms()
        removed = 0
        for kind in Kind:
            retention = int(self.settings.topic_properties(kind).get("retention.ms", "-1"))
            if retention >= 0:
                cutoff = now - max(retention, SWEEP_GRACE_MS)
                removed += self.protector.sweep(self.naming.topic(kind), None, cutoff)
        return removed

    def _close_backend(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._producer.flush(5.0)


class _KafkaGroupConsumer(GroupConsumer):
    def __init__(self, queue: KafkaQueue, kind: Kind, group: str) -> None:
        self._q, self._kind = queue, kind
        self._topic = queue.naming.topic(kind)
        self._consumer = queue._new_consumer(queue.naming.group(kind, group))
        self._consumer.subscribe([self._topic])
        self._tail: dict[int, int] = {}  # partition → highest offset of the last batch
        self._closed = False

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        if self._closed:
            raise QueueClosedError("the consumer is closed")
        deadline = time.monotonic() + timeout
        while True:
            records = self._q._batch(self._consumer, max_messages, max(0.0, deadline - time.monotonic()))
            out: list[Message] = []
            self._tail = {}
            for r in records:
                p, o = r.partition() or 0, r.offset() or 0
                self._tail[p] = max(self._tail.get(p, -1), o)
                m = self._q._decode(self._kind, r)
                if m is not None:
                    out.append(m)
            if records and not out:
                self._commit_offsets(self._tail)  # a batch of poison only: move past it
                continue
            self._q.stats.add("received", len(out))
            if out or time.monotonic() >= deadline:
                return out

    def _commit_offsets(self, last: dict[int, int]) -> None:
        if not last:
            return
        offsets = [TopicPartition(self._topic, p, o + 1) for p, o in last.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partition: its new owner re-reads from the last commit.
            log.warning("kafka queue commit to %s failed: %s", self._topic, exc)
            return
        if self._q.loggers is not None:
            for p, o in last.items():
                self._q.loggers.committed(self._topic, p, o + 1)

    def commit(self, messages: Sequence[Message]) -> None:
        last: dict[int, int] = {}
        for m in messages:
            last[m.partition] = max(last.get(m.partition, -1), m.offset)
        for p, o in list(last.items()):
            # Poison records after the last handled message of the batch are done too.
            tail = self._tail.get(p, -1)
            if tail > o and not any(m.partition == p and m.offset > o for m in messages):
                last[p] = tail
        self._commit_offsets(last)

    def rewind(self, messages: Sequence[Message]) -> None:
        first: dict[int, int] = {}
        for m in messages:
            first[m.partition] = min(first.get(m.partition, m.offset), m.offset)
        for p, o in first.items():
            try:
                self._consumer.seek(TopicPartition(self._topic, p, o))
            except KafkaException as exc:
                log.warning("kafka queue rewind of %s[%d] failed: %s", self._topic, p, exc)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()


class _KafkaBroadcast(BroadcastReader):
    def __init__(self, queue: KafkaQueue, kind: Kind) -> None:
        self._q, self._kind = queue, kind
        topic = queue.naming.topic(kind)
        self._consumer = queue._new_consumer(queue.naming.broadcast_group(kind, queue.instance_id))
        try:
            meta = self._consumer.list_topics(topic, timeout=STARTUP_TIMEOUT_S).topics.get(topic)
        except KafkaException as exc:
            self._consumer.close()
            raise QueueUnavailableError(f"cannot read metadata of {topic}: {exc}") from None
        if meta is None or meta.error is not None or not meta.partitions:
            self._consumer.close()
            raise QueueError(f"topic {topic} does not exist (start the queue with ensure=True)")
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)])
        self._closed = False

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        if self._closed:
            raise QueueClosedError("the broadcast reader is closed")
        deadline = time.monotonic() + timeout
        while True:
            records = self._q._batch(self._consumer, max_messages, max(0.0, deadline - time.monotonic()))
            out = [m for r in records if (m := self._q._decode(self._kind, r)) is not None]
            self._q.stats.add("received", len(out))
            if out or not records or time.monotonic() >= deadline:
                return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

