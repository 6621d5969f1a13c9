"""A transactional call that never returns (librdkafka issue #5511) ends the loop, which
neither aborts nor closes the stuck producer; a stage blocked in one is interrupted by a stop
(fake clients and stages, no broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import kapacity.queue.transactional as txn
from kapacity.queue.errors import QueueError
from kapacity.queue.transactional import BoundedCaller, FatalLoopError, StuckCallError
from kapacity.runtime.engine import StageThread
from tests.unit.runtime.test_loop_fatal import FakeConsumer, FakeProducer, FakeRecord, loop


class BlockingProducer(FakeProducer):
    """send_offsets_to_transaction blocks until released (then fails: it is not to be used)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.closed = False

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self.calls.append("offsets")
        self.release.wait()
        raise RuntimeError("a stuck producer was used after its release")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(txn, "BATCH_TXN_TIMEOUT_S", 0.1)
    monkeypatch.setattr(txn, "CALL_GRACE_S", 0.2)


class FakeClosingConsumer(FakeConsumer):
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.mark.usefixtures("short_bounds")
def test_a_commit_that_never_returns_ends_the_loop_without_abort_or_close(tmp_path: Path,
                                                                           release: threading.Event) -> None:
    producer = BlockingProducer(release)
    consumer = FakeClosingConsumer([FakeRecord(0), FakeRecord(1)])
    lp = loop(tmp_path, consumer, producer)
    started = time.monotonic()
    with pytest.raises(StuckCallError, match=r"send_offsets/commit_transaction blocked \(no answer within 0.4s\)"):
        lp.run_once(10, 0)
    assert time.monotonic() - started < 5
    assert producer.calls == ["begin", "produce", "produce", "produce", "offsets"]  # no abort
    assert lp.states[0].items() == {}  # the batch's state changes are discarded
    assert lp.fatal is not None and "blocked" in lp.fatal
    with pytest.raises(FatalLoopError):  # the next batch does not start
        lp.run_once(10, 0)
    lp.abandon()
    assert consumer.closed and not producer.closed  # closing it would block like the call


class BlockedStage:
    """A stage whose batch is blocked in a bounded call until interrupted."""

    name = "engine"

    def __init__(self, release: threading.Event) -> None:
        self.calls = BoundedCaller("t_engine_a")
        self.release = release
        self.entered = threading.Event()
        self.closed = self.abandoned = False

    def run_once(self) -> int:
        self.entered.set()
        self.calls.call(self.release.wait, timeout=600, what="commit")
        return 1

    def close(self) -> None:
        self.closed = True

    def abandon(self) -> None:
        self.abandoned = True

    def interrupt(self) -> None:
        self.calls.interrupt()

    def status(self) -> dict[str, Any]:
        return {"partitions": [0]}


def test_a_stop_interrupts_a_stage_blocked_in_a_call_and_keeps_its_bound(release: threading.Event) -> None:
    stage = BlockedStage(release)
    rebuilt: list[BlockedStage] = []

    def rebuild() -> BlockedStage:
        rebuilt.append(stage)
        return stage

    thread = StageThread(stage, rebuild)
    thread.start()
    assert stage.entered.wait(5)
    started = time.monotonic()
    assert thread.stop(2.0)
    assert time.monotonic() - started < 2.5
    assert stage.abandoned and not stage.closed  # no checkpoint: the next start restores fully
    assert rebuilt == [] and thread.fatal_errors == 1  # stopping: not built again


def test_a_commit_timed_out_in_an_outage_rewinds_the_batch_even_though_the_abort_conflicts(tmp_path: Path) -> None:
    """librdkafka keeps a timed-out commit "in progress": the abort fails with _CONFLICT. The
    batch must still run again (a later commit would otherwise skip it), with a new producer."""
    producer = FakeProducer(commit=KafkaException(KafkaError(KafkaError._TIMED_OUT)),
                            abort=KafkaException(KafkaError(KafkaError._CONFLICT)))
    consumer = FakeConsumer([FakeRecord(4), FakeRecord(5)])
    lp = loop(tmp_path, consumer, producer)
    with pytest.raises(QueueError, match="2 messages will be processed again"):
        lp.run_once(10, 0)
    assert [tp.offset for tp in consumer.seeks] == [4]  # back to the batch start
    assert lp._fresh_producer_needed and lp.fatal is None and lp.states[0].items() == {}
