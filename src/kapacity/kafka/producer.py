"""One Kafka producer per cluster, shared by every handler that writes to that cluster.

:class:`ClusterProducer` keeps the delivery promise kapacity makes (and Kapacitor does not,
issues #2032 and #2317): every message accepted by :meth:`ClusterProducer.send` ends in
exactly one of three counted outcomes per (cluster, topic):

* ``write_messages`` - the broker acknowledged it (a delivery report without error);
* ``write_errors``   - it failed for good; the reason is logged (auth failure, message
  too large, retries exhausted, topic never appeared);
* ``dropped``        - it was refused because the buffer was full, or still undelivered
  when a shutdown ran out of time; counted and logged, never silent.

Until then it is ``in_flight``. Messages wait either in librdkafka's queue or in our own
*pending* queue (topic metadata unknown yet, librdkafka's queue full, or re-enqueued after
a retriable failure); both together are bounded by ``capacity``.

The partition is chosen by kapacity (pure partitioners, explicit ``partition=``), from
the topic's partition count in metadata: cached, fetched on first use, refreshed
periodically and after an unknown-partition error.

I/O goes through the small :class:`Transport` protocol: :class:`ConfluentTransport` is the
real one (confluent-kafka); unit tests drive the same logic through a fake.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError as RdError
from confluent_kafka import KafkaException, Producer

from kapacity.kafka.errors import (
    KafkaAuthError,
    KafkaConnectionError,
    KafkaDeliveryError,
    KafkaError,
    classify,
    is_auth_error,
    is_retriable,
)

log = logging.getLogger("kapacity.kafka.producer")

# --- delivery invariants -----------------------------------------------------------------

#: Default bound of messages accepted but not yet acknowledged or failed, per cluster.
#: 100k alerts of ~400 B is ~40 MB: enough to ride out a broker restart at thousands of
#: alerts per second, small enough that a dead cluster cannot exhaust memory.
DEFAULT_BUFFER_CAPACITY: Final = 100_000

#: How often a message that failed with a *retriable* error after librdkafka's own retries
#: (i.e. after ``message.timeout.ms``) is handed back to librdkafka. librdkafka already
#: retried for a whole message timeout; re-enqueueing covers an outage longer than one
#: timeout (a broker restart) while bounding how long one message can hold buffer space:
#: at most ``(1 + MAX_REQUEUES) * message.timeout.ms``, then it is counted in write_errors.
MAX_REQUEUES: Final = 2

#: librdkafka's default ``message.timeout.ms`` when the client config sets none.
DEFAULT_MESSAGE_TIMEOUT_S: Final = 300.0

#: Poll-thread wake-up interval: the longest a delivery report waits before its counter
#: moves, and the latency of draining the pending queue.
POLL_INTERVAL_S: Final = 0.05

#: The sending thread serves delivery reports itself (``poll(0)``: never waits) after every
#: this many messages it handed to the client, as librdkafka expects of producers. Reports
#: are then mostly counted by the thread that is running anyway, in batches, rather than by
#: the poll thread fighting it for the GIL report by report (measured: ~25% less CPU per
#: alert at 100k alerts/s). The poll thread still serves whatever is left within
#: POLL_INTERVAL_S, so a quiet sender delays no report.
SERVE_REPORTS_EVERY: Final = 1000

#: Metadata lookups block the poll thread, so each is short; a failed first lookup is
#: retried after METADATA_RETRY_S (a broker that is not up yet: alerts wait for it),
#: successful ones are refreshed after METADATA_MAX_AGE_S (partitions may have been
#: added), and a failed refresh after METADATA_STALE_RETRY_S (the cached count still works).
METADATA_TIMEOUT_S: Final = 1.0
METADATA_RETRY_S: Final = 0.5
METADATA_MAX_AGE_S: Final = 60.0
METADATA_STALE_RETRY_S: Final = 10.0

#: Failures and drops are logged at once, then summarised at most this often per topic,
#: so an outage produces a bounded number of log lines that still carry every count.
LOG_INTERVAL_S: Final = 5.0

#: ``choose(key, value_size, partition_count) -> partition``: how a handler places a message.
Chooser = Callable[[bytes, int, int], int]

#: Kafka record headers, ``(name, value)`` in order (names may repeat), as librdkafka takes them.
Headers = list[tuple[str, str | bytes | None]]

#: The partition of a message the client places itself, by hashing its key with the
#: transport's ``client_partitioner`` (librdkafka's "unassigned partition").
PARTITION_BY_CLIENT: Final = -1


def by_client_hash(key: bytes, size: int, n: int) -> int:
    """The :data:`Chooser` that leaves the partition to the client's own key hash.

    Handlers use it only when the transport's ``client_partitioner`` is their algorithm, so
    the partition is the same as kapacity's partitioner would choose; the producer
    recognises it and skips the call (one Python call fewer per alert on the default path).
    """
    return PARTITION_BY_CLIENT


#: ``produce(topic, value, key, partition, on_delivery)``: a client's own produce call,
#: called by the producer directly on the hot path (see :meth:`Transport.direct_produce`).
ProduceCall = Callable[[str, bytes, bytes, int, Any], None]

#: librdkafka ``partitioner`` values that hash keys exactly as one of our partitioners.
_CLIENT_PARTITIONERS: Final = {"consistent_random": "crc32"}


@dataclass(frozen=True, slots=True)
class TopicStats:
    """Counters of one (cluster, topic); see the module docstring for their meaning."""

    write_messages: int = 0
    write_errors: int = 0
    dropped: int = 0
    in_flight: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "write_messages": self.write_messages,
            "write_errors": self.write_errors,
            "dropped": self.dropped,
            "in_flight": self.in_flight,
        }


class _Counters:
    """A topic's counters, and the transport's direct produce call for it (or None)."""

    __slots__ = ("write_messages", "write_errors", "dropped", "in_flight", "produce", "report")

    def __init__(self, direct: tuple[ProduceCall, Any] | None = None) -> None:
        self.write_messages = 0
        self.write_errors = 0
        self.dropped = 0
        self.in_flight = 0
        self.produce: ProduceCall | None = None
        self.report: Any = None
        if direct is not None:
            self.produce, self.report = direct

    def snapshot(self) -> TopicStats:
        return TopicStats(self.write_messages, self.write_errors, self.dropped, self.in_flight)


@dataclass(slots=True)
class _Pending:
    topic: str
    key: bytes
    value: bytes
    partition: int | None  # None: not chosen yet (metadata unknown when sent)
    choose: Chooser | None
    attempt: int
    deadline: float
    headers: Headers | None = None


# --- the I/O boundary ---------------------------------------------------------------------


class DeliverySink(Protocol):
    """What a transport reports to: one call per message, and client-level errors."""

    def acked(self, topic: str) -> None:
        """The broker acknowledged one message of ``topic`` (same as ``delivered(None, ...)``)."""

    def delivered(
        self,
        err: RdError | None,
        topic: str,
        key: bytes,
        value: bytes,
        partition: int,
        attempt: int,
        headers: Headers | None = None,
    ) -> None:
        """The final outcome of one message; ``attempt`` and ``headers`` are those given to
        ``produce`` (a re-enqueued message keeps its headers)."""

    def client_error(self, err: RdError) -> None:
        """A client-level error (connection, authentication), not tied to one message."""


class Transport(Protocol):
    """The narrow interface :class:`ClusterProducer` needs from a Kafka client."""

    #: The name of our partitioner (``crc32``, ...) the client applies to messages produced
    #: with partition :data:`PARTITION_BY_CLIENT`; None if it has none.
    client_partitioner: str | None

    def direct_produce(self, topic: str) -> tuple[ProduceCall, Any] | None:
        """For first attempts without headers to ``topic``: the client's produce call (C
        code, no Python frame of ours) and the ``on_delivery`` to pass it; None: use
        :meth:`produce`. It raises :class:`BufferError` when full, else what :meth:`refusal`
        turns into a :class:`KafkaError`."""

    def refusal(self, exc: Exception) -> KafkaError:
        """The :class:`KafkaError` for an exception of a direct produce call (re-raises
        anything that is not a refusal by the client)."""

    def bind(self, sink: DeliverySink) -> None:
        """Send delivery reports and client errors to ``sink`` from now on."""

    def produce(
        self, topic: str, key: bytes, value: bytes, partition: int, attempt: int, headers: Headers | None = None
    ) -> None:
        """Enqueue one message (with ``headers`` if given); raises :class:`BufferError` when the client's queue is full,
        :class:`KafkaError` when the client refuses it (``retriable`` says if it may pass later)."""

    def poll(self, timeout: float) -> None:
        """Serve delivery reports and errors, waiting up to ``timeout`` seconds for one."""

    def flush(self, timeout: float) -> int:
        """Send everything queued now (ignoring linger) and serve reports; returns what is left."""

    def partition_count(self, topic: str, timeout: float) -> int:
        """The topic's partition count from metadata; raises :class:`KafkaError`."""

    def purge(self, in_flight: bool = False) -> None:
        """Fail every message still queued (and, if asked, in flight); the purge reports are
        served by the next ``poll``."""

    def close(self) -> None:
        """Release the client (after a flush or purge)."""


