"""The queue broker restarts (issue 6, fault 3) under an exactly-once loop, on noida-db (its
data survives a restart).

librdkafka 2.16 re-bootstraps a client once every broker is unreachable and decommissions
the broker handles; a transactional producer's group-coordinator cache keeps the dead handle
and ``send_offsets_to_transaction`` then waits for it for ever, whatever its timeout
(librdkafka issue #5511). The loop's producer runs without re-bootstrap, and every blocking
transactional call is bounded all the same (see ``kapacity.queue.transactional``).
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException

import kapacity.queue.transactional as txn
from kapacity.kafka.devbroker import BrokerProcess, free_port, start_noida
from kapacity.queue import Kind
from kapacity.queue.base import Message
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.kafka import KafkaQueue
from kapacity.queue.transactional import Output, PartitionState, StuckCallError, TransactionalLoop
from tests.integration.test_queue_transactional import Counter, outputs, run_until, settings
from tests.support.kafka import create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

#: One process, two transactional producers differing only in ``metadata.recovery.strategy``:
#: each commits a transaction with offsets, the broker restarts, each tries again (bounded).
_CHILD = r"""
import json, os, sys, threading, time
from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic, group = sys.argv[1:4]
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000})
consumer.subscribe([topic])
deadline = time.monotonic() + 30
while not consumer.assignment() and time.monotonic() < deadline:
    consumer.poll(0.1)
strategies = ("rebootstrap", "none")
producers = {s: Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{group}-{s}",
                          "metadata.recovery.strategy": s}) for s in strategies}

def transaction(p, timeout):
    p.begin_transaction()
    p.produce(topic, b"x", partition=0)
    p.send_offsets_to_transaction([TopicPartition(topic, 0, 1)], consumer.consumer_group_metadata(), timeout)
    p.commit_transaction(timeout)

for p in producers.values():
    p.init_transactions(30)
    transaction(p, 30)
print("ready", flush=True)
sys.stdin.readline()  # the broker was stopped and started again
results = {}

def attempt(s):
    try:
        transaction(producers[s], 5)
        results[s] = "committed"
    except Exception as exc:
        results[s] = f"failed: {exc}"

threads = {s: threading.Thread(target=attempt, args=(s,), daemon=True) for s in strategies}
started = time.monotonic()
for t in threads.values():
    t.start()
threads["none"].join(20)
threads["rebootstrap"].join(max(0.0, started + 12 - time.monotonic()))  # its timeout is 5 s
print(json.dumps({s: results.get(s, "blocked") for s in strategies}), flush=True)
os._exit(0)  # a blocked call would keep the process alive
"""


def _line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no answer from the child within {timeout}s"
    return proc.stdout.readline().strip()


def _restart(broker: BrokerProcess, pause_s: float = 1.0) -> BrokerProcess:
    assert broker.data_dir is not None
    broker.stop()
    threading.Event().wait(pause_s)  # an outage, not a blip
    return start_noida(port=broker.port, data_dir=broker.data_dir)


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[list[BrokerProcess]]:
    """A noida-db of this test's own (restarted by it): the current process is ``[0]``."""
    procs = [start_noida(port=free_port(), data_dir=tmp_path / "noida")]
    try:
        yield procs
    finally:
        procs[0].stop()


def test_the_client_defect_worked_around(restartable: list[BrokerProcess], tmp_path: Path) -> None:
    """librdkafka #5511 itself: if the re-bootstrapping producer stops blocking, the client
    was fixed (then ``PRODUCER_METADATA_RECOVERY`` can go back to librdkafka's default)."""
    bootstrap = restartable[0].bootstrap
    topic, group = unique("rb"), unique("rbg")
    create_topic(bootstrap, topic, 1)
    with (open(tmp_path / "child.log", "w") as log,
          subprocess.Popen([sys.executable, "-c", _CHILD, bootstrap, topic, group], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=log, text=True) as child):
        try:
            assert _line(child, 60) == "ready", (tmp_path / "child.log").read_text()[-2000:]
            restartable[0] = _restart(restartable[0])
            assert child.stdin is not None
            child.stdin.write("restarted\n")
            child.stdin.flush()
            results = json.loads(_line(child, 40))
        finally:
            child.kill()
    assert results == {"rebootstrap": "blocked", "none": "committed"}, results
    assert txn.PRODUCER_METADATA_RECOVERY == "none"


def _run_in_thread(loop: TransactionalLoop, handled: list[int], stop: threading.Event) -> threading.Thread:
    """Runs the loop like a stage thread: a failed batch (the broker is away) runs again."""

    def run() -> None:
        while not stop.is_set():
            try:
                handled[0] += loop.run_once(100, 0.2)
            except Exception:  # noqa: BLE001 - aborted; processed again
                stop.wait(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_loop_goes_on_after_the_broker_restarts_and_then_stops_promptly(
    restartable: list[BrokerProcess], tmp_path: Path
) -> None:
    s = settings(restartable[0].bootstrap)
    q = KafkaQueue(s)
    loop = TransactionalLoop(s, name="counter", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
                             process=Counter(), state_dir=tmp_path / "state")
    handled, stop = [0], threading.Event()
    thread = _run_in_thread(loop, handled, stop)
    try:
        q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(10)])
        wait_for(lambda: handled[0] >= 10, timeout=30, what="10 points before the restart")
        restartable[0] = _restart(restartable[0], pause_s=3.0)
        q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(10, 20)])
        wait_for(lambda: handled[0] >= 20, timeout=30,
                 what=f"10 points after the restart (handled {handled}, fatal {loop.fatal})")
        got = outputs(q, 20)
        assert sorted((m.key, m.value["count"]) for m in got) == sorted((f"k{k}", c) for k in (0, 1) for c in range(1, 11))
        assert loop.fatal is None
    finally:
        stop.set()
        thread.join(10)
        started = time.monotonic()
        if not thread.is_alive():
            loop.close()
        q.close()
    assert not thread.is_alive() and time.monotonic() - started < 10


