"""Exactly-once consume → process → produce, with per-partition state restored from a changelog.

Python has no Kafka Streams; this is the equivalent loop (Kestra's executor runs the same
guarantee). Each :meth:`TransactionalLoop.run_once`:

1. polls a batch from the ``source`` kind (group ``consumer-prefix + source + "_" + name``,
   ``read_committed``, no auto-commit);
2. ``begin_transaction``; runs ``process(message, state)`` for each message, where ``state``
   is the :class:`PartitionState` of the message's partition; produces the outputs and every
   state change to the ``changelog`` kind **on the same partition number** (the changelog
   must have as many partitions as the source);
3. ``send_offsets_to_transaction`` (the input positions, with the consumer's group metadata:
   a zombie of a previous generation is fenced) and ``commit_transaction``.

Order and why: outputs and changelog writes are produced *before* the offsets join the
transaction, and nothing becomes visible to ``read_committed`` readers until the commit; if
``process`` or the broker fails, the transaction is aborted, the batch's state changes are
discarded and the consumer is rewound to the batch start, so the batch runs again and its
effects appear exactly once.

State: on assignment a partition's state is restored from the changelog — from the local
checkpoint (``<state dir>/<transactional id>/<partition>.json``, written at a clean
:meth:`close`, deleted when read) if there is one, else from the beginning. After an
unclean shutdown there is no checkpoint, so local state is never trusted without one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue import codec
from kapacity.queue._records import log
from kapacity.queue.base import DEFAULT_BATCH, Message
from kapacity.queue.errors import QueueError, QueueUnavailableError
from kapacity.queue.kinds import Kind

__all__ = ["Output", "PartitionState", "Process", "TransactionalLoop", "restore_start"]

#: Restoring reads the changelog up to its end; a broker that stops answering fails restore
#: rather than leaving the loop running on partial state.
RESTORE_TIMEOUT_S: Final = 60.0
#: Bound for transactional calls (commit/abort/init): librdkafka's transaction.timeout.ms
#: defaults to 60 s; waiting longer than that is pointless.
TXN_TIMEOUT_S: Final = 60.0
#: How often librdkafka reports statistics (the lag figures of :meth:`TransactionalLoop.lag`);
#: the callback runs inside poll, once a second costs nothing measurable.
STATS_INTERVAL_MS: Final = 1000

Output = tuple[Kind, str, Any]
"""``(kind, key, value)`` produced by ``process``; value ``None`` is a tombstone."""


class PartitionState:
    """The key → value state of one partition; writes stay pending until the commit."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._data: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}
        self.restored_records = 0
        self.changelog_offset = 0  # next changelog offset not yet reflected in _data

    _DELETED: Final = object()

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._pending:
            value = self._pending[key]
            return default if value is self._DELETED else value
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self._pending[key] = value

    def delete(self, key: str) -> None:
        self._pending[key] = self._DELETED

    def items(self) -> dict[str, Any]:
        merged = {**self._data}
        for k, v in self._pending.items():
            if v is self._DELETED:
                merged.pop(k, None)
            else:
                merged[k] = v
        return merged

    def _changes(self) -> list[tuple[str, Any]]:
        return [(k, None if v is self._DELETED else v) for k, v in self._pending.items()]

    def _commit(self) -> None:
        for k, v in self._pending.items():
            if v is self._DELETED:
                self._data.pop(k, None)
            else:
                self._data[k] = v
        self._pending.clear()

    def _abort(self) -> None:
        self._pending.clear()

    def _apply(self, key: str, value: Any) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value


Process = Callable[[Message, PartitionState], Iterable[Output]]


def restore_start(checkpoint: int | None, low: int, high: int) -> int | None:
    """Where to resume a restore: the checkpoint's changelog offset when the changelog still
    holds everything after it (``low <= checkpoint <= high``), else ``None`` — read from the
    beginning and discard the local state (the changelog was truncated or recreated).

    >>> restore_start(40, 0, 50), restore_start(60, 0, 50), restore_start(5, 10, 50), restore_start(None, 0, 9)
    (40, None, None, None)
    """
    if checkpoint is None or checkpoint < low or checkpoint > high:
        return None
    return checkpoint
PartitionsHook = Callable[[list[int]], None]
"""Called with partition numbers: after a restore (assign), before a drop (revoke), after an abort."""

#: Transactions of a killed instance block ``read_committed`` readers until the broker aborts
#: them: a restart with the same transactional id aborts them at once (``init_transactions``),
#: otherwise this bound applies (librdkafka's default is 60 s).
DEFAULT_TRANSACTION_TIMEOUT_MS: Final = 15_000


