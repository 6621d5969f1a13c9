"""ClusterProducer's buffer, retry and stats policy, driven through a fake transport.

The delivery paths themselves are tested on real brokers (tests/integration); here the
transport is a fake so that overflow, retries, expiry and shutdown are exact and fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError as RdError
from hypothesis import given, settings
from hypothesis import strategies as st

from kapacity.kafka.errors import KafkaConnectionError, KafkaDeliveryError, KafkaError
from kapacity.kafka.producer import (
    MAX_REQUEUES,
    SERVE_REPORTS_EVERY,
    ClusterProducer,
    ConfluentTransport,
    DeliverySink,
    TopicStats,
    message_timeout_s,
)


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes
    partition: int
    attempt: int
    headers: Any = None

    def report_to(self, sink: DeliverySink, err: RdError | None) -> None:
        if self.headers is None:  # as ConfluentTransport: six arguments unless there are headers
            sink.delivered(err, self.topic, self.key, self.value, self.partition, self.attempt)
        else:
            sink.delivered(err, self.topic, self.key, self.value, self.partition, self.attempt, self.headers)


class ClientRefusal(Exception):
    """What the fake's direct produce call raises, as confluent-kafka raises KafkaException."""


@dataclass
class FakeTransport:
    partitions: dict[str, int] = field(default_factory=dict)
    queue_limit: int = 1_000_000
    queue: list[Sent] = field(default_factory=list)
    produced: list[Sent] = field(default_factory=list)
    sink: DeliverySink | None = None
    metadata_calls: int = 0
    closed: bool = False
    refuse: KafkaError | None = None  # raised by the next produce() call
    auto_ack: bool = False  # flush() acknowledges everything, as a live broker would
    purged: list[Sent] = field(default_factory=list)
    client_partitioner: str | None = None
    direct: bool = False  # offer direct_produce (as ConfluentTransport does)
    direct_calls: int = 0

    def bind(self, sink: DeliverySink) -> None:
        self.sink = sink

    def direct_produce(self, topic: str) -> tuple[Any, Any] | None:
        return (self._direct_call, f"report-{topic}") if self.direct else None

    def _direct_call(self, topic: str, value: bytes, key: bytes, partition: int, report: Any) -> None:
        assert report == f"report-{topic}"
        self.direct_calls += 1
        try:
            self.produce(topic, key, value, partition, 0)
        except KafkaError as exc:
            raise ClientRefusal(exc) from None  # the client's own exception type

    def refusal(self, exc: Exception) -> KafkaError:
        if not isinstance(exc, ClientRefusal):
            raise exc
        refused: KafkaError = exc.args[0]
        return refused

    def produce(
        self, topic: str, key: bytes, value: bytes, partition: int, attempt: int, headers: Any = None
    ) -> None:
        if len(self.queue) >= self.queue_limit:
            raise BufferError("queue full")
        if self.refuse is not None:
            err, self.refuse = self.refuse, None
            raise err
        sent = Sent(topic, key, value, partition, attempt, headers)
        self.queue.append(sent)
        self.produced.append(sent)

    def flush(self, timeout: float) -> int:
        if self.auto_ack:
            self.report(None)
        return len(self.queue)

    def partition_count(self, topic: str, timeout: float) -> int:
        self.metadata_calls += 1
        if topic not in self.partitions:
            raise KafkaConnectionError(f"metadata for topic {topic!r}: Broker transport failure")
        return self.partitions[topic]

    def purge(self, in_flight: bool = False) -> None:
        # Reports are served by the next poll(), as librdkafka does.
        self.purged, self.queue = self.purged + self.queue, []

    def poll(self, timeout: float) -> None:
        purged, self.purged = self.purged, []
        assert self.sink is not None
        for s in purged:
            s.report_to(self.sink, RdError(RdError._PURGE_QUEUE))

    def close(self) -> None:
        self.closed = True

    # -- test controls --

    def report(self, err: RdError | None, count: int | None = None) -> None:
        """Deliver reports for the first ``count`` queued messages (all by default)."""
        assert self.sink is not None
        take = self.queue[: len(self.queue) if count is None else count]
        del self.queue[: len(take)]
        for s in take:
            s.report_to(self.sink, err)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def by_key_length(key: bytes, size: int, n: int) -> int:
    return len(key) % n


