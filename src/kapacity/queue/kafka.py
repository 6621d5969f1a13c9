"""The Kafka backend: one topic per kind, string keys, JSON values, confluent-kafka clients.

Delivery invariants:

* ``emit`` returns after the broker's ack (``acks=all`` by default); ``emit_many`` produces
  the whole batch, then waits once. The producer's local buffer is bounded by librdkafka
  (``queue.buffering.max.*``); when it is full, produce waits for room (block policy).
* Group consumers never auto-commit (``enable.auto.commit=false``): ``commit`` (after the
  handler ran) sends the offsets *asynchronously* — no broker round trip per batch — and
  keeps them as pending until the broker confirms. Pending offsets are sent again with the
  next commit, and committed *synchronously* when the partition is revoked in a rebalance
  (before it goes to its new owner) and at ``close``. A commit lost in between (a crash, a
  failed request) only means redelivery: at-least-once either way. Only partitions the
  member owns are committed; on rebalance, uncommitted messages go to the new owner.
* Broadcast readers assign every partition from the beginning without joining a group and
  never commit.
* A poison record is copied to the dead-letter topic before its offset is committed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue import codec
from kapacity.queue._records import dead_letter_value, decode_value, log
from kapacity.queue.admin import STARTUP_TIMEOUT_S, EnsureReport, ensure_topics, topic_specs
from kapacity.queue.base import DEFAULT_BATCH, BroadcastReader, GroupConsumer, Message, Queue, QueueStats
from kapacity.queue.errors import (
    MessageTooLargeError,
    PoisonMessageError,
    QueueClosedError,
    QueueError,
    QueueUnavailableError,
)
from kapacity.queue.kinds import Kind
from kapacity.queue.loggers import KafkaLoggers
from kapacity.queue.protection import SWEEP_GRACE_MS, Protector

__all__ = ["KafkaQueue"]

#: How long a synchronous emit waits for its ack before failing: above librdkafka's
#: default message.timeout.ms would be pointless, so it follows delivery.timeout.ms.
EMIT_TIMEOUT_S: Final = 60.0
#: Waiting for room in a full producer buffer, one poll at a time.
_BUFFER_WAIT_S: Final = 0.05
#: How often stored payloads past their topic's retention are removed (they are at least
#: SWEEP_GRACE_MS old and usually days: an hourly pass keeps the storage bounded cheaply).
SWEEP_INTERVAL_S: Final = 3600.0
#: Records handed to librdkafka per produce_batch call: amortises the call, bounded memory.
_CHUNK: Final = 1000
#: Consumer properties kapacity sets unless the configuration does. librdkafka stops fetching
#: a partition while its local queue holds ``queued.min.messages`` (100,000) and then waits
#: ``fetch.queue.backoff.ms`` — 1000 ms by default — before it looks again: a consumer
#: catching up a backlog drained the queue in a fraction of that and sat idle for the rest
#: (about half of the receive time in bench/queues.py, issue 5). 10 ms bounds the idle gap;
#: the price is a wake-up per partition every 10 ms while the queue is full.
CONSUMER_DEFAULTS: Final[dict[str, str]] = {"fetch.queue.backoff.ms": "10"}
#: The ListOffsets timestamp meaning "the end of the partition" (Kafka's ``LATEST``; under
#: ``read_committed`` the last stable offset, the end for non-transactional kinds).
LATEST_OFFSET: Final = -1


#: Unbound accessors for building per-batch dicts without Python code per record.
_PARTITION: Final = KafkaMessage.partition
_OFFSET: Final = KafkaMessage.offset
_ERROR: Final = KafkaMessage.error
_M_PARTITION: Final = itemgetter(Message._fields.index("partition"))
_M_OFFSET: Final = itemgetter(Message._fields.index("offset"))


def _ms() -> int:
    return time.time_ns() // 1_000_000


class _Delivery:
    """Delivery reports: keeps the first error (and feeds PRODUCER_ACK loggers).

    Completion is not counted per message (a Python lock per record would halve
    throughput): a synchronous emit waits with ``flush``, which returns only once every
    record produced before it has its report — so every callback has run by then.
    """

    __slots__ = ("error", "_loggers")

    def __init__(self, loggers: KafkaLoggers | None) -> None:
        self.error: KafkaError | None = None
        self._loggers = loggers

    def __call__(self, err: KafkaError | None, msg: KafkaMessage) -> None:
        if err is not None:
            if self.error is None:
                self.error = err
        elif self._loggers is not None:
            self._loggers.acked(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1])

    def take(self) -> KafkaError | None:
        err, self.error = self.error, None
        return err


def _plain_messages(kind: Kind, records: list[KafkaMessage]) -> list[Message]:
    """The messages of a batch of plain records: JSON values, UTF-8 keys.

    Raises ``ValueError`` (a value that is not JSON — tombstone, storage reference, poison —
    or a key that is not UTF-8) or ``AttributeError`` (a record without a key) for any
    other batch; the caller then decodes record by record. One comprehension with no
    per-record branch: the whole per-message cost of the hot path (issue 5).
    """
    loads = codec.loads
    # tuple.__new__ directly: a third of the cost of the named tuple's generated __new__.
    new = tuple.__new__
    return [
        new(
            Message,
            # None key/value: AttributeError / ValueError, which the caller's fallback handles.
            (kind, r.key().decode(), loads(r.value()), r.offset(), r.partition(), r.timestamp()[1]),  # type: ignore[union-attr, arg-type]
        )
        for r in records
    ]


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
        sweep_interval_s: float = SWEEP_INTERVAL_S,
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
        self.report = EnsureReport()
        if ensure:
            self.report = ensure_topics(self._client, topic_specs(settings), startup_timeout)
        producer: dict[str, object] = {**settings.producer_properties(), "error_cb": self._on_error}
        # Errors are all a sync emit needs (flush waits for every record): skipping success
        # reports saves a Python callback per record; PRODUCER_ACK loggers need them.
        # confluent-kafka type-checks this key itself: a bool, not librdkafka's string.
        default = "true" if self.loggers is None else "false"
        producer["delivery.report.only.error"] = str(producer.get("delivery.report.only.error", default)) == "true"
        self._producer = Producer(producer)
        self._max_bytes = int(str(producer.get("message.max.bytes", "1000000")))
        self._async = _Delivery(self.loggers)
        self._closed = False
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        if protector is not None and protector.storage is not None and sweep_interval_s > 0:
            self._sweeper = threading.Thread(
                target=self._sweep_loop, args=(sweep_interval_s,), name="queue-sweeper", daemon=True
            )
            self._sweeper.start()

    @staticmethod
    def _on_error(err: KafkaError) -> None:
        log.warning("kafka queue client: %s", err)

    # --- emitting ---------------------------------------------------------------------

    def _produce(self, kind: Kind, items: Iterable[tuple[str, Any]], delivery: _Delivery) -> int:
        """Produce every item (encoding, protection, loggers); returns how many.

        Records go to librdkafka in chunks of :data:`_CHUNK` with one ``produce_batch`` call
        (the key decides the partition, as with ``produce``; a ``str`` key is sent as UTF-8).
        """
        if self._closed:
            raise QueueClosedError("the kafka queue is closed")
        topic = self.naming.topic(kind)
        protector = self.protector if self.protector is not None and self.protector.active else None
        loggers = self.loggers
        encode = codec.encode
        if protector is None and loggers is None:
            # The hot path: one comprehension per chunk, nothing per record but the encoder
            # and the record's dict (no protection or logger checks, no appends).
            it = iter(items)
            n = 0
            while part := list(islice(it, _CHUNK)):
                records = [{"key": k, "value": None if v is None else encode(v)} for k, v in part]
                n += self._send(topic, records, delivery)
            return n
        chunk: list[dict[str, Any]] = []
        n = 0
        for key, value in items:
            if value is None:
                data: bytes | None = None
            elif protector is not None:
                try:
                    data = protector.protect(kind.value, topic, key, encode(value))
                except MessageTooLargeError:
                    self.stats.add("refused")
                    raise
            else:
                data = encode(value)
            if loggers is not None:
                loggers.produced(topic, key, data)
            chunk.append({"key": key, "value": data})
            if len(chunk) >= _CHUNK:
                n += self._send(topic, chunk, delivery)
                chunk = []
        if chunk:
            n += self._send(topic, chunk, delivery)
        return n

    def _send(self, topic: str, chunk: list[dict[str, Any]], delivery: _Delivery) -> int:
        todo = chunk
        while True:
            try:
                queued = self._producer.produce_batch(topic, todo, on_delivery=delivery)
            except BufferError:
                queued = 0
            except KafkaException as exc:
                raise QueueError(f"cannot produce to {topic}: {exc}") from None
            if queued == len(todo):
                return len(chunk)
            failed = [m for m in todo if "_error" in m] if queued else todo
            for m in failed:
                err = m.pop("_error", None)
                code = err.code() if isinstance(err, KafkaError) else None
                if code == KafkaError.MSG_SIZE_TOO_LARGE:
                    size = len(m["value"] or b"")
                    self.stats.add("refused")
                    raise MessageTooLargeError(topic, m["key"], size, self._max_bytes, hard=False)
                if err is not None and code != KafkaError._QUEUE_FULL:
                    raise QueueError(f"cannot produce to {topic}: {err}")
            self._producer.poll(_BUFFER_WAIT_S)  # full local buffer: block until room
            todo = failed

    def _wait(self, delivery: _Delivery, timeout: float, what: str) -> None:
        left = self._producer.flush(timeout)
        if left > 0:
            raise QueueUnavailableError(f"{what}: {left} records without an ack within {timeout:g}s")
        err = delivery.take()
        if err is not None:
            raise QueueError(f"{what}: {err.name()}: {err.str()}")

    def emit(self, kind: Kind, key: str, value: Any) -> None:
        self.emit_many(kind, ((key, value),))

    def emit_many(self, kind: Kind, items: Iterable[tuple[str, Any]]) -> None:
        """Produce every item, then wait once for all acks.

        Not atomic: when one item is refused (:class:`MessageTooLargeError`) or fails, items
        before it may already be on the topic — callers retry idempotently (at-least-once).
        """
        delivery = _Delivery(self.loggers)
        n = self._produce(kind, items, delivery)
        self._wait(delivery, EMIT_TIMEOUT_S, f"emit to {self.naming.topic(kind)}")
        self.stats.add("emitted", n)

    def emit_async(self, kind: Kind, key: str, value: Any) -> None:
        self._produce(kind, ((key, value),), self._async)
        self.stats.add("emitted")
        self._producer.poll(0)  # serve delivery reports as we go

    def flush(self, timeout: float = 30.0) -> None:
        self._wait(self._async, timeout, "flush")

    def delete(self, kind: Kind, key: str) -> None:
        delivery = _Delivery(self.loggers)
        self._produce(kind, ((key, None),), delivery)
        self._wait(delivery, EMIT_TIMEOUT_S, f"delete from {self.naming.topic(kind)}")

    # --- reading ----------------------------------------------------------------------

    def _decode_batch(self, kind: Kind, records: list[KafkaMessage]) -> list[Message]:
        """Decoded messages of a batch; poison records are dead-lettered and left out.

        Three paths, cheapest first: a batch of plain JSON records and valid UTF-8 keys
        (the common case) in one comprehension (:func:`_plain_messages`); a batch holding
        tombstones, storage references or poison record by record, plain records inline;
        with loggers every record through :meth:`_decode` (they see every record).
        """
        if self.loggers is not None:
            return [m for r in records if (m := self._decode(kind, r)) is not None]
        try:
            return _plain_messages(kind, records)
        except (ValueError, AttributeError):
            pass  # not plain: sort the records out one by one below
        out: list[Message] = []
        append = out.append
        fast = codec.decode_fast
        new = tuple.__new__
        for r in records:
            raw = r.value()
            # decode_fast never mistakes a storage reference for a value (JSON cannot start
            # with the reference's NUL byte), so plain records skip the protector.
            value = fast(raw) if raw else codec.SLOW
            if value is codec.SLOW:
                m = self._decode(kind, r)
                if m is not None:
                    append(m)
                continue
            raw_key = r.key()
            append(
                new(
                    Message,
                    (
                        kind,
                        raw_key.decode("utf-8", "replace") if raw_key is not None else "",
                        value,
                        r.offset() or 0,
                        r.partition() or 0,
                        r.timestamp()[1],
                    ),
                )
            )
        return out

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
            self._produce(Kind.DEAD_LETTER, ((key, dead),), delivery)
            self._wait(delivery, EMIT_TIMEOUT_S, "dead-letter")
            self.stats.add("dead_lettered")
            return None
        return Message(kind, key, value, offset, partition, ts)

    def _batch(self, consumer: Consumer, max_messages: int, timeout: float) -> list[KafkaMessage]:
        """Wait up to ``timeout`` for the first record, then take what is already there."""
        first = consumer.poll(timeout)
        if first is None:
            return []
        records = [first, *consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]
        if not any(map(_ERROR, records)):  # the usual batch: checked in C, kept as it is
            return records
        out: list[KafkaMessage] = []
        for m in records:
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

    def consumer_config(self, group_id: str) -> dict[str, Any]:
        """librdkafka properties of this queue's consumers: :data:`CONSUMER_DEFAULTS` under
        the configured consumer properties, the group id and the error callback."""
        return {**CONSUMER_DEFAULTS, **self._consumer_props, "group.id": group_id, "error_cb": self._on_error}

    def _new_consumer(self, group_id: str, **callbacks: Any) -> Consumer:
        return Consumer({**self.consumer_config(group_id), **callbacks})

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

    def _sweep_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sweep_storage()
            except OSError as exc:  # a storage hiccup: try again next round
                log.warning("kafka queue storage sweep: %s", exc)

    def _close_backend(self) -> None:
        if self._closed:
            return
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join()
        try:
            self.flush()
        finally:
            self._closed = True
            self._producer.flush(5.0)
            self._producer.close()  # release librdkafka's threads and connections now


class _KafkaGroupConsumer(GroupConsumer):
    """A group member: polls, commits asynchronously, commits synchronously when it must.

    ``_pending`` maps each owned partition with handled but unconfirmed offsets to the offset
    to commit (the next one to read). Every commit sends all of it (a failed request is thus
    repeated by the next one); the broker's confirmation (``on_commit``, served during poll)
    removes what it confirmed. What is pending when a partition is revoked, or at ``close``,
    is committed synchronously: the member's last word on the partitions it leaves.
    """

    def __init__(self, queue: KafkaQueue, kind: Kind, group: str) -> None:
        self._q, self._kind = queue, kind
        self._topic = queue.naming.topic(kind)
        self._tail: dict[int, int] = {}  # partition → highest offset of the last batch
        self._last_good: dict[int, int] = {}  # partition → its last decodable message
        self._owned: set[int] = set()  # partitions assigned to this member now
        self._pending: dict[int, int] = {}  # owned partition → offset to commit, unconfirmed
        self._closed = False
        self._consumer = queue._new_consumer(queue.naming.group(kind, group), on_commit=self._on_commit)
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        if self._closed:
            raise QueueClosedError("the consumer is closed")
        deadline = time.monotonic() + timeout
        while True:
            records = self._q._batch(self._consumer, max_messages, max(0.0, deadline - time.monotonic()))
            # Records of one partition arrive in offset order: the last one is the tail.
            # (Built in C, no Python code per record; consumed records always have both.)
            self._tail = dict(zip(map(_PARTITION, records), map(_OFFSET, records)))  # type: ignore[arg-type]
            out = self._q._decode_batch(self._kind, records)
            self._last_good = self._tail if len(out) == len(records) else {m.partition: m.offset for m in out}
            if records and not out:
                self._commit_offsets(self._tail)  # a batch of poison only: move past it
                continue
            self._q.stats.add("received", len(out))
            if out or time.monotonic() >= deadline:
                return out

    # --- commits ----------------------------------------------------------------------

    def _commit_offsets(self, last: dict[int, int]) -> None:
        """Mark ``partition → last handled offset`` and send every pending offset, not waiting."""
        owned = self._owned
        for p, o in last.items():
            # A partition revoked since its records were polled belongs to another member,
            # which reads it from the offset committed at the revocation.
            if p in owned:
                self._pending[p] = o + 1
        if self._pending:
            self._send_async([TopicPartition(self._topic, p, o) for p, o in self._pending.items()])

    def _send_async(self, offsets: list[TopicPartition]) -> None:
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # not even queued: still pending, sent again next time
            self._q.stats.add("commit_failures")
            log.warning("kafka queue commit to %s failed: %s", self._topic, exc)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to an asynchronous commit (served during poll and close)."""
        if err is not None:
            self._q.stats.add("commit_failures")
            log.warning("kafka queue commit to %s failed (sent again with the next): %s", self._topic, err.str())
            return
        for tp in partitions:
            if tp.error is not None:
                self._q.stats.add("commit_failures")
                log.warning("kafka queue commit to %s[%d] failed: %s", self._topic, tp.partition, tp.error.str())
                continue
            if self._pending.get(tp.partition) == tp.offset:
                del self._pending[tp.partition]  # a later offset stays pending until confirmed
            if self._q.loggers is not None:
                self._q.loggers.committed(self._topic, tp.partition, tp.offset)

    def _commit_sync(self, offsets: dict[int, int]) -> None:
        """Commit ``partition → offset`` and wait for the broker; failures are logged."""
        if not offsets:
            return
        try:
            done = self._consumer.commit(
                offsets=[TopicPartition(self._topic, p, o) for p, o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            # E.g. the member was already removed from the group: the partitions' new owners
            # re-read from the last confirmed commit (redelivery, nothing lost).
            self._q.stats.add("commit_failures")
            log.warning("kafka queue commit to %s failed: %s", self._topic, exc)
            return
        for tp in done or ():
            if tp.error is not None:
                self._q.stats.add("commit_failures")
                log.warning("kafka queue commit to %s[%d] failed: %s", self._topic, tp.partition, tp.error.str())
            elif self._q.loggers is not None:
                self._q.loggers.committed(self._topic, tp.partition, tp.offset)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._owned.update(tp.partition for tp in partitions if tp.topic == self._topic)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Still the owner here: commit what was handled before the partitions move on."""
        revoked = {tp.partition for tp in partitions if tp.topic == self._topic}
        self._commit_sync({p: self._pending.pop(p) for p in revoked if p in self._pending})
        self._owned -= revoked

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Lost (session timed out): another member may own them already, so no commit."""
        lost = {tp.partition for tp in partitions if tp.topic == self._topic}
        for p in lost & self._pending.keys():
            log.warning("kafka queue lost %s[%d]: messages before offset %d may be delivered again",
                        self._topic, p, self._pending.pop(p))
        self._owned -= lost

    def commit(self, messages: Sequence[Message]) -> None:
        # A partition's messages are in offset order: the last one seen is the highest.
        last = dict(zip(map(_M_PARTITION, messages), map(_M_OFFSET, messages)))  # in C, per batch
        for p, o in list(last.items()):
            # Poison records after the batch's last good message of p are done with it.
            if o >= self._last_good.get(p, o):
                last[p] = max(o, self._tail.get(p, o))
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
        if self._closed:
            return
        self._closed = True
        try:
            pending, self._pending = self._pending, {}
            self._commit_sync(pending)  # the final word: durable before the member leaves
        finally:
            self._consumer.close()  # revokes (nothing pending any more) and leaves the group


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
            out = self._q._decode_batch(self._kind, records)
            self._q.stats.add("received", len(out))
            if out or not records or time.monotonic() >= deadline:
                return out

    def log_end(self, timeout: float) -> dict[int, int]:
        """Per partition, the offset after its last record now (see :mod:`kapacity.queue.heads`)."""
        topic = self._q.naming.topic(self._kind)
        wanted = [TopicPartition(topic, tp.partition, LATEST_OFFSET) for tp in self._consumer.assignment()]
        if not wanted:
            return {}
        try:
            answer = self._consumer.offsets_for_times(wanted, timeout=timeout)
        except KafkaException as exc:
            raise QueueUnavailableError(f"cannot read the end offsets of {topic}: {exc}") from None
        failed = [tp for tp in answer if tp.error is not None]
        if failed:
            raise QueueUnavailableError(f"cannot read the end offsets of {topic}: {failed[0].error}")
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