class _BlockingOffsets:
    """The loop's producer, except that ``send_offsets_to_transaction`` never returns (until
    the test ends; then it fails rather than touch the fenced producer)."""

    def __init__(self, producer: Any, release: threading.Event) -> None:
        self._producer, self._release = producer, release

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self._release.wait()
        raise RuntimeError("released at the end of the test")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def test_a_stuck_commit_ends_the_loop_and_the_next_incarnation_runs_the_batch_exactly_once(
    restartable: list[BrokerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(txn, "BATCH_TXN_TIMEOUT_S", 0.5)
    monkeypatch.setattr(txn, "CALL_GRACE_S", 0.5)
    s = settings(restartable[0].bootstrap)
    q = KafkaQueue(s)
    q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(6)])
    release = threading.Event()
    first = TransactionalLoop(s, name="counter", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
                              process=Counter(), state_dir=tmp_path)
    real = first._producer
    first._producer = _BlockingOffsets(real, release)  # type: ignore[assignment]  # a stand-in with the same calls
    try:
        with pytest.raises(StuckCallError, match="send_offsets/commit_transaction blocked"):
            run_until(first, 6)  # its outputs were produced in the transaction left open
        started = time.monotonic()
        first.abandon()
        assert time.monotonic() - started < 10
        second = TransactionalLoop(s, name="counter", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
                                   process=Counter(), state_dir=tmp_path)
        try:
            run_until(second, 6)
            got = outputs(q, 6)  # read_committed: the first incarnation's outputs were aborted
            assert sorted((m.key, m.value["count"]) for m in got) == [(f"k{k}", c) for k in (0, 1) for c in (1, 2, 3)]
        finally:
            second.close()
    finally:
        release.set()
        with contextlib.suppress(KafkaException):  # fenced by the second incarnation: close says so
            real.close()
        q.close()



class _RestartMidTransaction(Counter):
    """Counts like :class:`Counter`; on one value, after the transaction's first outputs are
    on the broker, restarts the broker (once): the transaction is open across the restart."""

    def __init__(self, broker: list[BrokerProcess], on: int) -> None:
        super().__init__()
        self.broker, self.on = broker, on
        self.loop: TransactionalLoop | None = None

    def __call__(self, m: Message, state: PartitionState) -> Iterable[Output]:
        if m.value == self.on and self.loop is not None:
            self.on = -1
            self.loop._producer.flush(10)  # the open transaction's records are written
            self.broker[0] = _restart(self.broker[0], pause_s=2.0)
        return super().__call__(m, state)


def test_a_batch_across_a_broker_restart_is_aborted_sealed_and_run_again_under_a_new_producer_id(
    restartable: list[BrokerProcess], tmp_path: Path
) -> None:
    """noida-db drops the transaction open when it stops and forgets the partitions it had
    added, yet takes the records and the commit sent after the restart: without care, the
    batch's first outputs are lost while its offsets commit, and its later outputs belong to
    no transaction the broker can end, so the partition's stable offset never passes them
    (every later output hidden from read_committed readers). The loop aborts a batch that
    spanned a lost connection, seals the partitions with an abort marker of its producer id,
    and runs the batch again under a new id: nothing lost, nothing doubled, and readers (one
    of them lived through the restart) see every output."""
    s = settings(restartable[0].bootstrap)
    q = KafkaQueue(s)
    events = s.naming().topic(Kind.EVENTS)
    reader = Consumer({"bootstrap.servers": restartable[0].bootstrap, "group.id": unique("live"),
                       "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                       "enable.auto.commit": False})
    process = _RestartMidTransaction(restartable, on=13)
    loop = TransactionalLoop(s, name="counter", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
                             process=process, state_dir=tmp_path / "state")
    process.loop = loop
    seen: list[tuple[str, int]] = []
    offsets: set[tuple[int, int]] = set()
    try:
        q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(10)])
        run_until(loop, 10)
        reader.subscribe([events])
        wait_for(lambda: seen.extend(_counts(reader, offsets)) or len(seen) >= 10, timeout=30, what="10 outputs")
        q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(10, 20)])
        handled = [0]

        def step() -> bool:
            with contextlib.suppress(QueueUnavailableError):  # the dropped batch: it runs again
                handled[0] += loop.run_once(timeout=0.2)
            return handled[0] >= 10

        wait_for(step, timeout=90, what=f"10 points across the restart (fatal: {loop.fatal})")
        assert loop.connection_reruns == 1 and loop.fatal is None
        q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(20, 24)])
        run_until(loop, 4)
        wait_for(lambda: seen.extend(_counts(reader, offsets)) or len(seen) >= 24, timeout=30,
                 what=f"24 outputs for the reader that lived through the restart (has {seen})")
        threading.Event().wait(0.5)
        seen.extend(_counts(reader, offsets))
        assert sorted(seen) == sorted((f"k{k}", c) for k in (0, 1) for c in range(1, 13))
    finally:
        reader.close()
        loop.close()
        q.close()


def _counts(reader: Consumer, offsets: set[tuple[int, int]]) -> list[tuple[str, int]]:
    """(key, count) of the outputs read, each record once (a rebalance of the reader's group,
    which commits nothing, reads again from the beginning)."""
    out = []
    for m in reader.consume(100, 0.2):
        if m.error() is None and (m.partition(), m.offset()) not in offsets:
            offsets.add((m.partition(), m.offset()))
            v = json.loads(m.value())
            out.append((v["key"], v["count"]))
    return out
