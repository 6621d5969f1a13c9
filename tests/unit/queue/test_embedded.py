"""What only the embedded backend promises: durability, leases, the cleaner (injected clock)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from kapacity.queue import Kind
from kapacity.queue.embedded import EmbeddedQueue
from kapacity.queue.errors import QueueClosedError, QueueUnavailableError
from kapacity.queue.protection import SWEEP_GRACE_MS, FileStorage, Protector


class Clock:
    def __init__(self) -> None:
        self.ms = time.time_ns() // 1_000_000  # stored objects carry real file times

    def __call__(self) -> int:
        return self.ms


def open_q(tmp_path: Path, clock: Clock, **kw: object) -> EmbeddedQueue:
    return EmbeddedQueue(tmp_path / "q.db", now_ms=clock, cleaner_interval_s=0, **kw)  # type: ignore[arg-type]


def test_messages_and_group_positions_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    q = open_q(tmp_path, clock)
    q.emit_many(Kind.EVENTS, [("a", 1), ("b", 2)])
    assert [m.value for m in q.consumer(Kind.EVENTS, "g").poll(max_messages=1, timeout=0)] == [1]
    q.receive(Kind.EVENTS, "h", lambda m: None, max_messages=1, timeout=0)
    q.emit_async(Kind.EVENTS, "c", 3)
    q.close()  # flushes the async buffer
    q2 = open_q(tmp_path, clock)
    got: list[int] = []
    while q2.receive(Kind.EVENTS, "h", lambda m: got.append(m.value), timeout=0):
        pass
    assert got == [2, 3]  # h had committed 1
    q2.close()


def test_an_unacknowledged_claim_is_redelivered_after_the_lease(tmp_path: Path) -> None:
    clock = Clock()
    a, b = open_q(tmp_path, clock, lease_ms=1000), open_q(tmp_path, clock, lease_ms=1000)
    a.emit_many(Kind.POINTS, [("s", i) for i in range(3)])
    crashed = a.consumer(Kind.POINTS, "engine")
    assert len(crashed.poll(timeout=0)) == 3  # claimed, then the process "dies" (no close)
    other = b.consumer(Kind.POINTS, "engine")
    assert other.poll(timeout=0) == []  # leased to the first member
    clock.ms += 1001
    again = other.poll(timeout=0)
    assert [m.value for m in again] == [0, 1, 2]
    other.commit(again)
    clock.ms += 5000
    assert other.poll(timeout=0) == []
    a.close()
    b.close()


def test_partial_commit_moves_the_claim_start(tmp_path: Path) -> None:
    clock = Clock()
    q = open_q(tmp_path, clock, lease_ms=1000)
    q.emit_many(Kind.POINTS, [("s", i) for i in range(4)])
    c = q.consumer(Kind.POINTS, "g")
    batch = c.poll(timeout=0)
    c.commit(batch[:2])
    clock.ms += 2000
    assert [m.value for m in q.consumer(Kind.POINTS, "g").poll(timeout=0)] == [2, 3]
    q.close()


def test_cleaner_applies_retention_and_compaction(tmp_path: Path) -> None:
    clock = Clock()
    props = {
        Kind.POINTS: {"cleanup.policy": "delete", "retention.ms": "1000"},
        Kind.TASKS: {"cleanup.policy": "compact", "retention.ms": "-1", "delete.retention.ms": "500"},
    }
    q = open_q(tmp_path, clock, topic_properties=lambda k: props.get(k, {"retention.ms": "-1"}))
    q.emit(Kind.POINTS, "old", 1)
    q.emit_many(Kind.TASKS, [("t1", 1), ("t2", 1), ("t1", 2)])
    q.delete(Kind.TASKS, "t2")
    clock.ms += 600
    q.emit(Kind.POINTS, "new", 2)
    removed = q.clean()
    assert removed["kapacity_tasks"] == 3  # t1@1, t2@1 superseded; the t2 tombstone expired
    reader = q.broadcast(Kind.TASKS)
    assert [(m.key, m.value) for m in reader.poll(timeout=0)] == [("t1", 2)]
    clock.ms += 500
    q.clean()
    assert [m.key for m in q.broadcast(Kind.POINTS).poll(timeout=0)] == ["new"]
    q.close()


def test_cleaner_sweeps_stored_payloads_no_row_references(tmp_path: Path) -> None:
    clock = Clock()
    storage = FileStorage(tmp_path / "_messages")
    props = {Kind.EVENTS: {"cleanup.policy": "delete", "retention.ms": "1000"}}
    q = open_q(
        tmp_path, clock, protector=Protector(10, None, storage),
        topic_properties=lambda k: props.get(k, {"retention.ms": "-1"}),
    )
    q.emit(Kind.EVENTS, "big", "x" * 100)
    q.emit(Kind.TASKS, "def", "y" * 100)
    assert len(list(storage.list("kapacity_events"))) == 1
    clock.ms = time.time_ns() // 1_000_000 + SWEEP_GRACE_MS + 1000
    q.clean()  # the events row expired, so its object goes too; the task row still refers
    assert list(storage.list("kapacity_events")) == []
    assert len(list(storage.list("kapacity_tasks"))) == 1
    assert [m.value for m in q.broadcast(Kind.TASKS).poll(timeout=0)] == ["y" * 100]
    q.close()


def test_closed_queue_refuses_work_and_bad_path_is_unavailable(tmp_path: Path) -> None:
    q = open_q(tmp_path, Clock())
    q.close()
    with pytest.raises(QueueClosedError):
        q.emit(Kind.EVENTS, "k", 1)
    (tmp_path / "file").write_text("")
    with pytest.raises(QueueUnavailableError, match="cannot open the embedded queue"):
        EmbeddedQueue(tmp_path / "file" / "q.db", cleaner_interval_s=0)


def test_tables_follow_the_naming_function(tmp_path: Path) -> None:
    q = open_q(tmp_path, Clock())
    q.close()
    with sqlite3.connect(tmp_path / "q.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"q_kapacity_points", "q_kapacity_dead_letter", "_groups", "_claims"} <= names
