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

Every blocking transactional call is bounded (:class:`BoundedCaller`): librdkafka can block
past its own timeout after a broker outage (see :data:`PRODUCER_METADATA_RECOVERY`); a call
stuck that long, or interrupted by a stop, makes the loop fatal (its stage rebuilds it).

Order and why: outputs and changelog writes are produced *before* the offsets join the
transaction, and nothing becomes visible to ``read_committed`` readers until the commit; if
``process`` or the broker fails, the transaction is aborted, the batch's state changes are
discarded and the consumer is rewound to the batch start, so the batch runs again and its
effects appear exactly once.

Producer ids: a killed instance's open transaction is aborted when its successor initialises
transactions, and the successor must then write with a **new producer id** (see
:func:`incarnation_ids`): noida-db 0.2.3 lists an aborted transaction in every later fetch
response, so librdkafka's ``read_committed`` consumers that fetch from past its abort marker
drop every later record of the same producer id on that partition (silently: a stall, or a
loss once a later offset commits). Kafka itself is not affected; the cost there is one more
transactional id per restart (expired by the broker after ``transactional.id.expiration.ms``).

A transaction that spans a lost connection is never trusted: noida-db 0.2.3 drops the
transactions open when it stops, yet acknowledges what the client sends afterwards — the
input offsets and the ``EndTxn(commit)`` (seen: the records written before the stop are
aborted while the offsets sent after it are committed: a silent loss; or both are gone while
``commit_transaction`` returned). So a batch during which the producer reported a lost
connection (up to its ``send_offsets_to_transaction``) is aborted and runs again, under a
new producer id (the old one now has an abort marker, see below). A connection lost during
the final ``commit_transaction`` is checked afterwards: the loop reads the group's committed
offsets back (``read_committed`` consumers fetch them stable, KIP-447); offsets short of the
batch mean the broker dropped it, and it is rewound and runs again the same way. An offset
that cannot be read leaves the outcome unknown: the loop is fatal, and its rebuild restores
from the changelog, which is right either way. Kafka itself never drops an acknowledged
transaction (it fences the producer instead); there this costs a re-run or one offset fetch
per connection loss.

State: on assignment a partition's state is restored from the changelog — from the local
checkpoint (``<state dir>/<transactional id>/<partition>.json``, written at a clean
:meth:`close`, deleted when read) if there is one, else from the beginning. After an
unclean shutdown there is no checkpoint, so local state is never trusted without one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue import codec
from kapacity.queue._records import log
from kapacity.queue.base import DEFAULT_BATCH, Message
from kapacity.queue.errors import QueueError, QueueUnavailableError
from kapacity.queue.kafka import CONSUMER_DEFAULTS
from kapacity.queue.kinds import Kind
from kapacity.queue.partstate import PartitionState, restore_start
from kapacity.queue.txncalls import (
    BoundedCaller,
    ConnectionLostError,
    FatalLoopError,
    StuckCallError,
    is_connection_loss,
    is_fatal,
)
from kapacity.queue.txnids import LineCollector, incarnation_ids, parse_epoch

__all__ = [
    "BoundedCaller",
    "FatalLoopError",
    "Output",
    "PartitionState",
    "Process",
    "TransactionalLoop",
    "incarnation_ids",
    "is_fatal",
    "parse_epoch",
    "restore_start",
    "StuckCallError",
]

