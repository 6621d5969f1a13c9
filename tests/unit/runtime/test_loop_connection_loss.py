"""A batch whose transaction spans a lost connection (fake clients, no broker): it is never
trusted. Lost before the commit: aborted, the partitions sealed with an abort marker of the
producer id, rewound, run again under a new id. Lost during the commit: the committed
offsets are read back; short ones mean the broker dropped the batch (the same then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.transactional import ConnectionLostError, FatalLoopError, TransactionalLoop
from tests.unit.runtime.test_loop_fatal import FakeConsumer, FakeProducer, FakeRecord, loop


class CommittedConsumer(FakeConsumer):
    """Answers ``committed`` with the offsets the broker kept (or fails)."""

    def __init__(self, records: list[FakeRecord], kept: int | None) -> None:
        super().__init__(records)
        self.kept = kept

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        if self.kept is None:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down"))
        return [TopicPartition(tp.topic, tp.partition, self.kept) for tp in partitions]


def _seal_calls(producer: FakeProducer) -> list[str]:
    """The calls after the batch's abort: the sealing transaction."""
    return producer.calls[producer.calls.index("abort") + 1:]


def _rewound(lp: TransactionalLoop, consumer: FakeConsumer) -> bool:
    return ([(tp.partition, tp.offset) for tp in consumer.seeks] == [(0, 5)]
            and lp.states[0].items() == {} and lp._fresh_producer_needed)


def test_a_connection_lost_before_the_commit_aborts_seals_and_rewinds(tmp_path: Path) -> None:
    consumer, producer = FakeConsumer([FakeRecord(5), FakeRecord(6)]), FakeProducer(lose_on="produce")
    lp = loop(tmp_path, consumer, producer)
    with pytest.raises(ConnectionLostError, match="lost during the transaction"):
        lp.run_once(10, 0)
    assert "commit" not in producer.calls and "abort" in producer.calls
    # one marker record on each partition of the outputs' and the changelog's topics
    assert _seal_calls(producer) == ["begin", *["produce"] * 4, "flush", "abort"]
    assert _rewound(lp, consumer) and lp.connection_reruns == 1 and lp.fatal is None


def test_without_a_lost_connection_a_batch_commits_with_no_check(tmp_path: Path) -> None:
    consumer, producer = CommittedConsumer([FakeRecord(5)], kept=None), FakeProducer()
    lp = loop(tmp_path, consumer, producer)
    assert lp.run_once(10, 0) == 1  # committed() would fail: it is not called
    assert producer.calls == ["begin", "produce", "produce", "offsets", "commit"] and lp.connection_reruns == 0


def test_a_commit_acknowledged_across_a_lost_connection_with_short_offsets_runs_again(tmp_path: Path) -> None:
    consumer, producer = CommittedConsumer([FakeRecord(5), FakeRecord(6)], kept=5), FakeProducer(lose_on="commit")
    lp = loop(tmp_path, consumer, producer)
    with pytest.raises(QueueUnavailableError, match="dropped a transaction it acknowledged"):
        lp.run_once(10, 0)
    after = producer.calls[producer.calls.index("commit") + 1:]
    assert after == ["begin", *["produce"] * 4, "flush", "abort"]  # sealed
    assert _rewound(lp, consumer) and lp.connection_reruns == 1


def test_a_commit_acknowledged_across_a_lost_connection_and_kept_stands(tmp_path: Path) -> None:
    consumer, producer = CommittedConsumer([FakeRecord(5), FakeRecord(6)], kept=7), FakeProducer(lose_on="commit")
    lp = loop(tmp_path, consumer, producer)
    assert lp.run_once(10, 0) == 2
    assert producer.calls[-1] == "commit" and consumer.seeks == [] and lp.states[0].items() == {"k": 6}


def test_a_commit_whose_outcome_cannot_be_read_back_ends_the_loop(tmp_path: Path) -> None:
    consumer, producer = CommittedConsumer([FakeRecord(5)], kept=None), FakeProducer(lose_on="commit")
    lp = loop(tmp_path, consumer, producer)
    with pytest.raises(FatalLoopError, match="outcome of a commit across a lost connection is unknown"):
        lp.run_once(10, 0)
    assert lp.fatal is not None and lp.states[0].items() == {}  # the rebuild restores from the changelog


def test_only_lost_connections_count(tmp_path: Path) -> None:
    lp = loop(tmp_path, FakeConsumer([]), FakeProducer())
    for code in (KafkaError._MSG_TIMED_OUT, KafkaError.NOT_COORDINATOR, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
        lp._on_producer_error(KafkaError(code))
    assert lp._connection_losses == 2


def test_a_new_incarnation_never_takes_a_working_id_initialised_before(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A working id whose epoch is above 0 was initialised before (its producer id may have
    an abort marker): the next incarnation is taken instead."""
    lp = loop(tmp_path, FakeConsumer([]), FakeProducer())
    epochs = {"t_engine_a": [0, 1], "t_engine_a.0": [3], "t_engine_a.1": [0]}
    traced: list[str] = []
    inited: list[str] = []

    def traced_init(tid: str) -> int:
        traced.append(tid)
        return epochs[tid].pop(0)

    def init(tid: str, extra: Any = None) -> FakeProducer:
        inited.append(tid)
        return FakeProducer()

    monkeypatch.setattr(lp, "_traced_init", traced_init)
    monkeypatch.setattr(lp, "_init", init)
    lp._start_producer()
    assert traced == ["t_engine_a", "t_engine_a.0", "t_engine_a", "t_engine_a.1"]
    # the second round fences the first one's working id, then starts on a fresh one
    assert inited == ["t_engine_a.0", "t_engine_a.1"] and lp.working_id == "t_engine_a.1"


class SealRecord(FakeRecord):
    def key(self) -> bytes:
        return b"kapacity-seal"


def test_a_seal_record_shown_by_a_broker_is_not_processed_but_its_offset_commits(tmp_path: Path) -> None:
    consumer, producer = FakeConsumer([SealRecord(5), FakeRecord(6)]), FakeProducer()
    lp = loop(tmp_path, consumer, producer)
    assert lp.run_once(10, 0) == 2
    assert producer.calls == ["begin", "produce", "produce", "offsets", "commit"]  # record 6 only
    assert lp.states[0].items() == {"k": 6}


def test_an_epoch_missing_from_the_debug_output_is_asked_for_again(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lp = loop(tmp_path, FakeConsumer([]), FakeProducer())
    answers = {"t_engine_a": [None, 4], "t_engine_a.4": [0]}
    inited: list[str] = []
    monkeypatch.setattr(lp, "_traced_init", lambda tid: answers[tid].pop(0))
    monkeypatch.setattr(lp, "_init", lambda tid, extra=None: inited.append(tid) or FakeProducer())
    lp._start_producer()
    assert lp.working_id == "t_engine_a.4" and inited[-1] == "t_engine_a.4"


def test_an_epoch_that_never_shows_falls_back_to_the_base_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lp = loop(tmp_path, FakeConsumer([]), FakeProducer())
    inited: list[str] = []
    monkeypatch.setattr(lp, "_traced_init", lambda tid: None)
    monkeypatch.setattr(lp, "_init", lambda tid, extra=None: inited.append(tid) or FakeProducer())
    lp._start_producer()
    assert lp.working_id == "t_engine_a" and inited == ["t_engine_a"]
