"""Alert topics and their events, shown by every instance's API in Kafka mode.

With ``[queue] type = "kafka"`` the runtime's delivery stage — on whichever instance owns the
event's partition — writes each event's latest state to the compacted, broadcast
``topic_state`` kind (key ``topic/alert id`` → an :class:`~kapacity.alert.topics.EventState`
dict, see :mod:`kapacity.runtime.records`). :class:`TopicSync` reads that kind from the
beginning on one thread (the :class:`~kapacity.server.defsync.BroadcastSync` machinery) and
applies every record to the local engine's :class:`~kapacity.alert.topics.Topics`, which the
topic routes (``GET /alerts/topics[/<t>[/events[/<id>]]]``) serve: any instance shows every
event, whichever instance processed it. A topic's level stays the highest of its events.

``DELETE /alerts/topics/<t>`` deletes cluster-wide: :meth:`TopicSync.delete_topic_events`
writes a tombstone for every event of the topic this instance has read, on the partition its
state record was read from — the partition the delivery stage wrote it to (the event's
``events`` partition), so compaction removes the record and the tombstone follows it in
that partition's order; another instance, or this one after a restart, drops the event too.
Own tombstones are noted in an :class:`~kapacity.server.defsync.EchoFilter` first, so that
older records of those keys, still on their way, do not bring the events back; a record
written after the tombstone (the alert fired again) does, as in Kapacitor.

>>> topics = Topics()
>>> apply_topic_state(topics, "cpu/cpu:host=a", {"message": "hot", "details": "", "time": 5,
...                                               "duration": 0, "level": "CRITICAL"})
'created'
>>> topics.topic_states()[0].level
<Level.CRITICAL: 3>
>>> apply_topic_state(topics, "cpu/cpu:host=a", None), topics.topic("cpu")
('deleted', None)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

from kapacity.alert.topics import EventState, Topics, TopicStateError
from kapacity.queue.base import Message, Queue
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.kinds import Kind
from kapacity.server.defsync import BroadcastSync, EchoFilter
from kapacity.server.engine import Engine

__all__ = [
    "CATCH_UP_MAX_S",
    "TOMBSTONE_TIMEOUT_S",
    "TombstoneWriter",
    "TopicSync",
    "apply_topic_state",
    "split_topic_key",
    "tombstone_writer",
]

log: Final = logging.getLogger("kapacity.server.topicsync")

#: At start the topic states are read until the broadcast is idle, but at most this long:
#: on a busy cluster ``topic_state`` never goes idle, and the API must not wait for it (the
#: rest is applied by the thread within seconds).
CATCH_UP_MAX_S: Final = 10.0
#: How long a topic delete waits for the broker to acknowledge its tombstones. It runs under
#: the engine lock (as definition writes do), so it is bounded well below a client's patience.
TOMBSTONE_TIMEOUT_S: Final = 10.0

TombstoneWriter = Callable[[Sequence[tuple[str, int | None]]], None]
"""Writes a ``topic_state`` tombstone per ``(key, partition)`` (``None``: the backend's
choice) and returns once they are durable; raises :class:`QueueUnavailableError` if not."""


def split_topic_key(key: str) -> tuple[str, str]:
    """``topic/alert id`` → ``(topic, alert id)``. Topic IDs have no ``/`` (Kapacitor's
    ``^[-:\\._\\p{L}0-9]+$``); alert IDs may: the first ``/`` separates them."""
    topic, sep, event_id = key.partition("/")
    if not sep or not topic or not event_id:
        raise TopicStateError(f"topic_state key {key!r}: expected 'topic/alert id'")
    return topic, event_id


def apply_topic_state(
    topics: Topics, key: str, value: Any, keep_topic: Callable[[str], bool] = lambda _topic: False,
) -> str:
    """One ``topic_state`` record applied to ``topics``; returns ``created``, ``updated``,
    ``deleted`` or ``unchanged``.

    A tombstone (``value`` None) removes the event; a topic left with no events is removed
    too unless ``keep_topic(topic)`` (it has handlers: a topic exists once it has one).
    Raises :class:`TopicStateError` for a key or value of the wrong shape.
    """
    topic_id, event_id = split_topic_key(key)
    if value is None:
        if not topics.remove_event(topic_id, event_id):
            return "unchanged"
        topic = topics.topic(topic_id)
        if topic is not None and topic.event_count() == 0 and not keep_topic(topic_id):
            topics.delete_topic(topic_id)
        return "deleted"
    if not isinstance(value, dict):
        raise TopicStateError(f"topic_state {key!r}: value must be an object, got {type(value).__name__}")
    state = EventState.from_dict(value)
    current = topics.event_state(topic_id, event_id)
    if current == state:
        return "unchanged"
    topics.update(topic_id, event_id, state)
    return "created" if current is None else "updated"


def tombstone_writer(queue: Queue) -> TombstoneWriter:
    """Tombstones on the partition given (Kafka), or through ``queue.delete`` (a backend
    without partitions, e.g. the embedded SQLite queue)."""
    from kapacity.queue.kafka import KafkaQueue

    if isinstance(queue, KafkaQueue):
        return _kafka_writer(queue.settings.producer_properties(), queue.naming.topic(Kind.TOPIC_STATE))

    def delete(items: Sequence[tuple[str, int | None]]) -> None:
        for key, _ in items:
            queue.delete(Kind.TOPIC_STATE, key)

    return delete


def _kafka_writer(props: dict[str, str], topic: str) -> TombstoneWriter:
    # ``Queue.delete`` lets the key pick the partition, but a state record lives on its
    # event's partition (the changelog follows ``events``, keyed by alert ID, not by
    # ``topic/alert id``): a tombstone elsewhere would neither be compacted with the record
    # nor ordered after it. Deletes are rare: one short-lived producer per delete.
    def write(items: Sequence[tuple[str, int | None]]) -> None:
        if not items:
            return
        from confluent_kafka import KafkaError, Producer

        errors: list[KafkaError] = []

        def report(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                errors.append(err)

        # The queue's own producer takes this key as a bool; a report per record is wanted here.
        producer = Producer({k: v for k, v in props.items() if k != "delivery.report.only.error"})
        try:
            for key, partition in items:
                producer.produce(topic, None, key.encode("utf-8"),
                                 partition=-1 if partition is None else partition, on_delivery=report)
            left = producer.flush(TOMBSTONE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - BufferError / KafkaException: not written
            raise QueueUnavailableError(f"tombstones to {topic}: {exc}") from None
        if left:
            producer.purge()
            raise QueueUnavailableError(f"tombstones to {topic}: {left} without an ack within {TOMBSTONE_TIMEOUT_S:g}s")
        if errors:
            raise QueueUnavailableError(f"tombstones to {topic}: {errors[0].name()}: {errors[0].str()}")

    return write


class TopicSync(BroadcastSync):
    """Reads ``topic_state`` and applies it to ``engine.topics`` (one thread; each batch under
    ``engine.lock``, as the topic routes read under it)."""

    what = "topics"

    def __init__(
        self, queue: Queue, engine: Engine, *, echoes: EchoFilter | None = None,
        write_tombstones: TombstoneWriter | None = None,
    ) -> None:
        super().__init__(queue, (Kind.TOPIC_STATE,), catch_up_max_s=CATCH_UP_MAX_S)
        self.engine = engine
        self.echoes = EchoFilter() if echoes is None else echoes
        self._write = tombstone_writer(queue) if write_tombstones is None else write_tombstones
        #: topic → alert id → the partition its last record was read from (where its
        #: tombstone goes); the same events as the local view, kept under ``engine.lock``.
        self._where: dict[str, dict[str, int]] = {}

    def _keep(self, topic_id: str) -> bool:
        return bool(self.engine._topic_handlers.get(topic_id))

    def _apply_batch(self, kind: Kind, batch: Sequence[Message]) -> None:
        with self.engine.lock:
            for m in batch:
                if not self.echoes.received(kind.value, m.key, m.value):
                    self.counts["skipped"] += 1
                    continue
                try:
                    done = apply_topic_state(self.engine.topics, m.key, m.value, self._keep)
                except (TopicStateError, ValueError, TypeError) as exc:
                    self.counts["errors"] += 1
                    log.error("topics: topic_state record %r (partition %d offset %d) cannot be shown: %s",
                              m.key, m.partition, m.offset, exc)
                    continue
                self._locate(m.key, m.partition, m.value is None)
                self.counts["unchanged" if done == "unchanged" else "applied"] += 1

    def _locate(self, key: str, partition: int, deleted: bool) -> None:
        topic_id, event_id = split_topic_key(key)
        where = self._where.setdefault(topic_id, {})
        if deleted:
            where.pop(event_id, None)
            if not where:
                del self._where[topic_id]
        else:
            where[event_id] = partition

    def delete_topic_events(self, topic_id: str) -> int:
        """Tombstones for every event of ``topic_id`` read so far (call under ``engine.lock``,
        before deleting the topic locally); returns how many. Raises
        :class:`QueueUnavailableError` when they were not acknowledged (nothing is noted)."""
        items = [(f"{topic_id}/{eid}", p) for eid, p in sorted(self._where.get(topic_id, {}).items())]
        kind = Kind.TOPIC_STATE.value
        for key, _ in items:
            self.echoes.sent(kind, key, None)
        try:
            self._write(items)
        except BaseException:
            for key, _ in items:
                self.echoes.failed(kind, key)
            raise
        return len(items)

    def status(self) -> dict[str, int]:
        return {**self.counts, "pending_echoes": self.echoes.pending(),
                "events": sum(len(w) for w in self._where.values())}