#: Restoring reads the changelog up to its end; a broker that stops answering fails restore
#: rather than leaving the loop running on partial state.
RESTORE_TIMEOUT_S: Final = 60.0
#: librdkafka's timeout for ``init_transactions`` (a start, or a new producer id after an
#: abort): its own default transaction.timeout.ms is 60 s; waiting longer is pointless.
TXN_TIMEOUT_S: Final = 60.0
#: librdkafka's timeout for a batch's ``send_offsets_to_transaction``, ``commit_transaction``
#: and ``abort_transaction``: twice the loop's transaction timeout
#: (:data:`DEFAULT_TRANSACTION_TIMEOUT_MS`). A coordinator silent that long has aborted the
#: transaction itself (Kafka) or is away: the batch is aborted and runs again.
BATCH_TXN_TIMEOUT_S: Final = 30.0
#: How much longer than librdkafka's own timeout a call may block before it is declared
#: stuck: librdkafka 2.16 can wait for ever regardless of the timeout given (issue #5511,
#: see :data:`PRODUCER_METADATA_RECOVERY`). A stuck call makes the loop fatal: its stage is
#: rebuilt with new clients, whose new producer id fences the stuck one and aborts its
#: transaction.
CALL_GRACE_S: Final = 5.0
#: How often librdkafka reports statistics (the lag figures of :meth:`TransactionalLoop.lag`);
#: the callback runs inside poll, once a second costs nothing measurable.
STATS_INTERVAL_MS: Final = 1000

Output = tuple[Kind, str, Any]
"""``(kind, key, value)`` produced by ``process``; value ``None`` is a tombstone."""


Process = Callable[[Message, PartitionState], Iterable[Output]]


PartitionsHook = Callable[[list[int]], None]
"""Called with partition numbers: after a restore (assign), before a drop (revoke), after an abort."""

#: librdkafka 2.16 re-bootstraps a client once every broker is unreachable (a queue broker
#: restart): it decommissions the broker handles, yet a producer's group-coordinator cache
#: keeps the decommissioned one, and ``send_offsets_to_transaction`` then waits for it to
#: come up, for ever — its timeout is not applied (librdkafka issue #5511). Without
#: re-bootstrap the handles stay and reconnect to the restarted broker; a cluster that comes
#: back under other addresses is reached by the next producer (one is built from the
#: bootstrap servers after every failed batch), and a call stuck all the same is bounded
#: (:data:`CALL_GRACE_S`). The consumers keep re-bootstrap: their calls are not affected.
PRODUCER_METADATA_RECOVERY: Final = "none"

#: How many incarnations :meth:`TransactionalLoop._start_producer` tries for a working id
#: never initialised before; how long it waits for librdkafka's debug line with the epoch.
INCARNATION_TRIES: Final = 8
TRACE_WAIT_S: Final = 2.0

