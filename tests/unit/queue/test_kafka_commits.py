"""Kafka group consumer commits (issue 5): asynchronous per batch, synchronous when it must be.

No broker: the group consumer runs on a fake librdkafka consumer that records every call;
the rebalance and commit callbacks are invoked the way librdkafka invokes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue import Kind
from kapacity.queue.base import Message
from kapacity.queue.kafka import CONSUMER_DEFAULTS, KafkaQueue, _KafkaGroupConsumer

TOPIC = "points"
Callback = Callable[..., None]


class FakeConsumer:
    """Records subscribe/commit/close calls; ``fail_sync`` makes synchronous commits raise."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.calls: list[tuple[str, Any]] = []
        self.callbacks: dict[str, Callback] = {}
        self.fail_sync = False

    def subscribe(self, topics: list[str], **callbacks: Callback) -> None:
        self.callbacks = callbacks
        self.calls.append(("subscribe", topics))

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition] | None:
        got = sorted((tp.partition, tp.offset) for tp in offsets)
        self.calls.append(("async" if asynchronous else "sync", got))
        if asynchronous:
            return None
        if self.fail_sync:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))
        return [TopicPartition(TOPIC, p, o) for p, o in got]

    def close(self) -> None:
        self.calls.append(("close", None))

    # librdkafka's side: what it calls back during poll / close
    def assign(self, *partitions: int) -> None:
        self.callbacks["on_assign"](self, [TopicPartition(TOPIC, p) for p in partitions])

    def revoke(self, *partitions: int) -> None:
        self.callbacks["on_revoke"](self, [TopicPartition(TOPIC, p) for p in partitions])

    def lose(self, *partitions: int) -> None:
        self.callbacks["on_lost"](self, [TopicPartition(TOPIC, p) for p in partitions])

    def confirm(self, *offsets: tuple[int, int], err: KafkaError | None = None) -> None:
        self.config["on_commit"](err, [TopicPartition(TOPIC, p, o) for p, o in offsets])


@pytest.fixture
def queue() -> Iterator[KafkaQueue]:
    props = {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}  # never contacted
    q = KafkaQueue(KafkaQueueConfig.model_validate({"client": {"properties": props}}), ensure=False)
    try:
        yield q
    finally:
        q.close()


@pytest.fixture
def member(queue: KafkaQueue, monkeypatch: pytest.MonkeyPatch) -> tuple[_KafkaGroupConsumer, FakeConsumer]:
    fakes: list[FakeConsumer] = []

    def new_consumer(group_id: str, **callbacks: Any) -> FakeConsumer:
        fakes.append(FakeConsumer({**queue.consumer_config(group_id), **callbacks}))
        return fakes[-1]

    monkeypatch.setattr(queue, "_new_consumer", new_consumer)
    c = _KafkaGroupConsumer(queue, Kind.POINTS, "engine")
    c._topic = TOPIC
    return c, fakes[0]


def msgs(*at: tuple[int, int]) -> list[Message]:
    return [Message(Kind.POINTS, "k", {"v": o}, o, p) for p, o in at]


def test_commit_sends_the_next_offsets_without_waiting(member: tuple[_KafkaGroupConsumer, FakeConsumer]) -> None:
    c, fake = member
    fake.assign(0, 1)
    c.commit(msgs((0, 4), (1, 7), (0, 5)))
    assert fake.calls[-1] == ("async", [(0, 6), (1, 8)])
    assert "sync" not in [name for name, _ in fake.calls]


def test_unconfirmed_offsets_go_again_with_the_next_commit(member: tuple[_KafkaGroupConsumer, FakeConsumer]) -> None:
    c, fake = member
    fake.assign(0, 1)
    c.commit(msgs((0, 4), (1, 7)))
    fake.confirm((0, 5))  # partition 1's answer has not come (or was lost)
    c.commit(msgs((0, 9)))
    assert fake.calls[-1] == ("async", [(0, 10), (1, 8)])
    fake.confirm((0, 10), (1, 8))
    c.close()
    assert fake.calls[-1] == ("close", None)  # everything confirmed: no round trip at close
    assert "sync" not in [name for name, _ in fake.calls]


