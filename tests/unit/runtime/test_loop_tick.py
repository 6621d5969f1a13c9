"""TransactionalLoop.run_tick with fake clients: clock-driven outputs (deadman) commit in a
transaction of their own, with the state they changed; nothing begins without outputs; a
failed commit aborts and discards the partitions' uncommitted state."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from kapacity.queue.kinds import Kind
from kapacity.queue.transactional import ConnectionLostError
from tests.unit.runtime.test_loop_fatal import FakeConsumer, FakeProducer, loop


def test_a_tick_commits_its_outputs_and_state_in_one_transaction(tmp_path: Path) -> None:
    producer = FakeProducer()
    lp = loop(tmp_path, FakeConsumer([]), producer)

    def outputs(p: int) -> list[tuple[Kind, str, object]]:
        lp.states[p].put("dead", 1)
        return [(Kind.EVENTS, "id", {"level": "CRITICAL"})]

    assert lp.run_tick(outputs) == 1
    assert producer.calls == ["begin", "produce", "produce", "commit"]  # the event, the state
    assert "offsets" not in producer.calls and lp.states[0].items() == {"dead": 1}


def test_a_tick_without_outputs_begins_nothing(tmp_path: Path) -> None:
    producer = FakeProducer()
    lp = loop(tmp_path, FakeConsumer([]), producer)
    assert lp.run_tick(lambda p: []) == 0 and producer.calls == []


def test_a_failed_tick_commit_aborts_and_discards(tmp_path: Path) -> None:
    producer = FakeProducer(commit=KafkaException(KafkaError(KafkaError._TIMED_OUT)))
    lp = loop(tmp_path, FakeConsumer([]), producer)
    aborted: list[list[int]] = []
    lp._hooks = (None, None, aborted.append)

    def outputs(p: int) -> list[tuple[Kind, str, object]]:
        lp.states[p].put("dead", 1)
        return [(Kind.EVENTS, "id", {})]

    with pytest.raises(KafkaException):
        lp.run_tick(outputs)
    assert producer.calls[-1] == "abort" and aborted == [[0]] and lp.states[0].items() == {}
    assert lp._fresh_producer_needed


def test_a_connection_lost_during_a_tick_aborts_and_seals(tmp_path: Path) -> None:
    producer = FakeProducer(lose_on="produce")
    lp = loop(tmp_path, FakeConsumer([]), producer)
    with pytest.raises(ConnectionLostError):
        lp.run_tick(lambda p: [(Kind.EVENTS, "id", {})])
    assert "commit" not in producer.calls
    assert producer.calls[producer.calls.index("abort") + 1:] == ["begin", *["produce"] * 4, "flush", "abort"]