#: Key of the aborted records :meth:`TransactionalLoop._seal` writes.
SEAL_KEY: Final = b"kapacity-seal"

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
        # The queue's consumer defaults (fetch back-off) under the configured properties.
        self._consumer_props = {**CONSUMER_DEFAULTS, **settings.consumer_properties()}
        self.states: dict[int, PartitionState] = {}
        self._lag: dict[int, int] = {}
        #: Why a client of this loop is dead for good (see :class:`FatalLoopError`), else None.
        self.fatal: str | None = None
        #: Set by close/abandon: an assignment callback run while leaving restores nothing.
        self._closing = False
        #: Connection losses the producer reported (see :meth:`_verify_commit`).
        self._connection_losses = 0
        #: Batches run again because the connection was lost during their transaction.
        self.connection_reruns = 0
        #: Topics outside the loop's kinds written in the open transaction (``produce_raw``).
        self._raw_topics: set[str] = set()
        self._consumer = Consumer(
            {
                "error_cb": self._on_error,
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
        self._producer_props = settings.producer_properties()
        self._producer_props.setdefault("transaction.timeout.ms", str(DEFAULT_TRANSACTION_TIMEOUT_MS))
        self._producer_props.setdefault("metadata.recovery.strategy", PRODUCER_METADATA_RECOVERY)
        #: The transactional id the transactions run under (see :func:`incarnation_ids`).
        self.working_id = self.transactional_id
        #: Every blocking transactional call goes through it, with a deadline.
        self._calls = BoundedCaller(self.transactional_id)
        self._producer = self._start_producer()
        self._producer_open = True
        self._fresh_producer_needed = False
        self._consumer.subscribe([self._source_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    # --- producer incarnations -----------------------------------------------------------

    def _on_error(self, err: object) -> None:
        """librdkafka's error callback (inside poll), also given the errors of failed calls:
        remembers a fatal one for :meth:`run_once`."""
        if is_fatal(err) and self.fatal is None:
            self.fatal = str(err)
            log.error("%s: fatal client error: %s", self.transactional_id, err)

    def _on_producer_error(self, err: object) -> None:
        """The producer's error callback (inside its poll): counts lost connections."""
        if is_connection_loss(err):
            self._connection_losses += 1
        self._on_error(err)

    def _producer_losses(self) -> int:
        """Serve the producer's queued error events; the connection losses reported so far."""
        self._producer.poll(0)
        return self._connection_losses

    def _check_fatal(self) -> None:
        if self.fatal is not None:
            raise FatalLoopError(f"{self.transactional_id} cannot go on: {self.fatal}")

    def _init(self, transactional_id: str, extra: dict[str, Any] | None = None) -> Producer:
        producer = Producer({"error_cb": self._on_producer_error, **self._producer_props, **(extra or {}),
                             "transactional.id": transactional_id})
        try:
            self._calls.call(lambda: producer.init_transactions(TXN_TIMEOUT_S), TXN_TIMEOUT_S + CALL_GRACE_S,
                             f"init_transactions of {transactional_id}")
        except StuckCallError as exc:  # the producer is left to the blocked thread, unclosed
            self._stuck(exc)
            raise
        except KafkaException as exc:
            raise QueueUnavailableError(f"cannot start transactions as {transactional_id}: {exc}") from None
        return producer

    def _traced_init(self, transactional_id: str) -> int | None:
        """Initialise ``transactional_id`` once, with librdkafka's ``eos`` debug output, and
        close it: the producer epoch it got (None if the output did not show it)."""
        lines = LineCollector()
        logger = logging.getLogger(f"kapacity.queue.txn.{self.transactional_id}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(lines)
        try:
            producer = self._init(transactional_id, {"debug": "eos", "logger": logger})
            deadline = time.monotonic() + TRACE_WAIT_S
            while (epoch := parse_epoch(lines.lines)) is None and time.monotonic() < deadline:
                producer.poll(0.02)  # serves the queued log lines
            producer.close()
        finally:
            logger.removeHandler(lines)
        return epoch

    def _start_producer(self) -> Producer:
        """A transactional producer with a producer id no earlier incarnation used.

        Initialising the base id, then the previous incarnations' working ids, fences their
        zombies and aborts what they left open (``read_committed`` readers are not held back
        by a killed instance); the new working id then writes with a fresh producer id, never
        after one of its own abort markers (see the module doc). The working id is tried
        first: an epoch above 0 means it was initialised before, and the next incarnation is
        taken instead (seen once after a noida-db restart, which forgets the transactional
        ids: a renewed producer wrote with the producer id it replaced, after that id's
        abort marker; see docs/queue.md).
        An epoch missing from librdkafka's debug output is asked for again (each ask bumps
        the base epoch); only when it never shows is the base id itself the working id (the
        old scheme, whose one producer id can follow its own abort markers).
        """
        epoch: int | None = None
        for _ in range(INCARNATION_TRIES):
            epoch = self._traced_init(self.transactional_id)
            if epoch is None:
                log.warning("no producer epoch for %s in librdkafka's output: asking again", self.transactional_id)
                continue
            self.working_id, previous = incarnation_ids(self.transactional_id, epoch)
            for old in previous:
                self._init(old).close()
            used = self._traced_init(self.working_id)
            if used is not None and used == 0:
                break
            log.warning("%s: transactional id %s was initialised before (epoch %s): taking the next incarnation",
                        self.transactional_id, self.working_id, used)
        if epoch is None:
            log.warning("no producer epoch for %s in librdkafka's output: its producer id is reused",
                        self.transactional_id)
            self.working_id = self.transactional_id
        return self._init(self.working_id)

    def _stuck(self, exc: StuckCallError) -> None:
        """A call blocked past its bound (or was interrupted): this loop cannot go on."""
        if self.fatal is None:
            self.fatal = str(exc)
            log.error("%s: %s; the stage must rebuild the loop with new clients", self.transactional_id, exc)

    def interrupt(self) -> None:
        """Make a blocked transactional call give up now, and every later one (from any
        thread): for a stop that cannot wait for it. The loop is then fatal (abandon it)."""
        self._calls.interrupt()

    def _close_producer(self, flush_s: float = 0.0) -> None:
        """Close the producer unless a call is stuck in it (closing would block as well).
        A producer whose transaction could not end makes ``close`` abort it and warn, or
        fail: it is replaced or dropped anyway, so that is logged, not raised."""
        if not self._producer_open:
            return
        self._producer_open = False
        try:
            if flush_s > 0:
                self._producer.flush(flush_s)
            self._producer.close()
        except Exception as exc:  # noqa: BLE001 - see above
            log.warning("%s: closing the producer: %s", self.working_id, exc)

    def _renew_producer(self) -> None:
        self._close_producer()
        self._producer = self._start_producer()
        self._producer_open, self._fresh_producer_needed = True, False

    # --- assignment and restore ---------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._closing:  # an assignment served while leaving the group: nothing to restore
            return
        try:
            self._assign(consumer, partitions)
        except Exception as exc:
            # The group believes these partitions are ours, yet nothing will be fetched from
            # them: the loop is unusable (e.g. the broker was still coming back from a restart
            # when the group rebalanced). Marked fatal, the stage rebuilds it and joins anew.
            if self.fatal is None:
                self.fatal = f"assignment of {self._source_topic} {[tp.partition for tp in partitions]} failed: {exc}"
                log.error("%s: %s", self.transactional_id, self.fatal)
            raise

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
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

    #: Called with the partitions a batch touched once its messages are processed, before
    #: their state changes are produced: a stage that builds its state records once per
    #: batch (not per message) ``put``s them here. Part of the transaction (a failure aborts).
    before_changelog: PartitionsHook | None = None

    def run_once(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> int:
        """Process one batch in one transaction; returns how many messages it handled."""
        self._check_fatal()
        if self._fresh_producer_needed:  # after an abort (see the module doc); before the poll,
            self._renew_producer()       # so that a failure here leaves no record polled
        first = self._consumer.poll(timeout)
        if first is None:
            return 0
        records = [first, *self._consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]
        for r in records:
            if r.error() is not None:
                self._on_error(r.error())
        self._check_fatal()
        # A partition revoked during consume() is no longer ours: its records go to the new owner.
        records = [r for r in records if r.error() is None and (r.partition() or 0) in self.states]
        if not records:
            return 0
        touched: set[int] = set()
        losses = self._producer_losses()
        # The per-message path: locals, and output topics resolved once per batch.
        states, process, message, produce = self.states, self._process, self._message, self._produce
        topics: dict[Kind, str] = {}
        self._raw_topics.clear()
        try:
            self._producer.begin_transaction()  # in the try: a failure rewinds the batch too
            for r in records:
                p = r.partition() or 0
                if r.key() == SEAL_KEY and r.value() is None:
                    continue  # a seal's record, on a broker that shows aborted records (Tansu)
                state = states[p]
                touched.add(p)
                for kind, key, value in process(message(r, p), state):
                    topic = topics.get(kind)
                    if topic is None:
                        topic = topics[kind] = self.naming.topic(kind)
                    produce(topic, key, value, None)
            if self.before_changelog is not None:
                self.before_changelog(sorted(touched))
            for p in touched:
                for key, value in self.states[p]._changes():
                    self._produce(self._changelog, key, value, p)
            self._commit(records, losses)
        except StuckCallError as exc:  # no abort either: the next incarnation aborts it
            self._producer_open = False  # a thread is inside it: closing would block as well
            self._stuck(exc)
            self._discard(touched)
            raise
        except BaseException as exc:
            if is_fatal(exc):  # fenced: no abort can succeed; the next owner aborts it
                self._on_error(exc)
                self._discard(touched)
                raise FatalLoopError(f"{self.working_id} cannot go on: {exc}") from exc
            try:
                self._abort(records, touched)
                if self._producer_losses() != losses:
                    self._seal(topics.values())
            except QueueError as abort_exc:
                if is_fatal(abort_exc.__cause__):
                    self._on_error(abort_exc.__cause__)
                    raise FatalLoopError(str(abort_exc)) from exc
                raise
            raise
        if self._producer_losses() != losses:
            self._verify_commit(records, touched, topics.values())
        for p in touched:
            self.states[p]._commit()
        return len(records)

    def run_tick(self, outputs_for: Callable[[int], list[Output]]) -> int:
        """One transaction of clock-driven outputs (deadman), no input: ``outputs_for(p)``
        for each owned partition ``p``, then the state changes (``before_changelog``). None
        begun when no partition has an output. Returns how many outputs were committed.

        A failure aborts it and discards the partitions' uncommitted state (the ``on_abort``
        hook); the next tick computes again. A connection lost meanwhile is handled as for a
        batch: aborted and sealed before the commit, sealed and a new producer id after it
        (with no input offsets there is nothing to read back, so a tick whose commit crossed
        a lost connection may be lost on a broker that drops transactions; see the module doc)."""
        self._check_fatal()
        if self._fresh_producer_needed:
            self._renew_producer()
        outputs = {p: outputs_for(p) for p in sorted(self.states)}
        outputs = {p: out for p, out in outputs.items() if out}
        if not outputs:
            return 0
        touched = set(outputs)
        losses = self._producer_losses()
        topics = {kind: self.naming.topic(kind) for out in outputs.values() for kind, _k, _v in out}
        producer = self._producer
        try:
            producer.begin_transaction()
            for out in outputs.values():
                for kind, key, value in out:
                    self._produce(topics[kind], key, value, None)
            if self.before_changelog is not None:
                self.before_changelog(sorted(touched))
            for p in touched:
                for key, value in self.states[p]._changes():
                    self._produce(self._changelog, key, value, p)

            def commit() -> None:
                if self._producer_losses() != losses:
                    raise ConnectionLostError(f"{self.working_id}: the connection to the cluster was lost "
                                              "during a clock tick's transaction; it is aborted")
                producer.commit_transaction(BATCH_TXN_TIMEOUT_S)

            self._calls.call(commit, BATCH_TXN_TIMEOUT_S + CALL_GRACE_S, "commit_transaction (tick)")
        except StuckCallError as exc:
            self._producer_open = False
            self._stuck(exc)
            self._discard(touched)
            raise
        except BaseException as exc:
            self._discard(touched)
            if is_fatal(exc):
                self._on_error(exc)
                raise FatalLoopError(f"{self.working_id} cannot go on: {exc}") from exc
            self._fresh_producer_needed = True
            try:
                self._bounded_abort(producer, "abort_transaction (tick)")
            except KafkaException as abort_exc:
                raise QueueError(f"cannot abort a clock tick's transaction of {self.working_id}: {abort_exc}") from exc
            if self._producer_losses() != losses:
                self._seal(topics.values())
            raise
        if self._producer_losses() != losses:
            self._fresh_producer_needed = True
            self._seal(topics.values())
        for p in touched:
            self.states[p]._commit()
        return sum(len(out) for out in outputs.values())

    def _commit(self, records: list[KafkaMessage], losses: int) -> None:
        """The input positions join the transaction, which commits; both bounded (see
        :data:`BATCH_TXN_TIMEOUT_S`, :data:`CALL_GRACE_S`), in one hand-off to the caller.
        A connection lost since the batch began (``losses`` then) aborts it instead."""
        producer, positions = self._producer, self._positions(records)
        metadata = self._consumer.consumer_group_metadata()

        def commit() -> None:
            producer.send_offsets_to_transaction(positions, metadata, BATCH_TXN_TIMEOUT_S)
            if self._producer_losses() != losses:
                self.connection_reruns += 1
                raise ConnectionLostError(f"{self.working_id}: the connection to the cluster was lost during "
                                          f"the transaction; it is aborted and its {len(records)} messages run again")
            producer.commit_transaction(BATCH_TXN_TIMEOUT_S)

        self._calls.call(commit, 2 * BATCH_TXN_TIMEOUT_S + CALL_GRACE_S, "send_offsets/commit_transaction")

    def _verify_commit(self, records: list[KafkaMessage], touched: set[int], topics: Iterable[str]) -> None:
        """The connection was lost during this batch's transaction and its commit was
        acknowledged: check that the broker kept it (see the module doc)."""
        positions = self._positions(records)
        try:
            committed = self._consumer.committed(positions, timeout=BATCH_TXN_TIMEOUT_S)
        except KafkaException as exc:
            self._discard(touched)
            if self.fatal is None:
                self.fatal = f"the outcome of a commit across a lost connection is unknown: {exc}"
            raise FatalLoopError(f"{self.working_id} cannot go on: {self.fatal}") from None
        kept = {tp.partition: tp.offset for tp in committed}
        short = [tp.partition for tp in positions if kept.get(tp.partition, -1) < tp.offset]
        if not short:
            return
        self._rewind(records, touched)
        self._seal(topics)
        self.connection_reruns += 1
        log.warning("%s: the broker acknowledged a commit it did not keep (the connection was lost meanwhile; "
                    "offsets short on partitions %s): %d messages will be processed again",
                    self.working_id, short, len(records))
        raise QueueUnavailableError(f"{self.working_id}: the broker dropped a transaction it acknowledged "
                                    f"({len(records)} messages will be processed again)")

    def _message(self, r: KafkaMessage, partition: int | None = None) -> Message:
        raw_key = r.key()
        raw = r.value()
        return Message(
            self._source,
            raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else "",
            None if raw is None else codec.decode(raw),
            r.offset() or 0,
            (r.partition() or 0) if partition is None else partition,
            r.timestamp()[1],
        )

    def _produce(self, topic: str, key: str, value: Any, partition: int | None) -> None:
        data = None if value is None else codec.encode(value)
        try:  # the common case without produce_raw's keyword building (-1: librdkafka picks)
            self._producer.produce(topic, data, key.encode("utf-8"), partition=-1 if partition is None else partition)
        except BufferError:
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
        self._raw_topics.add(topic)
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

    def _discard(self, touched: set[int]) -> None:
        """The batch's state changes, gone (the transaction is aborted, here or by the broker)."""
        for p in touched:
            self.states[p]._abort()
        if self._hooks[2] is not None:
            self._hooks[2](sorted(touched))

    def _abort(self, records: list[KafkaMessage], touched: set[int]) -> None:
        """Discard the batch, rewind to its start and abort its transaction.

        The rewind and the new producer id come first, whatever the abort does: a commit that
        timed out (the broker is away) is still "in progress" for librdkafka, so the abort
        fails with _CONFLICT; the batch must run again all the same (else a later commit
        would move the offsets past it), and only a new incarnation aborts the old
        transaction for sure (it initialises the previous working ids)."""
        self._rewind(records, touched)
        try:
            self._bounded_abort(self._producer, "abort_transaction")
        except KafkaException as exc:  # fatal: the caller drops this loop; else a new producer
            raise QueueError(f"cannot abort the transaction of {self.working_id} "
                             f"({len(records)} messages will be processed again): {exc}") from exc
        log.warning("transaction of %s aborted; %d messages will be processed again", self.working_id, len(records))

    def _bounded_abort(self, producer: Producer, what: str) -> None:
        """``abort_transaction``, bounded; a call stuck past its bound makes the loop fatal
        (:class:`StuckCallError`, the producer left to the blocked thread)."""
        try:
            self._calls.call(lambda: producer.abort_transaction(BATCH_TXN_TIMEOUT_S),
                             BATCH_TXN_TIMEOUT_S + CALL_GRACE_S, what)
        except StuckCallError as exc:
            self._producer_open = False
            self._stuck(exc)
            raise

    def _seal(self, topics: Iterable[str]) -> None:
        """After a batch that spanned a lost connection: one more transaction of the same
        producer id, aborted, with a record on every partition of every topic the batch may
        have written (``topics``, the changelog and ``produce_raw``'s), so that each gets an
        abort marker for that id.

        noida-db 0.2.3 forgets, across a restart, which partitions an open transaction had
        added; librdkafka does not add them again, so the records it sends after the restart
        belong to no transaction the broker knows, no marker ever ends them, and the
        partition's last stable offset stays before them for good (``read_committed``
        readers get nothing more: seen). An abort marker of their producer id ends them. The
        marker records are keyed (compacted topics refuse keyless ones), carry no value and
        are aborted: no ``read_committed`` reader sees them."""
        producer = self._producer
        names = sorted({*topics, self._changelog, *self._raw_topics})

        def seal() -> int:
            meta = producer.list_topics(timeout=BATCH_TXN_TIMEOUT_S).topics
            producer.begin_transaction()
            n = 0
            for name in names:
                for p in sorted((meta.get(name).partitions if meta.get(name) else {}) or {}):
                    producer.produce(name, None, SEAL_KEY, partition=p)
                    n += 1
            # Sent first: an abort purges what is still queued (and adds no partition).
            if producer.flush(BATCH_TXN_TIMEOUT_S) > 0:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "the marker records were not sent"))
            producer.abort_transaction(BATCH_TXN_TIMEOUT_S)
            return n

        try:
            n = self._calls.call(seal, 2 * BATCH_TXN_TIMEOUT_S + CALL_GRACE_S, "sealing abort")
        except StuckCallError as exc:
            self._producer_open = False
            self._stuck(exc)
            raise
        except KafkaException as exc:
            log.error("%s: could not seal the partitions of %s after a lost connection (read_committed readers "
                      "of a broker that forgot the transaction may stall): %s", self.working_id, names, exc)
            return
        log.warning("%s: sealed %d partitions of %s with an abort marker after a lost connection",
                    self.working_id, n, names)

    def _rewind(self, records: list[KafkaMessage], touched: set[int]) -> None:
        """Discard the batch and seek back to its start; the next batch needs a new producer
        id: this one now has an abort marker on the touched partitions (noida-db would hide
        its later records from ``read_committed`` readers, see the module doc)."""
        self._discard(touched)
        first: dict[int, int] = {}
        for r in records:
            p = r.partition() or 0
            first.setdefault(p, r.offset() or 0)
        for p, o in first.items():
            self._consumer.seek(TopicPartition(self._source_topic, p, o))
        self._fresh_producer_needed = True

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
        self._closing = True
        for p, state in self.states.items():
            state.changelog_offset = self._changelog_end(p)
            self._checkpoint_path(p).write_text(json.dumps({"offset": state.changelog_offset, "data": state._data}))
        try:
            self._consumer.close()
        finally:
            self._close_producer(flush_s=10)
            self._calls.close()

    def abandon(self) -> None:
        """Stop without a checkpoint (as a crash would): the next owner restores fully. A
        producer stuck in a call is left to its thread (closing it would block as well)."""
        self._closing = True
        try:
            self._consumer.close()
        finally:
            self._close_producer()
            self._calls.close()

    def _changelog_end(self, partition: int) -> int:
        _low, high = self._consumer.get_watermark_offsets(TopicPartition(self._changelog, partition), timeout=10)
        return int(high)
