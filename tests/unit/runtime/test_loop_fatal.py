"""TransactionalLoop's fatal-error detection, with fake clients (no broker): a fenced or
fatally failed consumer or producer ends the loop with FatalLoopError (retrying cannot help)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue.kinds import Kind
from kapacity.queue.transactional import BoundedCaller, FatalLoopError, PartitionState, TransactionalLoop


class FakeRecord:
    def __init__(self, offset: int, error: KafkaError | None = None) -> None:
        self._offset, self._error = offset, error

    def error(self) -> KafkaError | None:
        return self._error

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes | None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


class FakeConsumer:
    def __init__(self, records: list[FakeRecord]) -> None:
        self.records = records
        self.seeks: list[Any] = []

    def poll(self, timeout: float) -> FakeRecord | None:
        return self.records.pop(0) if self.records else None

    def consume(self, n: int, timeout: float) -> list[FakeRecord]:
        out, self.records = self.records[:n], self.records[n:]
        return out

    def consumer_group_metadata(self) -> object:
        return object()

    def seek(self, tp: Any) -> None:
        self.seeks.append(tp)


class _AnyTopic(dict[str, Any]):
    def get(self, name: str, default: Any = None) -> Any:
        return SimpleNamespace(partitions={0: None, 1: None})


class FakeProducer:
    """Records its calls; ``lose_on``: that call also queues a lost-connection error, which
    the next ``poll`` hands to ``error_cb`` (as librdkafka does)."""

    def __init__(self, commit: Exception | None = None, abort: Exception | None = None,
                 lose_on: str | None = None) -> None:
        self.commit, self.abort, self.lose_on = commit, abort, lose_on
        self.calls: list[str] = []
        self.error_cb: Any = None
        self._queued: list[KafkaError] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name == self.lose_on:
            self.lose_on = None
            self._queued.append(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))

    def poll(self, timeout: float) -> int:
        queued, self._queued = self._queued, []
        for err in queued:
            self.error_cb(err)
        return 0

    def close(self) -> None:
        return None

    def begin_transaction(self) -> None:
        self._call("begin")

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self._call("produce")

    def flush(self, timeout: float) -> int:
        self._call("flush")
        return 0

    def list_topics(self, timeout: float) -> Any:
        """Every topic has two partitions."""
        return SimpleNamespace(topics=_AnyTopic())

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self._call("offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")
        if self.commit is not None:
            raise self.commit

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort")
        if self.abort is not None:
            raise self.abort


def fenced() -> KafkaException:
    return KafkaException(KafkaError(KafkaError.PRODUCER_FENCED, fatal=True))


def loop(tmp_path: Path, consumer: FakeConsumer, producer: FakeProducer) -> TransactionalLoop:
    """A loop whose clients are fakes (the constructor would contact a broker)."""
    lp = TransactionalLoop.__new__(TransactionalLoop)
    lp.naming = KafkaQueueConfig().naming()
    lp._source, lp._changelog_kind = Kind.POINTS, Kind.ALERT_STATE
    lp._source_topic, lp._changelog = lp.naming.topic(Kind.POINTS), lp.naming.topic(Kind.ALERT_STATE)
    lp.transactional_id = lp.working_id = "t_engine_a"
    lp.fatal, lp._closing = None, False
    lp._hooks = (None, None, None)
    lp._fresh_producer_needed = False
    lp._calls, lp._producer_open = BoundedCaller(lp.transactional_id), True
    lp._connection_losses = lp.connection_reruns = 0
    lp._raw_topics = set()
    producer.error_cb = lp._on_producer_error

    def process(m: Any, state: PartitionState) -> list[tuple[Kind, str, Any]]:
        state.put("k", m.offset)
        return [(Kind.EVENTS, "id", {"offset": m.offset})]

    lp._process = process
    lp.states = {0: PartitionState(0)}
    lp._consumer, lp._producer = consumer, producer  # type: ignore[assignment]  # fakes
    return lp


def test_a_fatal_error_reported_by_the_callback_ends_the_loop_before_the_next_poll(tmp_path: Path) -> None:
    consumer = FakeConsumer([FakeRecord(0)])
    lp = loop(tmp_path, consumer, FakeProducer())
    lp._on_error(KafkaError(KafkaError._FATAL, "Static consumer fenced by other consumer"))
    lp._on_error(KafkaError(KafkaError._TRANSPORT))  # a later ordinary error does not hide it
    with pytest.raises(FatalLoopError, match="Static consumer fenced"):
        lp.run_once(10, 0)
    assert consumer.records  # nothing polled


def test_a_transient_error_from_the_callback_is_not_fatal(tmp_path: Path) -> None:
    lp = loop(tmp_path, FakeConsumer([FakeRecord(0)]), FakeProducer())
    lp._on_error(KafkaError(KafkaError._TRANSPORT))
    assert lp.run_once(10, 0) == 1 and lp.fatal is None


def test_a_fatal_error_event_from_poll_ends_the_loop(tmp_path: Path) -> None:
    producer = FakeProducer()
    lp = loop(tmp_path, FakeConsumer([FakeRecord(0, KafkaError(KafkaError._FATAL)), FakeRecord(1)]), producer)
    with pytest.raises(FatalLoopError):
        lp.run_once(10, 0)
    assert producer.calls == []  # no transaction began


def test_a_fenced_commit_discards_the_batch_without_trying_to_abort(tmp_path: Path) -> None:
    producer = FakeProducer(commit=fenced())
    lp = loop(tmp_path, FakeConsumer([FakeRecord(0)]), producer)
    with pytest.raises(FatalLoopError):
        lp.run_once(10, 0)
    assert "abort" not in producer.calls and lp.states[0].items() == {} and lp.fatal is not None


def test_a_failed_commit_whose_abort_is_fenced_ends_the_loop(tmp_path: Path) -> None:
    producer = FakeProducer(commit=KafkaException(KafkaError(KafkaError._TIMED_OUT)), abort=fenced())
    lp = loop(tmp_path, FakeConsumer([FakeRecord(0)]), producer)
    with pytest.raises(FatalLoopError):
        lp.run_once(10, 0)
    assert producer.calls[-1] == "abort" and lp.states[0].items() == {}


def test_a_failed_commit_with_a_working_abort_stays_retriable(tmp_path: Path) -> None:
    consumer = FakeConsumer([FakeRecord(0)])
    lp = loop(tmp_path, consumer, FakeProducer(commit=KafkaException(KafkaError(KafkaError._TIMED_OUT))))
    with pytest.raises(KafkaException):
        lp.run_once(10, 0)
    assert lp.fatal is None and lp._fresh_producer_needed and len(consumer.seeks) == 1


def test_a_failed_assignment_makes_the_loop_fatal_so_the_stage_rebuilds_it(tmp_path: Path) -> None:
    """The group thinks the partitions are ours but nothing fetches them: only a new loop
    (a new join) gets them back, so the next run_once must end the loop."""
    lp = loop(tmp_path, FakeConsumer([FakeRecord(0)]), FakeProducer())

    def restore(partition: int) -> PartitionState:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker still coming back"))

    lp._restore = restore  # type: ignore[method-assign]  # the failing broker
    assert lp.fatal is None
    with pytest.raises(KafkaException):
        lp._on_assign(lp._consumer, [TopicPartition(lp._source_topic, 3)])  # type: ignore[arg-type]
    assert lp.fatal is not None and "[3]" in lp.fatal and "broker still coming back" in lp.fatal
    with pytest.raises(FatalLoopError, match="assignment of"):
        lp.run_once(10, 0)


def test_an_assignment_served_while_leaving_the_group_restores_nothing(tmp_path: Path) -> None:
    """librdkafka may run a pending assignment inside ``close()``: restoring then would only
    fail (the handles are going) and raise out of close/abandon."""
    lp = loop(tmp_path, FakeConsumer([]), FakeProducer())
    restored: list[int] = []

    def restore(partition: int) -> PartitionState:
        restored.append(partition)
        raise KafkaException(KafkaError(KafkaError._DESTROY, "broker handle destroyed for termination"))

    lp._restore = restore  # type: ignore[method-assign]
    lp._closing = True
    lp._on_assign(lp._consumer, [TopicPartition(lp._source_topic, 1)])  # type: ignore[arg-type]
    assert restored == [] and lp.fatal is None
