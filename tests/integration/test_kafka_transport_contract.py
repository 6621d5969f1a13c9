"""One contract for both producer transports: the real one and the unit tests' fake.

ClusterProducer's unit tests trust FakeTransport to behave like ConfluentTransport in the
ways the producer relies on; this module holds both to the same expectations, the real
one against a real broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError as RdError

from kapacity.kafka.devbroker import free_port
from kapacity.kafka.producer import ConfluentTransport, Transport
from tests.support.kafka import Broker, create_topic, unique
from tests.unit.kafka.test_producer import FakeTransport

pytestmark = pytest.mark.integration


@dataclass
class RecordingSink:
    """Records what a transport reports: (error code or None, topic, attempt)."""

    reports: list[tuple[int | None, str, int]] = field(default_factory=list)
    client_errors: list[RdError] = field(default_factory=list)

    def acked(self, topic: str) -> None:
        self.reports.append((None, topic, 0))

    def delivered(
        self, err: RdError | None, topic: str, key: bytes, value: bytes, partition: int, attempt: int
    ) -> None:
        self.reports.append((None if err is None else err.code(), topic, 0 if err is None else attempt))

    def client_error(self, err: RdError) -> None:
        self.client_errors.append(err)


#: make(reachable, queue_limit) -> a bound transport; "reachable" means a live broker.
Factory = Callable[[bool, int], tuple[Transport, RecordingSink]]


@pytest.fixture(params=["fake", "confluent"])
def make(request: pytest.FixtureRequest, noida: Broker) -> Factory:
    def factory(reachable: bool, queue_limit: int = 100_000) -> tuple[Transport, RecordingSink]:
        sink = RecordingSink()
        transport: Transport
        if request.param == "fake":
            transport = FakeTransport(partitions={}, queue_limit=queue_limit, auto_ack=reachable)
        else:
            bootstrap = noida.bootstrap if reachable else f"127.0.0.1:{free_port()}"
            transport = ConfluentTransport(
                {
                    "bootstrap.servers": bootstrap,
                    "queue.buffering.max.messages": queue_limit,
                    "message.timeout.ms": 10_000,
                    "linger.ms": 5,
                    "log_level": 0 if not reachable else 6,
                }
            )
        transport.bind(sink)
        return transport, sink

    return factory


def test_every_produced_message_gets_one_report(make: Factory, noida: Broker) -> None:
    topic = unique("contract")
    create_topic(noida.bootstrap, topic, partitions=3)
    transport, sink = make(True, 100_000)
    if isinstance(transport, FakeTransport):
        transport.partitions[topic] = 3
    assert transport.partition_count(topic, 5) == 3
    for i in range(6):
        transport.produce(topic, f"k{i}".encode(), b"v", i % 3, 0)
    assert transport.flush(10) == 0
    assert sink.reports == [(None, topic, 0)] * 6
    transport.close()


def test_full_queue_raises_buffer_error(make: Factory) -> None:
    transport, _ = make(False, 2)
    transport.produce("t", b"k", b"v", 0, 0)
    transport.produce("t", b"k", b"v", 0, 0)
    with pytest.raises(BufferError):
        transport.produce("t", b"k", b"v", 0, 0)
    transport.purge(in_flight=True)
    transport.poll(0)
    transport.close()


def test_purge_reports_queued_messages_with_their_attempt(make: Factory) -> None:
    transport, sink = make(False, 100)
    transport.produce("t", b"k", b"v", 0, 0)
    transport.produce("t", b"k", b"v", 0, 2)
    transport.purge()
    transport.poll(0)
    assert sorted(sink.reports, key=lambda r: r[2]) == [
        (RdError._PURGE_QUEUE, "t", 0), (RdError._PURGE_QUEUE, "t", 2),
    ]
    transport.close()
