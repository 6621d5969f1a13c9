"""The engine stages on the queue: points → tasks → events (+ alert state), and delivery.

Each stage is one thread owning its clients. Kafka (``queue.type = kafka``):

* **engine** — a :class:`~kapacity.queue.transactional.TransactionalLoop` over ``points``:
  per batch, one transaction holds the ``events`` produced, the ``alert_state`` changelog
  records (same partition number as the point) and the input offsets. State is restored
  per partition from the changelog when the partition is assigned (from the local
  checkpoint under ``state.dir`` after a clean stop, else from the beginning), before any
  point of it is processed; on revoke nothing is open (batches commit before the next poll).
* **regroup** — tasks that are not series-aligned (they group by a subset of the tags, by
  ``*`` across measurements, or not at all: see :mod:`.regroup`) do not run in the engine:
  it produces their points, in the same transaction, to ``repartition`` keyed by task +
  group; this loop consumes them, with ``regroup_state`` as its changelog, so every group
  lives on exactly one partition (one instance).
* **delivery** — a second loop over ``events`` with ``topic_state`` as its changelog; Kafka
  handlers on the queue's cluster write inside the transaction (see :mod:`.delivery`).

Embedded (SQLite): the same processing; a batch's events, state records and the
"processed through offset" marker are written in **one SQLite transaction**, then the claim
is committed. A batch redelivered after a crash skips the points at or below the marker,
so nothing is lost and nothing is emitted twice.

Task and handler definitions are read from the broadcast kinds before every batch, and up to
their end before a batch's first record (read-your-writes: see :mod:`.definitions`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from kapacity.config.model import Config
from kapacity.queue.base import Message, Queue
from kapacity.queue.kinds import Kind
from kapacity.runtime.definitions import Definitions
from kapacity.runtime.delivery import Deliverer
from kapacity.runtime.httpout import HttpOuts, merge
from kapacity.runtime.processor import PartitionProcessor, TaskSet
from kapacity.runtime.records import EventRecord, RecordError, point_from_value
from kapacity.runtime.regroup import Router, split_repartition_value
from kapacity.runtime.taskstats import KeptStats, TaskStats, merge_tasks
from kapacity.runtime.ticks import QuietOwners

if TYPE_CHECKING:  # imported lazily at run time: the Kafka stack loads only in Kafka mode
    from kapacity.queue.transactional import TransactionalLoop

__all__ = ["Stage", "start_stages"]

log: Final = logging.getLogger("kapacity.runtime")

#: Points per batch (one transaction each): large enough to amortise a commit (a few ms),
#: small enough that a batch processed again after a crash is cheap.
BATCH: Final = 500
#: How long a poll waits for work: bounds how late a stop or a new definition is noticed.
POLL_S: Final = 0.2
#: How often the task stages run the clock of their timed tasks (deadman), as the
#: embedded engine's ticker does (:data:`kapacity.server.engine.TICK_INTERVAL_S`).
TICK_S: Final = 1.0
#: The embedded marker key in ``alert_state``: the last points offset the state reflects.
OFFSET_MARKER: Final = "__points_offset__"
Output = tuple[Kind, str, Any]


class Stage(Protocol):
    name: str

    def run_once(self) -> int: ...
    def close(self) -> None: ...
    def abandon(self) -> None: ...
    def interrupt(self) -> None: ...
    def status(self) -> dict[str, Any]: ...


def _process_points(
    proc: PartitionProcessor, messages: Iterable[Message], router: Router | None = None
) -> Iterator[Output]:
    """Events of the tasks ``proc`` runs; with a ``router``, the ``repartition`` records of
    the tasks that are not series-aligned (in point order: a group's order is kept)."""
    for m in messages:
        yield from _point_outputs(proc, m, router)


def _point_outputs(proc: PartitionProcessor, m: Message, router: Router | None) -> list[Output]:
    """The outputs of one point (the per-message hot path: a list, no generator)."""
    try:
        point = point_from_value(m.value)
    except (RecordError, TypeError, ValueError) as exc:
        log.error("poison point at %d:%d moved to the dead-letter queue: %s", m.partition, m.offset, exc)
        return [(Kind.DEAD_LETTER, m.key, {"kind": "points", "offset": m.offset, "error": str(exc), "value": m.value})]
    out: list[Output] = [(Kind.EVENTS, ev.alert.id, ev.value()) for ev in proc.process(m.offset, point)]
    if router is not None:
        routes = router.routes(point)
        if routes:
            out.extend([(Kind.REPARTITION, key, value) for key, value in routes])
    return out


# --- Kafka ------------------------------------------------------------------------------------


class _KafkaStage:
    """What both Kafka stages share: definitions refreshed between transactional batches."""

    _defs: Definitions
    loop: TransactionalLoop

    def run_once(self) -> int:
        self._defs.refresh()
        self._defs.fresh = False
        return self.loop.run_once(BATCH, POLL_S)

    def close(self) -> None:
        self._defs.close()
        self.loop.close()

    def abandon(self) -> None:
        self._defs.close()
        self.loop.abandon()

    def interrupt(self) -> None:
        """A blocked transactional call gives up (a stop that cannot wait): the loop turns
        fatal, the stage thread abandons it."""
        self.loop.interrupt()


class _TaskStage(_KafkaStage):
    """A Kafka stage running tasks: one processor per owned partition, over its restored state."""

    tasks: TaskSet
    router: Router
    processors: dict[int, PartitionProcessor]

    def _init_tasks(self, queue: Queue) -> None:
        """The definitions both task stages follow (caught up before the first batch), their
        router, and no partition yet."""
        self.tasks = TaskSet()
        self._defs = Definitions(queue, self.tasks, None)
        self._defs.catch_up(0.5)
        self.router = Router(self.tasks)
        self.processors = {}
        self.events = 0
        self.kept_stats = KeptStats()

    def _new_processor(self, partition: int) -> PartitionProcessor:
        raise NotImplementedError

    def _assigned(self, partitions: list[int]) -> None:
        for p in partitions:
            self.processors[p] = self._new_processor(p)

    def _revoked(self, partitions: list[int]) -> None:
        for p in partitions:
            self._keep_stats(self.processors.pop(p, None))

    def _aborted(self, partitions: list[int]) -> None:
        for p in partitions:
            if p in self.processors:
                self.processors[p].abort()

    def _put_changes(self, partitions: list[int]) -> None:
        """The batch's alert-state records, built once per batch (the loop's
        ``before_changelog``): a group a batch touched 50 times is written once."""
        for p in partitions:
            proc = self.processors.get(p)
            if proc is None:
                continue
            state = self.loop.states[p]
            for k, v in proc.drain_changes().items():
                state.put(k, v) if v is not None else state.delete(k)

    def task_stats(self) -> TaskStats:
        """Per task: its node stats summed over this stage's partitions, revoked ones included
        (see :mod:`.taskstats`; called from the membership thread)."""
        parts = [p.task_stats() for p in list(self.processors.values())]
        return merge_tasks([*parts, self.kept_stats.stats(self.tasks.defs)])

    def http_out(self) -> HttpOuts:
        """The latest series of every ``|httpOut`` group on this stage's partitions (see
        :mod:`.httpout`; called from the membership thread)."""
        return merge([p.http_out() for p in list(self.processors.values())])

    def _keep_stats(self, proc: PartitionProcessor | None) -> None:
        """A revoked partition's counters stay this instance's: it processed those points."""
        if proc is None:
            return
        defs = self.tasks.defs
        self.kept_stats.prune(defs)
        self.kept_stats.keep({t: (defs[t], s) for t, s in proc.task_stats().items() if t in defs})


class KafkaEngineStage(_TaskStage):
    name = "engine"

    def __init__(self, config: Config, queue: Queue, state_dir: Path, instance: str) -> None:
        from kapacity.queue.transactional import PartitionState, TransactionalLoop

        #: Series-aligned tasks run here; the others' points go to ``repartition`` (same
        #: transaction as the input offsets: exactly once into the regroup stage).
        self._init_tasks(queue)
        self.repartitioned = 0

        defs, router, processors = self._defs, self.router, self.processors

        def process(m: Message, state: PartitionState) -> list[Output]:
            if not defs.fresh:
                defs.refresh_once()
            out = _point_outputs(processors[m.partition], m, router)
            if out:
                for o in out:
                    self.events += o[0] is Kind.EVENTS
                    self.repartitioned += o[0] is Kind.REPARTITION
            return out

        self.loop = TransactionalLoop(
            config.queue.kafka, name="engine", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
            process=process, state_dir=state_dir, instance=instance,
            on_assign=self._assigned, on_revoke=self._revoked, on_abort=self._aborted,
        )
        self.loop.before_changelog = self._put_changes

    def _new_processor(self, partition: int) -> PartitionProcessor:
        return PartitionProcessor(partition, self.tasks, self.loop.states[partition]._data,
                                  select=self.router.aligned)

    def status(self) -> dict[str, Any]:
        return {
            "partitions": self.loop.assignment(), "restoring": dict(self.loop.restoring),
            "lag": self.loop.lag(), "events": self.events,
            "points": sum(p.points for p in self.processors.values()),
            "repartitioned": self.repartitioned,
            "tasks": sorted(self.tasks.defs), "task_errors": sorted(self.tasks.errors),
            **self._defs.counters(),
        }


class KafkaRegroupStage(_TaskStage):
    """The second hop of tasks that are not series-aligned: a TransactionalLoop over
    ``repartition`` (keyed by task + group, so a group's points arrive on one partition, in
    order) with ``regroup_state`` as its alert-state changelog — its own kind, with as many
    partitions as ``repartition``, so a restore never mixes the partitions of two sources."""

    name = "regroup"

    #: How long a batch waits for a task definition it does not know yet: the first hop saw
    #: it, so it is on ``tasks`` already, perhaps not yet read by this stage's reader. (Each
    #: batch reads up to the definitions' end first, see :mod:`.definitions`: this is left
    #: for a batch whose end query failed.)
    UNKNOWN_TASK_WAIT_S: Final = 0.5

    def __init__(self, config: Config, queue: Queue, state_dir: Path, instance: str) -> None:
        from kapacity.queue.transactional import PartitionState, TransactionalLoop

        self._init_tasks(queue)
        self.unknown_task = 0
        #: (definitions version, task ids found missing at it): each is waited for once.
        self._missing: tuple[int, set[str]] = (-1, set())

        def process(m: Message, state: PartitionState) -> Iterator[Output]:
            self._defs.refresh_once()
            try:
                tid, point = split_repartition_value(m.value)
            except (RecordError, TypeError, ValueError) as exc:
                log.error("poison repartition record at %d:%d moved to the dead-letter queue: %s",
                          m.partition, m.offset, exc)
                yield Kind.DEAD_LETTER, m.key, {"kind": "repartition", "offset": m.offset, "error": str(exc),
                                                "value": m.value}
                return
            if tid not in self.tasks.defs:
                if self._missing[0] != self.tasks.version:  # definitions changed: forget
                    self._missing = (self.tasks.version, set())
                if tid not in self._missing[1]:  # wait once per task and definitions
                    self._defs.catch_up(self.UNKNOWN_TASK_WAIT_S)
                if tid not in self.tasks.defs:  # deleted since: its points go nowhere
                    self._missing[1].add(tid)
                    self.unknown_task += 1
                    return
            proc = self.processors[m.partition]
            for ev in proc.process(m.offset, point, only=tid):
                self.events += 1
                yield Kind.EVENTS, ev.alert.id, ev.value()

        self.loop = TransactionalLoop(
            config.queue.kafka, name="regroup", source=Kind.REPARTITION, changelog=Kind.REGROUP_STATE,
            process=process, state_dir=state_dir, instance=instance,
            on_assign=self._assigned, on_revoke=self._revoked, on_abort=self._aborted,
        )
        self.loop.before_changelog = self._put_changes
        self._partitioner = str(config.queue.kafka.producer_properties().get("partitioner", "consistent_random"))
        self._quiet: QuietOwners | None = None
        self._next_tick = 0.0
        self.ticks = 0

    def run_once(self) -> int:
        """A batch, then — once a second — the clock of the tasks with timed nodes
        (deadman): their events and state in one transaction (see :mod:`.ticks`)."""
        n = super().run_once()
        now = time.monotonic()
        if now >= self._next_tick:
            self._next_tick = now + TICK_S
            if self.processors and any(p.timed for p in self.processors.values()):
                n += self._tick(time.time_ns())
        return n

    def _tick(self, now_ns: int) -> int:
        if self._quiet is None:
            topic = self.loop.naming.topic(Kind.REPARTITION)
            self._quiet = QuietOwners(self.router.quiet_key, self._partitioner, self.loop.partition_count(topic))
        quiet, processors = self._quiet, self.processors

        def outputs(p: int) -> list[Output]:
            proc = processors.get(p)
            if proc is None:
                return []
            events = proc.tick(now_ns, lambda tid: quiet(tid) == p)
            self.events += len(events)
            return [(Kind.EVENTS, ev.alert.id, ev.value()) for ev in events]

        self.ticks += 1
        return self.loop.run_tick(outputs)

    def _new_processor(self, partition: int) -> PartitionProcessor:
        return PartitionProcessor(partition, self.tasks, self.loop.states[partition]._data,
                                  select=self.router.regrouped, eid_prefix="r")

    def status(self) -> dict[str, Any]:
        return {
            "partitions": self.loop.assignment(), "restoring": dict(self.loop.restoring),
            "lag": self.loop.lag(), "events": self.events,
            "points": sum(p.points for p in self.processors.values()),
            "unknown_task": self.unknown_task, "ticks": self.ticks, **self._defs.counters(),
        }


class KafkaDeliveryStage(_KafkaStage):
    name = "delivery"

    def __init__(self, config: Config, queue: Queue, state_dir: Path, instance: str) -> None:
        from kapacity.queue.transactional import PartitionState, TransactionalLoop

        settings = config.queue.kafka
        bootstrap = str(settings.client_properties().get("bootstrap.servers", ""))
        partitions: dict[str, int] = {}

        def count(topic: str) -> int:
            if topic not in partitions:
                partitions[topic] = self.loop.partition_count(topic)
            return partitions[topic]

        def sink(topic: str, key: bytes, value: bytes, partition: int | None, headers: list[tuple[str, bytes]]) -> None:
            self.loop.produce_raw(topic, key, value, partition, headers)

        self.deliverer = Deliverer(config, queue_bootstrap=bootstrap, txn_sink=sink, partitions=count)
        self._defs = Definitions(queue, None, self.deliverer)
        self._defs.catch_up(0.5)

        def process(m: Message, state: PartitionState) -> Iterator[Output]:
            self._defs.refresh_once()
            dead: list[Output] = []
            try:
                rec = EventRecord.from_value(m.value)
            except (RecordError, TypeError, ValueError, KeyError) as exc:
                yield Kind.DEAD_LETTER, m.key, {"kind": "events", "offset": m.offset, "error": str(exc)}
                return
            key, value = self.deliverer.topic_state(rec)
            state.put(key, value)
            self.deliverer.deliver(rec, lambda k, v: dead.append((Kind.DEAD_LETTER, k, v)))
            yield from dead

        self.loop = TransactionalLoop(
            settings, name="delivery", source=Kind.EVENTS, changelog=Kind.TOPIC_STATE,
            process=process, state_dir=state_dir, instance=instance,
        )

    def close(self) -> None:
        super().close()
        self.deliverer.close(10.0)

    def abandon(self) -> None:
        super().abandon()
        self.deliverer.close(10.0)

    def status(self) -> dict[str, Any]:
        return {"partitions": self.loop.assignment(), "lag": self.loop.lag(), **self.deliverer.counters.as_dict(),
                "waiting_for": self.deliverer.waiting_for, **self._defs.counters()}


# --- embedded ---------------------------------------------------------------------------------


def _write_atomically(queue: Queue, outputs: dict[Kind, list[tuple[str, Any]]]) -> None:
    """Insert rows of several kinds in one SQLite transaction (the embedded queue's own lock
    and connection: ``EmbeddedQueue`` has no public multi-kind transaction yet)."""
    from kapacity.queue.embedded import EmbeddedQueue

    assert isinstance(queue, EmbeddedQueue)
    rows = {kind: [queue._record(kind, k, v) for k, v in items] for kind, items in outputs.items() if items}
    with queue._lock:
        queue._check_open()
        db = queue._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for kind, rs in rows.items():
                db.executemany(f"INSERT INTO {queue.naming.table(kind)} (key, value, created) VALUES (?, ?, ?)", rs)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    queue.stats.add("emitted", sum(len(r) for r in rows.values()))


def _release_stale_claims(queue: Queue, kind: Kind, group: str) -> int:
    """Hand out again, first, what a previous process claimed and never committed.

    The embedded runtime is one instance per queue file, so a claim that exists when a stage
    starts belongs to a dead process. Left to its lease, a new claim would take newer rows
    first and the old ones after it: alert order per ID would break.
    """
    from kapacity.queue.embedded import EmbeddedQueue

    assert isinstance(queue, EmbeddedQueue)
    with queue._lock:
        queue._check_open()
        cur = queue._db.execute(
            "UPDATE _claims SET deadline = 0 WHERE topic = ? AND grp = ?",
            (queue.naming.topic(kind), group),
        )
        return int(cur.rowcount)


def _read_all(queue: Queue, kind: Kind) -> dict[str, Any]:
    reader = queue.broadcast(kind)
    out: dict[str, Any] = {}
    try:
        while batch := reader.poll(10_000, 0.0):
            for m in batch:
                if m.value is None:
                    out.pop(m.key, None)
                else:
                    out[m.key] = m.value
    finally:
        reader.close()
    return out


class EmbeddedEngineStage:
    name = "engine"

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.tasks = TaskSet()
        self._defs = Definitions(queue, self.tasks, None)
        self._defs.catch_up(0.05)
        records = _read_all(queue, Kind.ALERT_STATE)
        self.done_through = int(records.pop(OFFSET_MARKER, -1))
        self.proc = PartitionProcessor(0, self.tasks, records)
        _release_stale_claims(queue, Kind.POINTS, "engine")
        self.consumer = queue.consumer(Kind.POINTS, "engine")
        self.events = 0
        self.skipped = 0
        self._next_tick = 0.0

    def _tick(self, now_ns: int) -> None:
        """Deadman on the one partition: its events and state in one SQLite transaction."""
        if not self.proc.timed:
            return
        try:
            events = self.proc.tick(now_ns, lambda tid: True)
            changes = self.proc.drain_changes()
            if events or changes:
                outputs: dict[Kind, list[tuple[str, Any]]] = {
                    Kind.EVENTS: [(ev.alert.id, ev.value()) for ev in events],
                    Kind.ALERT_STATE: [*changes.items(), (OFFSET_MARKER, self.done_through)],
                }
                _write_atomically(self.queue, outputs)
        except BaseException:
            self.proc.abort()
            raise
        self.proc.apply(changes)
        self.events += len(events)

    def run_once(self) -> int:
        self._defs.refresh()
        batch = self.consumer.poll(BATCH, POLL_S)
        now = time.monotonic()
        if now >= self._next_tick:  # the clock of timed tasks (deadman), once a second
            self._next_tick = now + TICK_S
            self._tick(time.time_ns())
        if not batch:
            return 0
        self._defs.refresh()  # after the poll: definitions emitted before these points apply
        fresh = [m for m in batch if m.offset > self.done_through]
        self.skipped += len(batch) - len(fresh)  # already in the state: processed before a crash
        if fresh:
            outputs: dict[Kind, list[tuple[str, Any]]] = {Kind.EVENTS: [], Kind.DEAD_LETTER: []}
            try:
                for kind, key, value in _process_points(self.proc, fresh):
                    outputs[kind].append((key, value))
                changes = self.proc.drain_changes()
                last = max(m.offset for m in fresh)
                outputs[Kind.ALERT_STATE] = [*changes.items(), (OFFSET_MARKER, last)]
                _write_atomically(self.queue, outputs)
            except BaseException:
                self.proc.abort()
                self.consumer.rewind(batch)
                raise
            self.proc.apply(changes)
            self.done_through = last
            self.events += len(outputs[Kind.EVENTS])
        self.consumer.commit(batch)
        return len(batch)

    def close(self) -> None:
        self._defs.close()
        self.consumer.close()

    abandon = close

    def interrupt(self) -> None:
        """Nothing to interrupt: SQLite calls are short."""

    def status(self) -> dict[str, Any]:
        return {"partitions": [0], "restoring": {}, "events": self.events, "points": self.proc.points,
                "skipped_redelivered": self.skipped, "tasks": sorted(self.tasks.defs),
                "task_errors": sorted(self.tasks.errors)}


class EmbeddedDeliveryStage:
    """At-least-once: topic state and handlers, then the commit (no Kafka transaction here)."""

    name = "delivery"

    def __init__(self, config: Config, queue: Queue) -> None:
        self.queue = queue
        self.deliverer = Deliverer(config)
        self._defs = Definitions(queue, None, self.deliverer)
        self._defs.catch_up(0.05)
        _release_stale_claims(queue, Kind.EVENTS, "delivery")
        self.consumer = queue.consumer(Kind.EVENTS, "delivery")

    def run_once(self) -> int:
        self._defs.refresh()
        batch = self.consumer.poll(BATCH, POLL_S)
        if not batch:
            return 0
        self._defs.refresh()
        states: list[tuple[str, Any]] = []
        dead: list[tuple[str, Any]] = []
        try:
            for m in batch:
                try:
                    rec = EventRecord.from_value(m.value)
                except (RecordError, TypeError, ValueError, KeyError) as exc:
                    dead.append((m.key, {"kind": "events", "offset": m.offset, "error": str(exc)}))
                    continue
                states.append(self.deliverer.topic_state(rec))
                self.deliverer.deliver(rec, lambda k, v: dead.append((k, v)))
            _write_atomically(self.queue, {Kind.TOPIC_STATE: states, Kind.DEAD_LETTER: dead})
        except BaseException:
            # E.g. a target that holds an event unacknowledged (TargetUnavailable): the batch
            # is handed out again first, so events keep their order per alert ID.
            self.consumer.rewind(batch)
            raise
        self.consumer.commit(batch)
        return len(batch)

    def close(self) -> None:
        self._defs.close()
        self.consumer.close()
        self.deliverer.close(10.0)

    abandon = close

    def interrupt(self) -> None:
        """Nothing to interrupt: SQLite calls are short."""

    def status(self) -> dict[str, Any]:
        return {"partitions": [0], **self.deliverer.counters.as_dict(), "waiting_for": self.deliverer.waiting_for}


# --- threads --------------------------------------------------------------------------------


def _is_fatal(exc: BaseException) -> bool:
    """A client of the stage failed for good (fenced, or librdkafka's fatal error): retrying
    the batch cannot succeed, only new clients can (see ``TransactionalLoop.fatal``)."""
    from kapacity.queue.transactional import FatalLoopError  # the Kafka stack, lazily

    return isinstance(exc, FatalLoopError)


class StageThread:
    """Runs a stage until stopped; a failing batch is logged and retried (never fatal).

    A *fatal* client error (fenced by another client with the same ids, or librdkafka's fatal
    state) cannot be retried: with ``rebuild`` (the instance's own stages) the stage is
    abandoned and built again with new clients, which rejoin under the same names; without
    it (stages adopted from a lost instance, fenced by that instance's return) the thread
    ends, ``dropped``. Both are logged and counted (``fatal_errors``, ``rebuilds``).
    """

    #: Pause after a failed batch: a broker blip must not turn into a busy loop.
    ERROR_PAUSE_S: Final = 0.5
    #: Pause before building a stage again after a fatal error: new clients fence the other
    #: holder of the ids, which must not turn into a fencing ping-pong at full speed.
    REBUILD_PAUSE_S: Final = 2.0
    #: The part of a stop's timeout kept for a stage blocked in a client call: that long
    #: before the end it is interrupted (the call gives up, the stage is abandoned without a
    #: checkpoint, its open transaction is aborted by the next incarnation).
    INTERRUPT_MARGIN_S: Final = 3.0

    def __init__(self, stage: Stage, rebuild: Callable[[], Stage] | None = None) -> None:
        self.stage = stage
        self.rebuild = rebuild
        self.errors = 0
        self.handled = 0
        self.fatal_errors = 0
        self.rebuilds = 0
        self.dropped = False
        self.idle = threading.Event()
        self._stop = threading.Event()
        self._drain = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"kapacity-{stage.name}", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def _fatal(self, exc: BaseException) -> bool:
        """Handle a fatal error; False when the thread must end (dropped or stopping)."""
        self.fatal_errors += 1
        name = self.stage.name
        try:
            self.stage.abandon()
        except Exception as close_exc:  # noqa: BLE001 - its clients are dead anyway
            log.error("%s stage: abandoning failed: %s", name, close_exc)
        self._closed = True
        if self.rebuild is None:
            log.error("%s stage: fatal client error, dropping the stage: %s", name, exc)
            self.dropped = True
            return False
        if self._stop.is_set():
            log.error("%s stage: stopping after a fatal client error (or an interrupted call): %s", name, exc)
            return False
        log.error("%s stage: fatal client error, rebuilding the stage: %s", name, exc)
        while not self._stop.wait(self.REBUILD_PAUSE_S):
            try:
                self.stage = self.rebuild()
            except Exception as build_exc:  # noqa: BLE001 - e.g. the broker is down: try again
                self.errors += 1
                log.error("%s stage: rebuilding failed, retrying: %s", name, build_exc)
                continue
            self._closed = False
            self.rebuilds += 1
            return True
        return False

    def _run(self) -> None:
        try:
            while True:
                try:
                    n = self.stage.run_once()
                except Exception as exc:  # noqa: BLE001 - the batch was aborted; it runs again
                    self.errors += 1
                    if _is_fatal(exc):
                        if self._fatal(exc):
                            continue
                        return
                    log.error("%s stage: batch failed, retrying: %s", self.stage.name, exc)
                    if self._stop.wait(self.ERROR_PAUSE_S):
                        return  # stopping: the aborted batch is processed again at the next start
                    continue
                self.handled += n
                if n == 0:
                    self.idle.set()
                    if self._stop.is_set():
                        return
                else:
                    self.idle.clear()
                    if self._stop.is_set() and not self._drain:
                        return
        finally:
            if not self._closed:
                try:
                    self.stage.close()
                except Exception as exc:  # noqa: BLE001 - closing must not hide the stop
                    log.error("%s stage: close failed: %s", self.stage.name, exc)

    def stop(self, timeout: float, drain: bool = True) -> bool:
        """Stop after the current batch (``drain``: once a poll finds nothing); True if it ended.

        A stage still blocked in a client call :data:`INTERRUPT_MARGIN_S` before the end (at
        the latest half-way) is interrupted and abandoned, so that the stop keeps its bound."""
        self._drain = drain
        self._stop.set()
        margin = min(self.INTERRUPT_MARGIN_S, timeout / 2)
        self._thread.join(max(0.0, timeout - margin))
        if self._thread.is_alive():
            log.warning("%s stage: still busy after %.1fs of its stop; interrupting it", self.stage.name,
                        timeout - margin)
            self.stage.interrupt()
            self._thread.join(margin)
        return not self._thread.is_alive()


def start_stages(config: Config, queue: Queue, state_dir: Path, instance: str,
                 *, adopted: bool = False) -> list[StageThread]:
    """Build and start the engine and delivery stages for ``queue.type``.

    ``adopted``: the stages of a lost instance run by a survivor (:mod:`.takeover`): a fatal
    client error drops them instead of rebuilding them.
    """
    threads: list[StageThread]
    if config.queue.type == "kafka":
        factories: list[Callable[[], Stage]] = [
            lambda: KafkaEngineStage(config, queue, state_dir, instance),
            lambda: KafkaRegroupStage(config, queue, state_dir, instance),
            lambda: KafkaDeliveryStage(config, queue, state_dir, instance),
        ]
        built: list[Stage] = []
        try:
            for f in factories:
                built.append(f())
        except BaseException:  # e.g. the broker is down: no half-started instance keeps clients
            for stage in built:
                try:
                    stage.abandon()
                except Exception as exc:  # noqa: BLE001 - the first error is the one to report
                    log.error("%s stage: abandoning failed: %s", stage.name, exc)
            raise
        threads = [StageThread(s, None if adopted else f) for s, f in zip(built, factories, strict=True)]
    else:
        threads = [StageThread(s) for s in (EmbeddedEngineStage(queue), EmbeddedDeliveryStage(config, queue))]
    for t in threads:
        t.start()
    return threads