def test_close_commits_what_is_unconfirmed_synchronously_before_leaving(
    member: tuple[_KafkaGroupConsumer, FakeConsumer],
) -> None:
    c, fake = member
    fake.assign(0, 1)
    c.commit(msgs((0, 4), (1, 7)))
    fake.confirm((0, 5))
    c.close()
    assert fake.calls[-2:] == [("sync", [(1, 8)]), ("close", None)]
    c.close()  # idempotent
    assert fake.calls.count(("close", None)) == 1


def test_a_revocation_commits_the_revoked_partitions_synchronously_and_stops_committing_them(
    member: tuple[_KafkaGroupConsumer, FakeConsumer],
) -> None:
    c, fake = member
    fake.assign(0, 1, 2)
    c.commit(msgs((0, 4), (1, 7), (2, 1)))
    fake.revoke(1, 2)
    assert fake.calls[-1] == ("sync", [(1, 8), (2, 2)])
    c.commit(msgs((0, 5), (1, 9)))  # records of 1 polled before the revocation: its new owner's now
    assert fake.calls[-1] == ("async", [(0, 6)])
    fake.assign(1)  # given back in the next generation
    c.commit(msgs((1, 12)))
    assert fake.calls[-1] == ("async", [(0, 6), (1, 13)])


def test_lost_partitions_are_not_committed(
    member: tuple[_KafkaGroupConsumer, FakeConsumer], caplog: pytest.LogCaptureFixture
) -> None:
    c, fake = member
    fake.assign(0, 1)
    c.commit(msgs((0, 4), (1, 7)))
    fake.lose(0, 1)
    assert "may be delivered again" in caplog.text
    c.close()
    assert [name for name, _ in fake.calls] == ["subscribe", "async", "close"]


def test_failed_commits_are_counted_kept_and_logged(
    queue: KafkaQueue, member: tuple[_KafkaGroupConsumer, FakeConsumer], caplog: pytest.LogCaptureFixture
) -> None:
    c, fake = member
    fake.assign(0, 1)
    c.commit(msgs((0, 4), (1, 7)))
    fake.confirm((0, 5), (1, 8), err=KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
    # A per-partition error (TopicPartition.error is read-only: a stand-in with its fields).
    failed_partition = SimpleNamespace(topic=TOPIC, partition=1, offset=8, error=KafkaError(KafkaError.NOT_COORDINATOR))
    fake.config["on_commit"](None, [TopicPartition(TOPIC, 0, 5), failed_partition])
    assert queue.stats.commit_failures == 2
    assert "commit to points failed" in caplog.text
    fake.fail_sync = True
    c.close()
    assert fake.calls[-2:] == [("sync", [(1, 8)]), ("close", None)]  # a failed close commit still closes
    assert queue.stats.commit_failures == 3


def test_commits_are_logged_when_the_broker_confirms_them(
    member: tuple[_KafkaGroupConsumer, FakeConsumer], queue: KafkaQueue
) -> None:
    seen: list[tuple[str, int, int]] = []

    class Loggers:
        def committed(self, topic: str, partition: int, offset: int) -> None:
            seen.append((topic, partition, offset))

    queue.loggers = Loggers()  # type: ignore[assignment]
    c, fake = member
    fake.assign(0, 1)
    c.commit(msgs((0, 4), (1, 7)))
    assert seen == []  # sent, not yet committed
    fake.confirm((0, 5))
    c.close()
    assert seen == [(TOPIC, 0, 5), (TOPIC, 1, 8)]


def test_consumers_get_a_short_fetch_queue_backoff_unless_configured(queue: KafkaQueue) -> None:
    assert queue.consumer_config("g")["fetch.queue.backoff.ms"] == CONSUMER_DEFAULTS["fetch.queue.backoff.ms"] == "10"
    props = {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}
    cfg = KafkaQueueConfig.model_validate(
        {"client": {"properties": props}, "defaults": {"consumer": {"properties": {"fetch.queue.backoff.ms": 250}}}}
    )
    q = KafkaQueue(cfg, ensure=False)
    try:
        assert q.consumer_config("g")["fetch.queue.backoff.ms"] == "250"
        assert q.consumer_config("g")["group.id"] == "g"
    finally:
        q.close()