def make(transport: FakeTransport, clock: Clock | None = None, capacity: int = 100) -> ClusterProducer:
    return ClusterProducer(
        "main", transport, capacity=capacity, message_timeout=10.0,
        clock=clock or Clock(), start_thread=False,
    )


def test_acknowledged_messages_are_counted_and_use_the_chosen_partition() -> None:
    t = FakeTransport(partitions={"alerts": 4})
    p = make(t)
    p.run_once(0)  # nothing to do yet
    assert p.send("alerts", b"abc", b"v1", by_key_length)  # metadata unknown → pending
    assert p.stats("alerts") == TopicStats(in_flight=1)
    p.run_once(0)  # fetches metadata, hands the message over
    assert [(s.partition, s.attempt) for s in t.produced] == [(3, 0)]
    assert p.send("alerts", b"abcde", b"v2", by_key_length)  # metadata known → straight through
    assert t.produced[-1].partition == 1
    t.report(None)
    assert p.stats("alerts") == TopicStats(write_messages=2)
    assert p.flush(0.1)


def test_overflow_is_counted_per_topic_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport(partitions={"a": 1, "b": 1})
    p = make(t, capacity=3)
    results = [p.send("a", b"k", b"v", by_key_length) for _ in range(3)]
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        results += [p.send("b", b"k", b"v", by_key_length) for _ in range(2)]
    assert results == [True, True, True, False, False]
    assert p.stats("a") == TopicStats(in_flight=3)
    assert p.stats("b") == TopicStats(dropped=2)
    assert "buffer full (3 messages in flight)" in caplog.text
    # Capacity frees up as acknowledgements arrive.
    p.run_once(0)
    t.report(None)
    assert p.send("b", b"k", b"v", by_key_length)