class TransactionalLoop:
    """One instance of an exactly-once stage; see the module doc for the protocol."""

    def __init__(
        self,
        settings: KafkaQueueConfig,
        *,
        name: str,
        source: Kind,
        changelog: Kind,
        process: Process,
        state_dir: str | Path,
        instance: str = "0",
        on_assign: PartitionsHook | None = None,
        on_revoke: PartitionsHook | None = None,
        on_abort: PartitionsHook | None = None,
    ) -> None:
        self.naming = settings.naming()
        self._source, self._changelog_kind = source, changelog
        self._source_topic = self.naming.topic(source)
        self._changelog = self.naming.topic(changelog)
        self._process = process
        self._hooks = (on_assign, on_revoke, on_abort)
        #: Restore progress: partitions being restored and records read so far (for status).
        self.restoring: dict[int, int] = {}
        self.transactional_id = self.naming.transactional_id(f"{name}_{instance}")
        self._dir = Path(state_dir) / self.transactional_id
        self._dir.mkdir(parents=True, exist_ok=True)
        self._consumer_props = settings.consumer_properties()
        self.states: dict[int, PartitionState] = {}
        self._lag: dict[int, int] = {}
        self._consumer = Consumer(
            {
                "statistics.interval.ms": STATS_INTERVAL_MS,
                # Static membership: a restarted instance (same name) takes its partitions
                # back instead of waiting for the broker to expire the dead member.
                "group.instance.id": self.transactional_id,
                **self._consumer_props,
                "group.id": self.naming.group(source, name),
                "isolation.level": "read_committed",
                "stats_cb": self._on_stats,
            }
        )
        producer = settings.producer_properties()
        producer["transactional.id"] = self.transactional_id
        producer.setdefault("transaction.timeout.ms", str(DEFAULT_TRANSACTION_TIMEOUT_MS))
        self._producer = Producer(producer)
        try:
            # Fences a previous incarnation (same transactional id) and aborts what it left
            # open: read_committed readers are not held back by a killed instance.
            self._producer.init_transactions(TXN_TIMEOUT_S)
        except KafkaException as exc:
            raise QueueUnavailableError(f"cannot start transactions as {self.transactional_id}: {exc}") from None
        self._consumer.subscribe([self._source_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    # --- assignment and restore ---------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.states[tp.partition] = self._restore(tp.partition)
        if self._hooks[0] is not None:
            self._hooks[0]([tp.partition for tp in partitions])
        # Start from the committed positions, read here explicitly (a partition without one
        # from the beginning): the input offsets are part of the state just restored.
        try:
            committed = consumer.committed(partitions, timeout=RESTORE_TIMEOUT_S)
        except KafkaException as exc:
            raise QueueUnavailableError(f"cannot read the committed offsets of {self._source_topic}: {exc}") from None
        consumer.assign([
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # No transaction is open here: revocation happens inside poll/consume, and every
        # batch is committed (or aborted) before the next poll, so what we own is committed.
        if self._hooks[1] is not None:
            self._hooks[1]([tp.partition for tp in partitions])
        for tp in partitions:
            self.states.pop(tp.partition, None)

    def _checkpoint_path(self, partition: int) -> Path:
        return self._dir / f"{partition}.json"

    def _restore(self, partition: int) -> PartitionState:
        state = PartitionState(partition)
        start = OFFSET_BEGINNING
        path = self._checkpoint_path(partition)
        if path.exists():
            try:
                saved = json.loads(path.read_text())
                state._data, state.changelog_offset = dict(saved["data"]), int(saved["offset"])
                start = state.changelog_offset
            except (OSError, ValueError, KeyError, TypeError):
                state = PartitionState(partition)
            path.unlink(missing_ok=True)  # valid once: a crash after this must restore fully
        reader = Consumer({**self._consumer_props, "group.id": f"{self.transactional_id}_restore"})
        try:
            low, high = reader.get_watermark_offsets(TopicPartition(self._changelog, partition), timeout=10)
            valid = restore_start(None if start == OFFSET_BEGINNING else start, low, high)
            if valid is None and start != OFFSET_BEGINNING:
                log.warning("state checkpoint of %s[%d] at %d is stale (changelog %d..%d): rebuilding it",
                            self._changelog, partition, start, low, high)
                state, start = PartitionState(partition), OFFSET_BEGINNING
            position = low if start == OFFSET_BEGINNING else start
            if position >= high:
                return state
            reader.assign([TopicPartition(self._changelog, partition, start)])
            deadline = time.monotonic() + RESTORE_TIMEOUT_S
            self.restoring[partition] = 0
            while position < high:
                if time.monotonic() > deadline:
                    raise QueueUnavailableError(f"restoring {self._changelog}[{partition}] timed out")
                for m in reader.consume(1000, 0.2):
                    if m.error() is not None:
                        continue
                    key = (m.key() or b"").decode("utf-8", "replace")
                    raw = m.value()
                    state._apply(key, None if raw is None else codec.decode(raw))
                    state.restored_records += 1
                self.restoring[partition] = state.restored_records
                # Transaction markers take offsets too: follow the position, not the count.
                pos = reader.position([TopicPartition(self._changelog, partition)])[0].offset
                position = max(position, pos)
            state.changelog_offset = position
            return state
        finally:
            self.restoring.pop(partition, None)
            reader.close()

    # --- the loop -----------------------------------------------------------------------

    def run_once(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> int:
        """Process one batch in one transaction; returns how many messages it handled."""
        first = self._consumer.poll(timeout)
        if first is None:
            return 0
        records = [first, *self._consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]
        # A partition revoked during consume() is no longer ours: its records go to the new owner.
        records = [r for r in records if r.error() is None and (r.partition() or 0) in self.states]
        if not records:
            return 0
        self._producer.begin_transaction()
        touched: set[int] = set()
        try:
            for r in records:
                p = r.partition() or 0
                state = self.states[p]
                touched.add(p)
                message = self._message(r)
                for kind, key, value in self._process(message, state):
                    self._produce(self.naming.topic(kind), key, value, None)
            for p in touched:
                for key, value in self.states[p]._changes():
                    self._produce(self._changelog, key, value, p)
            self._producer.send_offsets_to_transaction(
                self._positions(records), self._consumer.consumer_group_metadata(), TXN_TIMEOUT_S
            )
            self._producer.commit_transaction(TXN_TIMEOUT_S)
        except BaseException:
            self._abort(records, touched)
            raise
        for p in touched:
            self.states[p]._commit()
        return len(records)

    def _message(self, r: KafkaMessage) -> Message:
        raw_key = r.key()
        raw = r.value()
        return Message(
            self._source,
            raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else "",
            None if raw is None else codec.decode(raw),
            r.offset() or 0,
            r.partition() or 0,
            r.timestamp()[1],
        )

    def _produce(self, topic: str, key: str, value: Any, partition: int | None) -> None:
        data = None if value is None else codec.encode(value)
        self.produce_raw(topic, key.encode("utf-8"), data, partition)

    def produce_raw(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Produce inside the open transaction (only from ``process``): any topic of the cluster."""
        kwargs: dict[str, Any] = {}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:  # a full local buffer: serve delivery reports, try again
                self._producer.poll(0.05)

    def partition_count(self, topic: str, timeout: float = 10.0) -> int:
        """Partitions of ``topic`` (from the producer's metadata)."""
        meta = self._producer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise QueueError(f"topic {topic} does not exist or has no partitions")
        return len(meta.partitions)

    def _positions(self, records: list[KafkaMessage]) -> list[TopicPartition]:
        last: dict[int, int] = {}
        for r in records:
            last[r.partition() or 0] = r.offset() or 0
        return [TopicPartition(self._source_topic, p, o + 1) for p, o in last.items()]

    def _abort(self, records: list[KafkaMessage], touched: set[int]) -> None:
        for p in touched:
            self.states[p]._abort()
        if self._hooks[2] is not None:
            self._hooks[2](sorted(touched))
        try:
            self._producer.abort_transaction(TXN_TIMEOUT_S)
        except KafkaException as exc:  # fenced or fatal: the caller must drop this loop
            raise QueueError(f"cannot abort the transaction of {self.transactional_id}: {exc}") from exc
        first: dict[int, int] = {}
        for r in records:
            p = r.partition() or 0
            first.setdefault(p, r.offset() or 0)
        for p, o in first.items():
            self._consumer.seek(TopicPartition(self._source_topic, p, o))
        log.warning("transaction of %s aborted; %d messages will be processed again", self.transactional_id, len(records))

    def assignment(self) -> list[int]:
        """The partitions of the source this loop owns now."""
        return sorted(self.states)

    def lag(self) -> dict[int, int]:
        """Per owned partition: records after the consumer's position, as last reported by
        librdkafka's statistics (every :data:`STATS_INTERVAL_MS`; read from any thread)."""
        owned = set(self.states)
        return {p: n for p, n in self._lag.items() if p in owned}

    def _on_stats(self, raw: str) -> None:
        try:
            parts = json.loads(raw)["topics"][self._source_topic]["partitions"]
            self._lag = {int(p): int(v["consumer_lag"]) for p, v in parts.items()
                         if int(p) >= 0 and int(v.get("consumer_lag", -1)) >= 0}
        except (KeyError, ValueError, TypeError):
            return

    def close(self) -> None:
        """Write each partition's checkpoint (a clean shutdown), then leave the group."""
        for p, state in self.states.items():
            state.changelog_offset = self._changelog_end(p)
            self._checkpoint_path(p).write_text(json.dumps({"offset": state.changelog_offset, "data": state._data}))
        self._consumer.close()
        self._producer.flush(10)
        self._producer.close()

    def abandon(self) -> None:
        """Stop without a checkpoint (as a crash would): the next owner restores fully."""
        self._consumer.close()
        self._producer.close()

    def _changelog_end(self, partition: int) -> int:
        _low, high = self._consumer.get_watermark_offsets(TopicPartition(self._changelog, partition), timeout=10)
        return int(high)
