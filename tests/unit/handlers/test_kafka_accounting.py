"""Delivery accounting of the Kafka handler's shared producer under concurrent reports.

Acknowledgements are noted without a lock (``ClusterProducer.acked`` is a ``list.append``)
and tallied whenever counters are read. Here senders on two threads race a thread serving
reports, as confluent-kafka's poll thread does: every alert must still end counted exactly
once, and the buffer bound must hold against stale (not yet tallied) counts. An outage
that re-enqueues everything in flight logs one line, then one summary, not one per alert.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from confluent_kafka import KafkaError as RdError

from kapacity.alert.event import AlertData, Result
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.kafka import KafkaHandler, KafkaHandlerSpec
from kapacity.kafka.producer import ClusterProducer, DeliverySink, TopicStats


@dataclass
class ThreadedTransport:
    """Accepts every message; ``serve`` reports them (one failure in 50) like a poll thread."""

    sink: DeliverySink | None = None
    queue: list[tuple[str, bytes, bytes, int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    served: int = 0

    client_partitioner: str | None = None

    def bind(self, sink: DeliverySink) -> None:
        self.sink = sink

    def direct_produce(self, topic: str) -> None:
        return None

    def refusal(self, exc: Exception) -> Any:
        raise exc

    def produce(
        self, topic: str, key: bytes, value: bytes, partition: int, attempt: int, headers: Any = None
    ) -> None:
        with self.lock:
            self.queue.append((topic, key, value, partition, attempt))

    def serve(self) -> int:
        with self.lock:
            batch, self.queue = self.queue, []
        assert self.sink is not None
        for topic, key, value, partition, attempt in batch:
            self.served += 1
            if self.served % 50 == 0:
                self.sink.delivered(RdError(RdError.MSG_SIZE_TOO_LARGE), topic, key, value, partition, attempt)
            else:
                self.sink.acked(topic)
        return len(batch)

    def poll(self, timeout: float) -> None:
        self.serve()

    def flush(self, timeout: float) -> int:
        self.serve()
        return 0

    def partition_count(self, topic: str, timeout: float) -> int:
        return 3

    def purge(self, in_flight: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def alert(i: int) -> AlertData:
    return AlertData(f"cpu:host=h{i % 97}", "m <&>", "", Time(i), Duration(0), Level.CRITICAL, Result([]))


def test_concurrent_sends_and_reports_account_for_every_alert() -> None:
    transport = ThreadedTransport()
    producer = ClusterProducer("main", transport, capacity=1_000_000, start_thread=False)
    producer.run_once(0)
    handlers = [KafkaHandler(KafkaHandlerSpec("main", topic), producer) for topic in ("a", "b")]
    for h in handlers:
        h.handle(alert(0))  # first message: the topic's metadata is fetched
    producer.run_once(0)
    per_thread = 20_000
    done = threading.Event()

    def send(h: KafkaHandler) -> None:
        for i in range(per_thread):
            h.handle(alert(i))

    def serve() -> None:
        while not done.is_set():
            transport.serve()
            producer.stats("a")  # readers tally concurrently with new reports

    server = threading.Thread(target=serve)
    senders = [threading.Thread(target=send, args=(h,)) for h in handlers]
    server.start()
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    server.join()
    assert producer.flush(1)
    total = per_thread + 1
    for topic in ("a", "b"):
        s = producer.stats(topic)
        assert s.in_flight == 0 and s.dropped == 0
        assert s.write_messages + s.write_errors == total, s
    stats = producer.all_stats()
    assert sum(s.write_errors for s in stats.values()) == transport.served // 50
    assert producer.outstanding == 0


def test_the_buffer_bound_counts_acknowledgements_not_yet_tallied() -> None:
    transport = ThreadedTransport()
    producer = ClusterProducer("main", transport, capacity=10, start_thread=False)
    h = KafkaHandler(KafkaHandlerSpec("main", "a"), producer)
    h.handle(alert(0))
    producer.run_once(0)
    for i in range(9):
        h.handle(alert(i))
    # Ten in flight: the buffer is full. Reports arrive, noted but not tallied yet...
    transport.serve()
    # ...and the next alerts are admitted all the same, not dropped.
    for i in range(10):
        h.handle(alert(i))
    assert producer.stats("a") == TopicStats(write_messages=10, in_flight=10)
    h.handle(alert(99))  # now it really is full
    assert producer.stats("a") == TopicStats(write_messages=10, dropped=1, in_flight=10)


def test_an_outage_logs_requeues_once_then_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    from tests.unit.kafka.test_producer import Clock, FakeTransport

    clock = Clock()
    t = FakeTransport(partitions={"a": 1})
    producer = ClusterProducer("main", t, capacity=1000, message_timeout=10.0, clock=clock, start_thread=False)
    h = KafkaHandler(KafkaHandlerSpec("main", "a"), producer)
    producer.run_once(0)
    for i in range(100):
        h.handle(alert(i))
    producer.run_once(0)
    with caplog.at_level(logging.WARNING, logger="kapacity.kafka.producer"):
        t.report(RdError(RdError._MSG_TIMED_OUT))  # every message in flight times out at once
        requeued = [r for r in caplog.records if "re-enqueued" in r.getMessage()]
        assert len(requeued) == 1 and requeued[0].levelno == logging.WARNING
        clock.now += 6
        producer.run_once(0)
        summaries = [r.getMessage() for r in caplog.records if "more like this" in r.getMessage()]
        assert len(summaries) == 1 and summaries[0].startswith("99 more like this")
    assert producer.stats("a") == TopicStats(in_flight=100)
    assert all(s.attempt == 1 for s in t.queue)  # all handed back to the client, counted in flight