#: A delivery callback as confluent-kafka calls it: ``(error or None, message)``.
_Report = Callable[[RdError | None, Any], None]


class ConfluentTransport:
    """:class:`Transport` over ``confluent_kafka.Producer``.

    First attempts without headers use one delivery callback per topic, made once (the hot
    path: no per-message Python object, no ``msg.topic()`` call, one Python frame per report,
    as little as a bare counting callback); re-enqueued messages and messages with headers
    carry their attempt number and headers in a per-message callback (confluent-kafka does
    not hand headers back to delivery callbacks, and a re-enqueued message must keep them).
    """

    def __init__(self, config: Mapping[str, Any], name: str = "kapacity") -> None:
        self._sink: DeliverySink | None = None
        self._acked: Callable[[str], None] | None = None
        self._reports: dict[str, _Report] = {}
        self._closed = False
        conf = dict(config)
        conf.setdefault("client.id", name)
        # librdkafka hashes keys as our default partitioner does (see partitioners.py):
        # handlers using it let the client place messages (one Python call fewer per alert).
        conf.setdefault("partitioner", "consistent_random")
        self.client_partitioner: str | None = _CLIENT_PARTITIONERS.get(str(conf["partitioner"]))
        conf["on_delivery"] = self._report
        conf["error_cb"] = self._error
        conf["logger"] = logging.getLogger(f"kapacity.kafka.librdkafka.{name}")
        self._producer = Producer(conf)

    def bind(self, sink: DeliverySink) -> None:
        self._sink = sink
        self._acked = sink.acked
        self._reports.clear()

    def _topic_report(self, topic: str) -> _Report:
        """The first-attempt delivery callback of ``topic`` (made on first use)."""
        acked = self._acked
        sink = self._sink
        if acked is None or sink is None:
            return self._report

        def report(err: RdError | None, msg: Any) -> None:
            if err is None:
                acked(topic)
            else:
                sink.delivered(err, topic, msg.key() or b"", msg.value() or b"", msg.partition(), 0)

        self._reports[topic] = report
        return report

    def _report(self, err: RdError | None, msg: Any, attempt: int = 0, headers: Headers | None = None) -> None:
        if err is None:
            acked = self._acked  # the hot path: one report per message
            if acked is not None:
                acked(msg.topic())
            return
        sink = self._sink
        if sink is None:
            return
        if headers is None:  # sinks written before headers take six arguments
            sink.delivered(err, msg.topic(), msg.key() or b"", msg.value() or b"", msg.partition(), attempt)
        else:
            sink.delivered(err, msg.topic(), msg.key() or b"", msg.value() or b"", msg.partition(), attempt, headers)

    def _report_attempt(self, attempt: int, headers: Headers | None, err: RdError | None, msg: Any) -> None:
        self._report(err, msg, attempt, headers)

    def _error(self, err: RdError) -> None:
        if self._sink is not None:
            self._sink.client_error(err)

    def direct_produce(self, topic: str) -> tuple[ProduceCall, Any] | None:
        report = self._reports.get(topic) or self._topic_report(topic)
        return self._producer.produce, report

    def refusal(self, exc: Exception) -> KafkaError:
        if not isinstance(exc, KafkaException):
            raise exc
        # Refused before queueing (message too large, unknown partition, ...).
        err = exc.args[0] if exc.args and isinstance(exc.args[0], RdError) else None
        if err is None:
            return KafkaDeliveryError(str(exc), retriable=False)
        return classify(err)

    def produce(
        self, topic: str, key: bytes, value: bytes, partition: int, attempt: int, headers: Headers | None = None
    ) -> None:
        try:
            if attempt == 0 and headers is None:
                report = self._reports.get(topic) or self._topic_report(topic)
                self._producer.produce(topic, value, key, partition, report)
            elif headers is None:
                self._producer.produce(
                    topic, value, key, partition, on_delivery=partial(self._report_attempt, attempt, None)
                )
            else:
                self._producer.produce(
                    topic, value, key, partition,
                    on_delivery=partial(self._report_attempt, attempt, headers), headers=headers,
                )
        except KafkaException as exc:
            raise self.refusal(exc) from None

    def poll(self, timeout: float) -> None:
        try:
            self._producer.poll(timeout)
        except RuntimeError:
            if self._closed:
                return  # a sender's poll lost the race with close(): nothing left to serve
            raise

    def flush(self, timeout: float) -> int:
        return int(self._producer.flush(timeout))

    def partition_count(self, topic: str, timeout: float) -> int:
        try:
            md = self._producer.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], RdError) else None
            if err is not None:
                raise classify(err, f"metadata for topic {topic!r}") from None
            raise KafkaConnectionError(f"metadata for topic {topic!r}: {exc}") from None
        meta = md.topics.get(topic)
        if meta is None:
            raise KafkaConnectionError(f"metadata for topic {topic!r}: topic not in the answer")
        if meta.error is not None:
            raise classify(meta.error, f"metadata for topic {topic!r}")
        if not meta.partitions:
            raise KafkaConnectionError(f"metadata for topic {topic!r}: no partitions yet")
        return len(meta.partitions)

    def purge(self, in_flight: bool = False) -> None:
        self._producer.purge(in_queue=True, in_flight=in_flight, blocking=True)

    def close(self) -> None:
        self._producer.poll(0)
        self._closed = True
        # Destroy the client now: left to the garbage collector it would keep reconnecting
        # to the cluster (our sink and this transport reference each other).
        self._producer.close()
        self._sink = None
        self._acked = None
        self._reports.clear()


