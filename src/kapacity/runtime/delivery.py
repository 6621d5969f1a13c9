"""Alert delivery: events → topic state, chained handlers, topic handlers (with ``match``).

Delivery runs in a consumer group over ``events`` (each event is delivered by one instance).
Guarantees, per handler target:

* **Kafka handler on the queue's own cluster** (same bootstrap servers): its message is
  produced inside the delivery transaction, with the consumed ``events`` offsets and the
  ``topic_state`` changes — exactly once for ``read_committed`` readers. The message carries
  the event id in the ``kapacity-event-id`` header.
* **Any other handler** (log, post, tcp, exec, Kafka on another cluster): at-least-once. The
  handler must acknowledge (``flush`` true and no new failure in its counters) before the
  event's offset is committed; an event processed again after a crash is sent again with
  the same alert and the same event id (``eid``) available to de-duplicate: the Kafka
  record's ``kapacity-event-id`` header, post's ``X-Kapacity-Event-Id`` request header,
  exec's ``KAPACITY_EVENT_ID`` environment variable, an ``"eventId"`` field ending the JSON
  of tcp and log (:mod:`kapacity.handlers.base`).
* A target that fails :data:`MAX_ATTEMPTS` times in a row is given up for this event: the
  event and the error go to the ``dead_letter`` kind (counted), and the loop goes on.
* A target that neither acknowledges nor reports a failure within :data:`ACK_TIMEOUT_S`
  still holds the message (e.g. a Kafka cluster that is unreachable: its producer keeps
  retrying). That is not a failure of the event: :meth:`Deliverer.deliver` raises the
  retriable :class:`~kapacity.runtime.errors.TargetUnavailable`, the stage aborts the batch
  (no offset is committed past the event, which stays in ``events``), pauses and runs the
  batch again — in order, with back-off given by the acknowledgement wait itself, never a
  busy loop. Meanwhile ``waiting`` is 1 and ``waiting_for`` names the target.
  When the batch runs again, the waiting message is not sent twice (only its
  acknowledgement is awaited again), and events of the batch that at-least-once targets
  already acknowledged are not sent again (:data:`ACKED_MEMORY` remembers them).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kapacity.alert.event import AlertData
from kapacity.alert.handlerspec import HandlerSpec
from kapacity.alert.match import MatchContext, compile_match
from kapacity.alert.topics import EventState
from kapacity.config.model import Config
from kapacity.handlers.base import EventIdHandler, Handler
from kapacity.runtime.errors import TargetUnavailable
from kapacity.runtime.records import EVENT_ID_HEADER, EventRecord

__all__ = ["MAX_ATTEMPTS", "Deliverer", "DeliveryCounters", "TxnSink"]

log: Final = logging.getLogger("kapacity.runtime.delivery")

#: Attempts per (event, handler) before the event is dead-lettered: enough to ride out a
#: blip, few enough that one broken receiver cannot hold the whole stream for long.
MAX_ATTEMPTS: Final = 3
#: How long one attempt waits for a handler's acknowledgement.
ACK_TIMEOUT_S: Final = 10.0
#: (target, event id) pairs acknowledged by at-least-once targets, remembered so that a batch
#: aborted while a later event waits does not send its earlier events again: more than a
#: batch of events times the handlers per event seen in practice.
ACKED_MEMORY: Final = 20_000
_FAILURE_COUNTERS: Final = ("errors", "dropped", "write_errors")

TxnSink = Callable[[str, bytes, bytes, int | None, list[tuple[str, bytes]]], None]
"""``(topic, key, value, partition, headers)``: produce inside the open transaction."""


@dataclass
class DeliveryCounters:
    events: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    #: 1 while an event waits for a target that holds it unacknowledged (unreachable).
    waiting: int = 0
    #: Times a batch was held back (aborted, run again) because a target did not acknowledge.
    target_unavailable: int = 0
    #: Sends skipped because that target had acknowledged that event before the batch ran again.
    already_acknowledged: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class _TxnProducer:
    """What :class:`~kapacity.handlers.kafka.KafkaHandler` needs of a producer, writing into
    the delivery transaction (so the handler's output commits with the event's offset)."""

    def __init__(self, sink: TxnSink, partitions: Callable[[str], int]) -> None:
        self._sink, self._partitions = sink, partitions
        self.event_id = ""
        self.errors = 0
        self.sent = 0

    def send(self, topic: str, key: bytes, value: bytes, choose: Callable[[bytes, int, int], int]) -> bool:
        n = self._partitions(topic)
        self._sink(topic, key, value, choose(key, len(value), n), [(EVENT_ID_HEADER, self.event_id.encode())])
        self.sent += 1
        return True

    def flush(self, timeout: float) -> bool:
        return True  # the transaction's commit is the acknowledgement

    def record_error(self, topic: str, reason: str) -> None:
        self.errors += 1
        log.error("kafka handler to %s: %s", topic, reason)

    def stats(self, topic: str) -> Any:
        from kapacity.kafka.producer import TopicStats

        return TopicStats(write_messages=self.sent, write_errors=self.errors)


@dataclass
class _Target:
    label: str
    handler: Handler
    match: Callable[[MatchContext], bool] | None = None
    spec: HandlerSpec | None = None
    txn: _TxnProducer | None = field(default=None)
    #: A Kafka handler outside the transaction: its ``handle(alert, headers)``, so that its
    #: record carries the event id header too (at-least-once: receivers de-duplicate by it).
    with_headers: Callable[[AlertData, list[tuple[str, str | bytes | None]]], None] | None = None
    #: Any other handler that can label a send with the event id (post header, exec
    #: environment, tcp/log ``eventId`` field: see :mod:`kapacity.handlers.base`).
    with_event_id: Callable[[AlertData, str], None] | None = None
    #: Stable across re-creation (``topic/id``, or the chained handler's kind and options):
    #: what the acknowledgement memory is keyed by.
    key: str = ""


def _failures(handler: Handler) -> int:
    try:
        stats = handler.stats()
    except Exception:  # noqa: BLE001 - a handler without counters: rely on flush alone
        return 0
    return sum(int(stats.get(k, 0)) for k in _FAILURE_COUNTERS)


class Deliverer:
    """Delivers decoded events; I/O only through handlers, the txn sink and ``dead_letter``."""

    def __init__(
        self,
        config: Config,
        *,
        queue_bootstrap: str | None = None,
        txn_sink: TxnSink | None = None,
        partitions: Callable[[str], int] | None = None,
    ) -> None:
        from kapacity.server.handlers import HandlerRegistry

        self.config = config
        self.registry = HandlerRegistry(config)
        self._queue_brokers = set((queue_bootstrap or "").replace(" ", "").split(",")) - {""}
        self._txn_sink, self._partitions = txn_sink, partitions
        self.topic_handlers: dict[str, dict[str, _Target]] = {}
        self._chained: dict[str, _Target] = {}
        self.counters = DeliveryCounters()
        #: The label of the target the head event waits for, or None.
        self.waiting_for: str | None = None
        self._acked: OrderedDict[tuple[str, str], None] = OrderedDict()
        #: target key → (event id, failures before its send, handler): sent, ack pending.
        self._unacked: dict[str, tuple[str, int, Handler]] = {}

    # --- definitions ---------------------------------------------------------------------

    def apply_handler(self, key: str, value: Any) -> None:
        """One ``handlers`` record (``topic/id`` → spec dict, ``None`` = deleted)."""
        topic, _, hid = key.partition("/")
        old = self.topic_handlers.get(topic, {}).pop(hid, None)
        if old is not None and old.txn is None:
            old.handler.close(ACK_TIMEOUT_S)
        if value is None:
            return
        try:
            spec = HandlerSpec.from_dict(value)
            target = self._target(f"handler {spec.topic}/{spec.id}", spec.kind, spec.options)
            target.spec, target.key = spec, key
            if spec.match:
                target.match = compile_match(spec.match)
        except Exception as exc:  # noqa: BLE001 - a bad definition must not stop delivery
            log.error("topic handler %s cannot be installed: %s", key, exc)
            return
        self.topic_handlers.setdefault(spec.topic, {})[spec.id] = target

    def _in_transaction(self, kind: str, options: Mapping[str, Any]) -> bool:
        if kind != "kafka" or self._txn_sink is None or not self._queue_brokers:
            return False
        from kapacity.handlers.kafka import parse_kafka_options

        cluster = self.config.kafka_cluster(parse_kafka_options(options, self.config).cluster)
        return set(cluster.brokers) == self._queue_brokers

    def _target(self, label: str, kind: str, options: Mapping[str, Any]) -> _Target:
        if self._in_transaction(kind, options):
            from kapacity.handlers.kafka import KafkaHandler, parse_kafka_options, parse_template

            assert self._txn_sink is not None and self._partitions is not None
            spec = parse_kafka_options(options, self.config)
            txn = _TxnProducer(self._txn_sink, self._partitions)
            template = parse_template(spec.template) if spec.template else None
            # KafkaHandler only calls send/flush/record_error/stats on its producer.
            handler = KafkaHandler(spec, txn, template)  # type: ignore[arg-type]  # duck-typed producer
            return _Target(label, handler, txn=txn)
        created = self.registry.create(kind, options)
        if kind == "kafka":
            from kapacity.handlers.kafka import KafkaHandler

            if isinstance(created, KafkaHandler):
                return _Target(label, created, with_headers=created.handle)
        if isinstance(created, EventIdHandler):
            return _Target(label, created, with_event_id=created.handle_event)
        return _Target(label, created)

    # --- delivery ------------------------------------------------------------------------

    def topic_state(self, rec: EventRecord) -> tuple[str, dict[str, Any]]:
        """The ``topic_state`` record of an event: ``topic/alert id`` → :class:`EventState`."""
        a = rec.alert
        state = EventState(a.message, a.details, a.time.ns, a.duration.ns, a.level)
        return f"{rec.topic}/{a.id}", state.to_dict()

    def targets(self, rec: EventRecord) -> list[_Target]:
        out: list[_Target] = []
        for kind, options in rec.handlers:
            ckey = f"{rec.task}|{kind}|{sorted(options.items())!r}"
            target = self._chained.get(ckey)
            if target is None:
                try:
                    target = self._chained[ckey] = self._target(f"{kind} handler of task {rec.task}", kind, options)
                    target.key = ckey
                except Exception as exc:  # noqa: BLE001 - reported as a failed delivery
                    log.error("task %s: cannot create its %s handler: %s", rec.task, kind, exc)
                    continue
            out.append(target)
        if rec.publish:
            ctx: MatchContext | None = None
            for target in self.topic_handlers.get(rec.topic, {}).values():
                if target.match is not None:
                    if ctx is None:
                        import dataclasses

                        ctx = MatchContext.from_alert(rec.alert, rec.task)
                        ctx = dataclasses.replace(ctx, name=rec.name or ctx.name, tags=rec.tags or ctx.tags)
                    try:
                        if not target.match(ctx):
                            continue
                    except Exception as exc:  # noqa: BLE001 - a failing match counts as false
                        log.warning("match of %s failed: %s", target.label, exc)
                        continue
                out.append(target)
        return out

    def deliver(self, rec: EventRecord, dead_letter: Callable[[str, dict[str, Any]], None]) -> None:
        """Run every target of ``rec``; a target failing :data:`MAX_ATTEMPTS` times is dead-lettered."""
        self.counters.events += 1
        for target in self.targets(rec):
            if target.txn is None and (target.key, rec.eid) in self._acked:
                self.counters.already_acknowledged += 1  # the batch runs again after a wait
                continue
            error = self._attempts(target, rec.alert, rec.eid)
            if error is None:
                self.counters.delivered += 1
                continue
            self.counters.dead_lettered += 1
            log.error("%s gave up on event %s (alert %s): %s", target.label, rec.eid, rec.alert.id, error)
            dead_letter(rec.alert.id, {"event": rec.value(), "handler": target.label, "error": error})

    def _attempts(self, target: _Target, alert: AlertData, eid: str) -> str | None:
        """None once ``target`` acknowledged the event, else the last error (after
        :data:`MAX_ATTEMPTS` failures); raises :class:`TargetUnavailable` when it holds the
        event without acknowledging it (see module doc)."""
        error = ""
        for _ in range(MAX_ATTEMPTS):
            if target.txn is not None:
                target.txn.event_id = eid
            sent = self._unacked.pop(target.key, None)
            try:
                if sent is not None and sent[0] == eid and sent[2] is target.handler:
                    before = sent[1]  # already handed over: wait for its ack, do not send twice
                else:
                    before = _failures(target.handler)
                    if target.with_headers is not None:
                        target.with_headers(alert, [(EVENT_ID_HEADER, eid.encode())])
                    elif target.with_event_id is not None:
                        target.with_event_id(alert, eid)
                    else:
                        target.handler.handle(alert)
                acked = target.handler.flush(ACK_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - any failure counts as an attempt
                error = str(exc)
                self.counters.failed_attempts += 1
                continue
            if _failures(target.handler) != before:
                error = "the handler reported a delivery failure"
                self.counters.failed_attempts += 1
                continue
            if not acked:
                self._unacked[target.key] = (eid, before, target.handler)
                self.counters.waiting = 1
                self.counters.target_unavailable += 1
                if self.waiting_for is None:
                    log.warning("%s does not acknowledge event %s (alert %s): delivery waits", target.label, eid, alert.id)
                self.waiting_for = target.label
                raise TargetUnavailable(target.label, eid, ACK_TIMEOUT_S)
            if self.waiting_for is not None:
                log.warning("%s acknowledges again: delivery resumes", target.label)
            self.counters.waiting, self.waiting_for = 0, None
            if target.txn is None:
                self._acked[(target.key, eid)] = None
                if len(self._acked) > ACKED_MEMORY:
                    self._acked.popitem(last=False)
            return None
        return error

    def close(self, timeout: float) -> None:
        targets = [t for hs in self.topic_handlers.values() for t in hs.values()] + list(self._chained.values())
        for t in targets:
            if t.txn is None:
                try:
                    t.handler.close(timeout)
                except Exception as exc:  # noqa: BLE001 - closing must go on for the others
                    log.warning("closing %s: %s", t.label, exc)
        self.registry.close(timeout)