def test_retriable_failure_is_reenqueued_then_counted_as_error(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport(partitions={"alerts": 2})
    p = make(t)
    p.run_once(0)
    p.send("alerts", b"k", b"v", by_key_length)
    p.run_once(0)
    for attempt in range(MAX_REQUEUES):
        t.report(RdError(RdError._MSG_TIMED_OUT))
        assert p.stats("alerts") == TopicStats(in_flight=1)
        p.run_once(0)
        assert t.produced[-1].attempt == attempt + 1
        assert t.produced[-1].partition == t.produced[0].partition  # same key, same partition
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        t.report(RdError(RdError._MSG_TIMED_OUT))
    assert p.stats("alerts") == TopicStats(write_errors=1)
    assert "delivery failed" in caplog.text and "timed out" in caplog.text
    assert p.outstanding == 0


def test_non_retriable_failure_is_counted_at_once_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport(partitions={"alerts": 1})
    p = make(t)
    p.send("alerts", b"k", b"v" * 10, by_key_length)
    p.run_once(0)
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        t.report(RdError(RdError.MSG_SIZE_TOO_LARGE))
    p.run_once(0)
    assert len(t.produced) == 1  # not retried
    assert p.stats("alerts") == TopicStats(write_errors=1)
    assert "too large" in caplog.text.lower()


def test_message_the_client_refuses_for_good_is_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport(partitions={"alerts": 1})
    p = make(t)
    p.send("alerts", b"k", b"first", by_key_length)
    p.run_once(0)
    t.refuse = KafkaDeliveryError("Broker: Message size too large", retriable=False)
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        assert p.send("alerts", b"k", b"huge", by_key_length) is False
    assert p.stats("alerts") == TopicStats(write_errors=1, in_flight=1)
    assert "alert not sent: Broker: Message size too large" in caplog.text


def test_retriable_refusal_parks_the_message_and_refreshes_metadata() -> None:
    t = FakeTransport(partitions={"alerts": 2})
    p = make(t)
    p.send("alerts", b"k", b"first", by_key_length)
    p.run_once(0)
    calls = t.metadata_calls
    t.refuse = KafkaDeliveryError("Local: Unknown partition", retriable=True)
    assert p.send("alerts", b"abc", b"second", by_key_length) is True
    assert p.stats("alerts") == TopicStats(in_flight=2)
    t.partitions["alerts"] = 4  # partitions were added
    p.run_once(0)
    assert t.metadata_calls == calls + 1
    assert [(s.value, s.partition) for s in t.produced] == [(b"first", 1), (b"second", 3)]
    t.report(None)
    assert p.stats("alerts") == TopicStats(write_messages=2)


def test_full_client_queue_parks_messages_in_order_until_space() -> None:
    t = FakeTransport(partitions={"alerts": 1}, queue_limit=2)
    p = make(t)
    for i in range(5):
        assert p.send("alerts", b"k", str(i).encode(), by_key_length)
    p.run_once(0)
    assert len(t.queue) == 2
    t.report(None)
    p.run_once(0)
    t.report(None)
    p.run_once(0)
    t.report(None)
    assert [s.value for s in t.produced] == [b"0", b"1", b"2", b"3", b"4"]
    assert p.stats("alerts") == TopicStats(write_messages=5)


def test_topic_without_metadata_expires_with_the_metadata_error(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    t = FakeTransport()
    p = make(t, clock)
    p.send("missing", b"k", b"v", by_key_length)
    p.run_once(0)
    assert p.stats("missing") == TopicStats(in_flight=1)
    calls = t.metadata_calls
    p.run_once(0)
    assert t.metadata_calls == calls  # failed lookups back off instead of spinning
    clock.now += 10.0
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        p.run_once(0)
    assert p.stats("missing") == TopicStats(write_errors=1)
    assert "not sent within 10s" in caplog.text and "Broker transport failure" in caplog.text


def test_auth_failure_fails_queued_and_new_messages_fast(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    t = FakeTransport(partitions={"alerts": 1})
    p = make(t, clock)
    p.send("alerts", b"k", b"v0", by_key_length)
    p.run_once(0)
    t.report(None)
    p.send("alerts", b"k", b"v1", by_key_length)  # in the client's queue when the login fails
    del t.partitions["alerts"]  # a broker that refuses the login answers no metadata either
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        p.client_error(RdError(RdError._AUTHENTICATION, "SASL SCRAM-SHA-256 mechanism handshake failed"))
        p.run_once(0)
        assert p.stats("alerts") == TopicStats(write_messages=1, write_errors=1)
        p.send("alerts", b"k", b"v2", by_key_length)  # while the login keeps failing
        p.run_once(0)
    assert p.stats("alerts") == TopicStats(write_messages=1, write_errors=2)
    assert [s.value for s in t.produced] == [b"v0", b"v1"]  # v2 was not even handed over
    assert "SCRAM-SHA-256 mechanism handshake failed" in caplog.text
    assert p.flush(0.1)
    # A successful metadata call proves the login works again.
    t.partitions["alerts"] = 1
    clock.now += 1.0
    p.run_once(0)
    p.send("alerts", b"k", b"v3", by_key_length)
    assert t.produced[-1].value == b"v3"


def test_close_counts_undelivered_as_dropped_and_refuses_new(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTransport(partitions={"alerts": 1})
    p = make(t)
    p.run_once(0)
    p.send("alerts", b"k", b"in-client", by_key_length)
    p.send("never", b"k", b"no-metadata", by_key_length)
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        assert p.close(0.05) is False
    assert p.stats("alerts") == TopicStats(dropped=1)
    assert p.stats("never") == TopicStats(dropped=1)
    assert p.outstanding == 0
    assert t.closed
    assert "dropped at shutdown" in caplog.text
    assert "not delivered before shutdown" in caplog.text
    assert p.send("alerts", b"k", b"late", by_key_length) is False
    assert p.stats("alerts").dropped == 2


def test_message_timeout_is_read_from_the_client_config() -> None:
    assert message_timeout_s({"message.timeout.ms": 2500}) == 2.5
    assert message_timeout_s({"delivery.timeout.ms": "4000"}) == 4.0
    assert message_timeout_s({}) == 300.0


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be positive"):
        make(FakeTransport(), capacity=0)


@dataclass
class ServingTransport(FakeTransport):
    """A fake whose poll() acknowledges what was produced, as a live broker's reports would."""

    polls: list[float] = field(default_factory=list)

    def poll(self, timeout: float) -> None:
        self.polls.append(timeout)
        self.report(None)


def test_sender_serves_delivery_reports_itself_every_so_many_messages() -> None:
    t = ServingTransport(partitions={"a": 2})
    p = make(t, capacity=10 * SERVE_REPORTS_EVERY)
    p.run_once(0)  # no topic wanted yet: polls once, nothing else
    assert p.send("a", b"k", b"v", by_key_length)
    p.run_once(0)  # metadata: "a" goes straight to the client from now on
    t.polls.clear()
    t.report(None)
    for _ in range(SERVE_REPORTS_EVERY - 1):
        assert p.send("a", b"k", b"v", by_key_length)
    assert t.polls == []  # the batch is not complete: nothing served in send()
    assert p.stats("a") == TopicStats(write_messages=1, in_flight=SERVE_REPORTS_EVERY - 1)
    assert p.send("a", b"k", b"v", by_key_length)  # the batch's last message
    assert t.polls == [0]  # a non-blocking poll, from the sending thread
    assert p.stats("a") == TopicStats(write_messages=SERVE_REPORTS_EVERY + 1)
    assert p.outstanding == 0


def test_a_senders_poll_racing_close_is_harmless() -> None:
    # No broker needed: nothing is produced, the client only has to exist.
    transport = ConfluentTransport({"bootstrap.servers": "127.0.0.1:9", "log_level": 0}, name="close-race")
    transport.close()
    transport.poll(0)  # the client is gone: nothing to serve, no "Producer has been closed"


# --- the accounting invariant under any interleaving ------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("ack"), st.integers(0, 3)),
        st.tuples(st.just("fail"), st.sampled_from([RdError._MSG_TIMED_OUT, RdError.MSG_SIZE_TOO_LARGE])),
        st.tuples(st.just("refuse"), st.booleans()),
        st.tuples(st.just("queue_limit"), st.integers(0, 4)),
        st.tuples(st.just("tick"), st.floats(0, 6)),
        st.tuples(st.just("metadata"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("auth"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS)
def test_every_accepted_message_is_accounted_for_exactly_once(ops: list[tuple[str, Any]]) -> None:
    """write_messages + write_errors + dropped + in_flight == messages offered, per topic, always."""
    clock = Clock()
    t = FakeTransport(partitions={"a": 2})
    p = make(t, clock, capacity=5)
    offered: dict[str, int] = {}
    for op, arg in ops:
        if op == "send":
            topic = arg
            offered[topic] = offered.get(topic, 0) + 1
            p.send(topic, b"key", b"value", by_key_length)
        elif op == "ack":
            t.report(None, arg)
        elif op == "fail":
            t.report(RdError(arg), 1)
        elif op == "refuse":
            t.refuse = KafkaDeliveryError("refused", retriable=arg)
        elif op == "queue_limit":
            t.queue_limit = arg
        elif op == "tick":
            clock.now += arg
        elif op == "metadata":
            t.partitions[arg] = 3
        elif op == "auth":
            p.client_error(RdError(RdError._AUTHENTICATION, "login refused"))
        p.run_once(0)
        for topic, n in offered.items():
            s = p.stats(topic)
            assert s.write_messages + s.write_errors + s.dropped + s.in_flight == n, (topic, s)
            assert min(s.write_messages, s.write_errors, s.dropped, s.in_flight) >= 0
        assert p.outstanding == sum(p.stats(tp).in_flight for tp in offered) <= 5
    t.queue_limit = 1_000_000
    p.close(0.01)
    for topic, n in offered.items():
        s = p.stats(topic)
        assert s.in_flight == 0
        assert s.write_messages + s.write_errors + s.dropped == n



EID_1 = [("kapacity-event-id", b"e-1")]
EID_2 = [("kapacity-event-id", b"e-2")]


def test_headers_survive_the_pending_queue_and_reenqueues() -> None:
    t = FakeTransport(partitions={"alerts": 2})
    p = make(t)
    p.send("alerts", b"k", b"first", by_key_length, EID_1)  # metadata unknown: pending queue
    p.run_once(0)
    t.report(RdError(RdError._MSG_TIMED_OUT))  # retriable: re-enqueued with its headers
    p.run_once(0)
    p.send("alerts", b"k", b"plain", by_key_length)
    t.report(None)
    assert [(s.value, s.attempt, s.headers) for s in t.produced] == [
        (b"first", 0, EID_1), (b"first", 1, EID_1), (b"plain", 0, None)
    ]
    assert p.stats("alerts") == TopicStats(write_messages=2)


def test_headers_go_straight_to_the_client_or_wait_with_a_parked_message() -> None:
    t = FakeTransport(partitions={"alerts": 1}, queue_limit=1)
    p = make(t)
    p.send("alerts", b"k", b"a", by_key_length)
    p.run_once(0)
    p.send("alerts", b"k", b"b", by_key_length, EID_2)  # the client's queue is full: parked
    assert [s.headers for s in t.produced] == [None]
    t.report(None)
    p.run_once(0)
    t.report(None)
    p.send("alerts", b"k", b"c", by_key_length, EID_1)  # steady state: straight through
    assert [(s.value, s.headers) for s in t.produced] == [(b"a", None), (b"b", EID_2), (b"c", EID_1)]


def test_direct_produce_path_counts_acks_and_refusals_like_the_transport_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = FakeTransport(partitions={"alerts": 2}, direct=True, queue_limit=3)
    p = make(t)
    p.send("alerts", b"k", b"first", by_key_length)  # metadata unknown: via the pending queue
    p.run_once(0)
    assert t.direct_calls == 0
    p.send("alerts", b"k", b"second", by_key_length)  # steady state: the client's own call
    p.send("alerts", b"k", b"third", by_key_length, EID_1)  # headers: through produce()
    assert t.direct_calls == 1
    t.report(None)
    assert p.send("alerts", b"k", b"fourth", by_key_length)
    t.refuse = KafkaDeliveryError("Broker: Message size too large", retriable=False)
    with caplog.at_level(logging.ERROR, logger="kapacity.kafka.producer"):
        assert p.send("alerts", b"k", b"huge", by_key_length) is False
    assert "alert not sent: Broker: Message size too large" in caplog.text
    t.report(None)
    for value in (b"fifth", b"sixth", b"seventh", b"parked"):  # the last finds the queue full
        assert p.send("alerts", b"k", value, by_key_length)
    assert t.direct_calls == 7
    assert p.stats("alerts") == TopicStats(write_messages=4, write_errors=1, in_flight=4)
    t.report(None)
    p.run_once(0)
    t.report(None)
    assert [s.value for s in t.produced] == [
        b"first", b"second", b"third", b"fourth", b"fifth", b"sixth", b"seventh", b"parked"
    ]
    assert p.stats("alerts") == TopicStats(write_messages=8, write_errors=1)


def test_client_partitioned_messages_go_with_the_unassigned_partition() -> None:
    from kapacity.kafka.producer import PARTITION_BY_CLIENT, by_client_hash

    t = FakeTransport(partitions={"alerts": 3}, client_partitioner="crc32")
    p = make(t)
    assert p.client_partitioner == "crc32"
    p.send("alerts", b"a", b"pending", by_client_hash)
    p.run_once(0)
    p.send("alerts", b"b", b"direct", by_client_hash)
    assert [s.partition for s in t.produced] == [PARTITION_BY_CLIENT, PARTITION_BY_CLIENT]


def test_confluent_transport_lets_librdkafka_hash_keys_like_crc32_unless_configured() -> None:
    t = ConfluentTransport({"bootstrap.servers": "127.0.0.1:1"})
    other = ConfluentTransport({"bootstrap.servers": "127.0.0.1:1", "partitioner": "murmur2"})
    try:
        assert t.client_partitioner == "crc32"
        assert other.client_partitioner is None
    finally:
        t.close()
        other.close()