def message_timeout_s(config: Mapping[str, Any]) -> float:
    """``message.timeout.ms`` (alias ``delivery.timeout.ms``) of a librdkafka config, in seconds."""
    for name in ("message.timeout.ms", "delivery.timeout.ms"):
        if name in config:
            return float(config[name]) / 1000.0
    return DEFAULT_MESSAGE_TIMEOUT_S


# --- rate-limited logging --------------------------------------------------------------


class _LogLimiter:
    """Logs the first event per key at once, then one summary per LOG_INTERVAL_S."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, tuple[int, str, int]] = {}
        self._lock = threading.Lock()

    def event(self, key: str, message: str, level: int = logging.ERROR) -> None:
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is None or now - last >= LOG_INTERVAL_S:
                self._last[key] = now
                emit = True
            else:
                count, _, _ = self._suppressed.get(key, (0, "", level))
                self._suppressed[key] = (count + 1, message, level)
                emit = False
        if emit:
            log.log(level, "%s", message)

    def summarise(self) -> None:
        now = self._clock()
        lines = []
        with self._lock:
            for key, (count, message, level) in list(self._suppressed.items()):
                if now - self._last.get(key, 0.0) >= LOG_INTERVAL_S:
                    lines.append((level, f"{count} more like this in the last {LOG_INTERVAL_S:.0f}s, latest: {message}"))
                    del self._suppressed[key]
                    self._last[key] = now
        for level, line in lines:
            log.log(level, "%s", line)


# --- the producer -------------------------------------------------------------------------


class ClusterProducer:
    """The shared producer of one cluster: bounded buffer, delivery reports, stats.

    ``send`` never blocks on the network; every SERVE_REPORTS_EVERY messages it also serves
    the delivery reports that are ready (``poll(0)``). A daemon thread polls delivery
    reports, drains the pending queue and keeps metadata fresh (``start_thread=False``
    leaves that to the caller's :meth:`run_once`, for tests).

    >>> # producer = ClusterProducer("main", ConfluentTransport({"bootstrap.servers": "k:9092"}))
    >>> # producer.send("alerts", b"cpu:host=a", b"{...}", lambda k, size, n: 0)
    """

    def __init__(
        self,
        cluster_id: str,
        transport: Transport,
        *,
        capacity: int = DEFAULT_BUFFER_CAPACITY,
        message_timeout: float = DEFAULT_MESSAGE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        start_thread: bool = True,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"buffer capacity must be positive, got {capacity}")
        self.cluster_id = cluster_id
        self.capacity = capacity
        self.message_timeout = message_timeout
        self._transport = transport
        #: See :attr:`Transport.client_partitioner`; handlers read it to pick their chooser.
        self.client_partitioner = transport.client_partitioner
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, _Counters] = {}
        self._outstanding = 0
        # Delivery reports only note an acknowledgement (the topic) here: ``list.append`` is
        # atomic under the GIL, so the report path takes no lock and runs no Python frame of
        # ours; _tally_acks() counts them under the lock whenever counters are read.
        self._acks: list[str] = []
        self.acked: Callable[[str], None] = self._acks.append
        self._sends = 0  # messages handed to the client since the sender last served reports
        #: When a sender last served reports itself (time.monotonic): the poll thread then
        #: only wakes every POLL_INTERVAL_S instead of fighting it for the GIL report by report.
        self._sender_polled_at = -POLL_INTERVAL_S
        self._pending: deque[_Pending] = deque()
        self._pending_by_topic: dict[str, int] = {}
        self._partitions: dict[str, int] = {}
        self._fetched_at: dict[str, float] = {}
        self._wanted: set[str] = set()
        self._metadata_errors: dict[str, str] = {}
        self._next_metadata_at = 0.0
        self._auth_error: KafkaAuthError | None = None
        self._last_error: KafkaError | None = None
        self._closing = False
        self._shutting_down = False
        self._logs = _LogLimiter(clock)
        self._progress = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        transport.bind(self)
        if start_thread:
            self._thread = threading.Thread(
                target=self._loop, name=f"kapacity-kafka-{cluster_id}", daemon=True
            )
            self._thread.start()

    # -- public API --

    def send(self, topic: str, key: bytes, value: bytes, choose: Chooser, headers: Headers | None = None) -> bool:
        """Accept one message for delivery; False if it was dropped or refused (counted, logged).

        ``headers`` (e.g. the runtime's event id) travel with the message, re-enqueues included.
        """
        dropped = failed = ""
        poll = False
        with self._lock:
            c = self._counters.get(topic)
            n = self._partitions.get(topic)
            if (
                n is not None and c is not None and self._outstanding < self.capacity and not self._closing
                and self._auth_error is None and not self._pending
            ):
                # The steady state, kept flat: straight to the client (its own produce call
                # when the transport offers one, its own key hash for by_client_hash).
                partition = PARTITION_BY_CLIENT if choose is by_client_hash else choose(key, len(value), n)
                c.in_flight += 1
                self._outstanding += 1
                produce = c.produce
                try:
                    if produce is not None and headers is None:
                        try:
                            produce(topic, value, key, partition, c.report)
                        except BufferError:
                            raise
                        except Exception as exc:  # noqa: BLE001 - the client's own refusal
                            raise self._transport.refusal(exc) from None
                    else:
                        self._transport.produce(topic, key, value, partition, 0, headers)
                except (BufferError, KafkaError) as exc:
                    failed = self._refused(_Pending(topic, key, value, partition, choose, 0, 0.0, headers), c, exc)
                else:
                    sends = self._sends + 1
                    if sends < SERVE_REPORTS_EVERY:
                        self._sends = sends
                        return True
                    self._sends = 0
                    poll = True
            else:
                # First message of a topic, buffer full, closing, metadata unknown, messages
                # waiting in the pending queue (those of this topic go first), auth failure.
                if c is None:
                    c = self._counters[topic] = _Counters(self._transport.direct_produce(topic))
                if self._outstanding >= self.capacity:
                    self._tally_acks()
                if self._closing or self._outstanding >= self.capacity:
                    c.dropped += 1
                    dropped = "producer is closed" if self._closing else f"buffer full ({self.capacity} messages in flight)"
                else:
                    c.in_flight += 1
                    self._outstanding += 1
                    if n is not None and self._auth_error is None and not self._pending_by_topic.get(topic):
                        partition = choose(key, len(value), n)
                        try:
                            self._transport.produce(topic, key, value, partition, 0, headers)
                            self._sends += 1
                        except (BufferError, KafkaError) as exc:
                            failed = self._refused(
                                _Pending(topic, key, value, partition, choose, 0, 0.0, headers), c, exc
                            )
                    else:
                        if n is None:
                            self._wanted.add(topic)
                        deadline = self._clock() + self.message_timeout
                        self._push(_Pending(topic, key, value, None, choose, 0, deadline, headers))
        if poll:
            self._sender_polled_at = time.monotonic()
            self._transport.poll(0)  # outside the lock: serving reports may take it
            return True
        if dropped:
            self._logs.event(f"drop:{topic}", f"kafka cluster {self.cluster_id!r} topic {topic!r}: alert dropped: {dropped}")
            return False
        if failed:
            self._logs.event(f"fail:{topic}", f"kafka cluster {self.cluster_id!r} topic {topic!r}: alert not sent: {failed}")
            return False
        return True

    def _refused(self, item: _Pending, c: _Counters, exc: BufferError | KafkaError) -> str:
        """The client did not take ``item`` (lock held): park it or fail it.

        A full client queue, or a retriable refusal such as an unknown partition (which also
        drops the cached partition count), parks it in the pending queue and returns "";
        ``item.choose`` set means its partition may be chosen again.
        Otherwise it failed for good: counted in write_errors; returns the reason to log.
        """
        if isinstance(exc, KafkaError):
            if not exc.retriable:
                c.write_errors += 1
                c.in_flight -= 1
                self._outstanding -= 1
                return str(exc)
            self._metadata_errors[item.topic] = str(exc)
            self._partitions.pop(item.topic, None)
            self._wanted.add(item.topic)
            if item.choose is not None:
                item.partition = None  # choose again with the refreshed partition count
        if not item.deadline:
            item.deadline = self._clock() + self.message_timeout
        self._push(item)
        return ""

    def record_error(self, topic: str, reason: str) -> None:
        """Count a message for ``topic`` that failed before it could be sent (e.g. template error)."""
        with self._lock:
            c = self._counters.get(topic)
            if c is None:
                c = self._counters[topic] = _Counters(self._transport.direct_produce(topic))
            c.write_errors += 1
        self._logs.event(f"fail:{topic}", f"kafka cluster {self.cluster_id!r} topic {topic!r}: {reason}")

    def stats(self, topic: str) -> TopicStats:
        with self._lock:
            self._tally_acks()
            c = self._counters.get(topic)
            return c.snapshot() if c is not None else TopicStats()

    def all_stats(self) -> dict[str, TopicStats]:
        with self._lock:
            self._tally_acks()
            return {t: c.snapshot() for t, c in self._counters.items()}

    @property
    def outstanding(self) -> int:
        """Messages accepted and not yet acknowledged, failed or dropped."""
        with self._lock:
            self._tally_acks()
            return self._outstanding

    @property
    def last_error(self) -> KafkaError | None:
        """The latest client-level error (connection, auth), or None once delivery works."""
        return self._last_error

    def flush(self, timeout: float) -> bool:
        """Send everything pending now; True once all of it is acknowledged or failed."""
        # Real time, not the injected clock: this is a wait of the caller's thread.
        deadline = time.monotonic() + timeout
        while True:
            if self.outstanding == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._thread is None:
                self.run_once(min(remaining, POLL_INTERVAL_S))
                continue
            self._progress.clear()
            if self._transport.flush(min(remaining, POLL_INTERVAL_S)) == 0 and self.outstanding:
                # What is left waits in our pending queue for the poll thread.
                self._progress.wait(min(max(remaining, 0.0), POLL_INTERVAL_S))

    def close(self, timeout: float) -> bool:
        """Stop accepting, flush within ``timeout``, then count what is left as dropped."""
        with self._lock:
            self._closing = True
        delivered_all = self.flush(timeout)
        if not delivered_all:
            self._abandon()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(timeout, 1.0))
        self._transport.close()
        return delivered_all

    # -- DeliverySink --
    # ``acked`` is not a method: it is ``self._acks.append`` (see __init__).

    def _tally_acks(self) -> None:
        """Move the acknowledgements noted since the last tally into the counters (lock held).

        Every reader of the counters or of ``_outstanding`` tallies first, so what it sees is
        exact; ``_outstanding`` between tallies only over-counts (never admits too much).
        """
        acks = self._acks
        n = len(acks)
        if not n:
            return
        counters = self._counters
        if len(counters) == 1:
            counts: Mapping[str, int] = {next(iter(counters)): n}
        else:
            counts = Counter(acks[:n])
        # Reports noted meanwhile land after index n: they wait for the next tally.
        del acks[:n]
        for topic, k in counts.items():
            c = counters[topic]
            c.write_messages += k
            c.in_flight -= k
        self._outstanding -= n
        if self._last_error is not None:
            # Delivery works (again): earlier client errors no longer explain failures.
            self._auth_error = None
            self._last_error = None

    def delivered(
        self,
        err: RdError | None,
        topic: str,
        key: bytes,
        value: bytes,
        partition: int,
        attempt: int,
        headers: Headers | None = None,
    ) -> None:
        if err is None:
            self.acked(topic)
            return
        code = err.code()
        reason = err.str()
        retriable = is_retriable(err)
        auth = self._auth_error
        if code in (RdError._PURGE_QUEUE, RdError._PURGE_INFLIGHT):
            retriable = False
            if auth is not None:
                reason = str(auth)
        elif code == RdError._MSG_TIMED_OUT and self._last_error is not None:
            reason = f"{reason} (last client error: {self._last_error})"
            retriable = retriable and auth is None
        if code == RdError._UNKNOWN_PARTITION:
            with self._lock:
                self._wanted.add(topic)
        if retriable and attempt < MAX_REQUEUES and not self._closing:
            with self._lock:
                deadline = self._clock() + self.message_timeout
                self._push(_Pending(topic, key, value, partition, None, attempt + 1, deadline, headers))
            # Rate-limited like failures: an outage re-enqueues every message in flight.
            self._logs.event(
                f"requeue:{topic}",
                f"kafka cluster {self.cluster_id!r} topic {topic!r}: delivery failed ({reason}); "
                f"re-enqueued, attempt {attempt + 2} of {MAX_REQUEUES + 1}",
                logging.WARNING,
            )
            return
        with self._lock:
            c = self._counters[topic]
            if self._shutting_down:
                c.dropped += 1
            else:
                c.write_errors += 1
            c.in_flight -= 1
            self._outstanding -= 1
        what = "not delivered before shutdown" if self._shutting_down else "delivery failed"
        self._logs.event(f"fail:{topic}", f"kafka cluster {self.cluster_id!r} topic {topic!r}: {what}: {reason}")

    def client_error(self, err: RdError) -> None:
        code = err.code()
        error = classify(err, f"kafka cluster {self.cluster_id!r}")
        with self._lock:
            self._tally_acks()  # acknowledgements before this error must not clear it
        self._last_error = error
        if is_auth_error(code) and isinstance(error, KafkaAuthError):
            # A refused login or certificate repeats on every reconnect: fail what waits
            # instead of letting it sit out the message timeout (no silent retry loop).
            self._auth_error = error
        self._logs.event(f"client:{code}", str(error))

    # -- poll thread --

    def run_once(self, poll_timeout: float = POLL_INTERVAL_S) -> None:
        """One iteration of the poll thread: reports, auth failures, metadata, pending queue."""
        self._transport.poll(poll_timeout)
        now = self._clock()
        with self._lock:
            self._tally_acks()
        if self._auth_error is not None:
            self._fail_pending(str(self._auth_error), lambda item: True)
            if self._outstanding:
                self._transport.purge()
                self._transport.poll(0)
        self._refresh_metadata(now)
        self._drain_pending()
        self._fail_pending("", lambda item: item.deadline <= now)
        self._logs.summarise()
        self._progress.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._sender_polled_at < POLL_INTERVAL_S:
                    # A busy sender serves the reports (every SERVE_REPORTS_EVERY messages):
                    # pass by once per interval for what it leaves, metadata and the pending
                    # queue; measured ~0.4 us per alert of GIL contention otherwise.
                    if not self._stop.wait(POLL_INTERVAL_S):
                        self.run_once(0)
                    continue
                self.run_once(POLL_INTERVAL_S)
            except Exception:  # noqa: BLE001 - the poll thread must survive and say why
                log.exception("kafka cluster %r: poll loop error", self.cluster_id)
                self._stop.wait(POLL_INTERVAL_S)

    # -- internals (the lock is held where noted) --

    def _push(self, item: _Pending) -> None:
        """Append to the pending queue (lock held)."""
        self._pending.append(item)
        self._pending_by_topic[item.topic] = self._pending_by_topic.get(item.topic, 0) + 1

    def _refresh_metadata(self, now: float) -> None:
        with self._lock:
            stale = {t for t, at in self._fetched_at.items() if now - at >= METADATA_MAX_AGE_S}
            wanted = self._wanted | stale
            if self._auth_error is not None and not wanted and self._counters:
                # Probe with any topic: a successful metadata call proves the login works again.
                wanted = {next(iter(self._counters))}
        if not wanted or now < self._next_metadata_at:
            return
        failed = False
        for topic in sorted(wanted):
            try:
                n = self._transport.partition_count(topic, METADATA_TIMEOUT_S)
            except KafkaError as exc:
                with self._lock:
                    self._metadata_errors[topic] = str(exc)
                    if topic in self._fetched_at:
                        # The cached count still routes messages: retry the refresh later
                        # rather than block the poll thread on an unreachable cluster.
                        self._fetched_at[topic] = self._clock() - METADATA_MAX_AGE_S + METADATA_STALE_RETRY_S
                    else:
                        failed = True
                continue
            with self._lock:
                self._partitions[topic] = n
                self._fetched_at[topic] = self._clock()
                self._wanted.discard(topic)
                self._metadata_errors.pop(topic, None)
                self._auth_error = None
        self._next_metadata_at = self._clock() + (METADATA_RETRY_S if failed else 0.0)

    def _drain_pending(self) -> None:
        failed: list[tuple[str, str]] = []
        with self._lock:
            if not self._pending or self._auth_error is not None:
                return
            waiting = self._pending
            self._pending = deque()
            full = False
            while waiting:
                item = waiting.popleft()
                self._pending_by_topic[item.topic] -= 1
                n = self._partitions.get(item.topic)
                if n is None or full:
                    self._push(item)
                    continue
                if item.partition is None or item.partition >= n:
                    if item.choose is not None:
                        item.partition = item.choose(item.key, len(item.value), n)
                    else:
                        item.partition = (item.partition or 0) % n
                    item.choose = None
                try:
                    self._transport.produce(
                        item.topic, item.key, item.value, item.partition, item.attempt, item.headers
                    )
                    continue
                except (BufferError, KafkaError) as exc:
                    reason = self._refused(item, self._counters[item.topic], exc)
                    full = isinstance(exc, BufferError)
                if reason:
                    failed.append((item.topic, reason))
        for topic, reason in failed:
            self._logs.event(f"fail:{topic}", f"kafka cluster {self.cluster_id!r} topic {topic!r}: delivery failed: {reason}")

    def _fail_pending(self, reason: str, expired: Callable[[_Pending], bool]) -> None:
        failed: list[tuple[str, str]] = []
        with self._lock:
            if not self._pending:
                return
            keep: deque[_Pending] = deque()
            for item in self._pending:
                if not expired(item):
                    keep.append(item)
                    continue
                why = reason or (
                    f"not sent within {self.message_timeout:g}s: "
                    + self._metadata_errors.get(item.topic, "the client's queue stayed full")
                )
                c = self._counters[item.topic]
                c.write_errors += 1
                c.in_flight -= 1
                self._outstanding -= 1
                self._pending_by_topic[item.topic] -= 1
                failed.append((item.topic, why))
            self._pending = keep
        for topic, why in failed:
            self._logs.event(f"fail:{topic}", f"kafka cluster {self.cluster_id!r} topic {topic!r}: delivery failed: {why}")

    def _abandon(self) -> None:
        """Shutdown ran out of time: count everything still waiting as dropped, loudly."""
        self._shutting_down = True
        with self._lock:
            left = list(self._pending)
            self._pending.clear()
            self._pending_by_topic.clear()
            for item in left:
                c = self._counters[item.topic]
                c.dropped += 1
                c.in_flight -= 1
                self._outstanding -= 1
        if left:
            log.error(
                "kafka cluster %r: %d alerts dropped at shutdown: never handed to the client (%s)",
                self.cluster_id, len(left), "; ".join(sorted(set(self._metadata_errors.values()))) or "no metadata",
            )
        self._transport.purge(in_flight=True)
        self._transport.poll(0)
        if self.outstanding:
            log.error(
                "kafka cluster %r: %d alerts still unaccounted for after shutdown", self.cluster_id, self._outstanding
            )
