"""The durable ingest buffer and its flusher, with a fake queue (no broker)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from kapacity.queue.errors import QueueUnavailableError
from kapacity.runtime.errors import Backpressure, RuntimeStateError
from kapacity.runtime.ingestbuffer import IngestBuffer, IngestFlusher, buffer_path
from tests.support.waiting import wait_for


def _items(start: int, n: int) -> list[tuple[str, Any]]:
    return [(f"cpu,host=h{i % 3}", {"m": "cpu", "i": i}) for i in range(start, start + n)]


def test_points_come_out_in_arrival_order_and_survive_a_reopen(tmp_path: Path) -> None:
    path = buffer_path(tmp_path, "node/a")
    assert path == tmp_path / "ingest" / "node_a.sqlite"
    buf = IngestBuffer(path, capacity=100)
    buf.append(_items(0, 3), wait_s=0)
    buf.append(_items(3, 2), wait_s=0)
    buf.close()
    buf = IngestBuffer(path, capacity=100)
    assert len(buf) == 5 and buf.recovered == 5
    rows = buf.peek(3)
    assert [v["i"] for _, _, v in rows] == [0, 1, 2]
    assert buf.remove_through(rows[-1][0]) == 3
    assert [v["i"] for _, _, v in buf.peek(10)] == [3, 4]
    assert buf.counters()["flushed"] == 3
    buf.close()


def test_a_full_buffer_refuses_the_whole_request_after_waiting(tmp_path: Path) -> None:
    buf = IngestBuffer(tmp_path / "b.sqlite", capacity=4)
    buf.append(_items(0, 3), wait_s=0)
    with pytest.raises(Backpressure) as info:
        buf.append(_items(3, 2), wait_s=0.05)
    assert info.value.retriable and (info.value.pending, info.value.limit) == (3, 4)
    assert len(buf) == 3 and buf.refused == 2
    # Room made while a writer waits lets it in.
    t = threading.Timer(0.05, lambda: buf.remove_through(buf.peek(2)[-1][0]))
    t.start()
    buf.append(_items(3, 2), wait_s=5)
    t.join()
    assert [v["i"] for _, _, v in buf.peek(10)] == [2, 3, 4]
    # A request larger than the whole buffer gets in once the buffer is empty.
    buf.remove_through(10**9)
    buf.append(_items(0, 6), wait_s=0)
    assert len(buf) == 6
    buf.close()


class FlakyQueue:
    """Emits fail while ``down`` is set; records what was acknowledged, in order."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.got: list[int] = []
        self.attempts = 0
        self.drains = 0

    def emit(self, items: list[tuple[str, Any]]) -> None:
        self.attempts += 1
        if self.down.is_set():
            raise QueueUnavailableError("no broker")
        self.got.extend(v["i"] for _, v in items)

    def drain(self, timeout: float) -> None:
        self.drains += 1
        if self.down.is_set():
            raise QueueUnavailableError("records in flight")


def test_the_flusher_waits_out_an_outage_with_back_off_and_keeps_order(tmp_path: Path) -> None:
    q = FlakyQueue()
    buf = IngestBuffer(tmp_path / "b.sqlite", capacity=1000)
    flusher = IngestFlusher(buf, q.emit, q.drain, batch=7)
    flusher.start()
    buf.append(_items(0, 10), wait_s=0)
    wait_for(lambda: len(q.got) == 10, timeout=5, what="the first points")
    q.down.set()
    buf.append(_items(10, 20), wait_s=0)
    wait_for(lambda: flusher.status()["waiting_for_queue"], timeout=5, what="the flusher to notice")
    threading.Event().wait(1.0)  # a second of outage: back-off bounds the attempts
    attempts = q.attempts
    assert attempts <= 8, f"{attempts} attempts in ~1s: not backing off"
    assert len(buf) == 20 and flusher.status()["failures"] >= 1
    q.down.clear()
    wait_for(lambda: len(q.got) == 30, timeout=10, what="the buffered points after the outage")
    assert q.got == list(range(30))  # in order, none twice
    assert q.drains >= 1  # the client was drained before anything was sent again
    assert flusher.stop(5) and not flusher.status()["waiting_for_queue"]
    buf.close()


def test_stop_leaves_what_could_not_be_sent_on_disk(tmp_path: Path) -> None:
    q = FlakyQueue()
    q.down.set()
    path = tmp_path / "b.sqlite"
    buf = IngestBuffer(path, capacity=100)
    flusher = IngestFlusher(buf, q.emit, q.drain)
    flusher.start()
    buf.append(_items(0, 4), wait_s=0)
    assert not flusher.stop(0.3)
    buf.close()
    q.down.clear()
    buf = IngestBuffer(path, capacity=100)
    flusher = IngestFlusher(buf, q.emit, q.drain)
    flusher.start()
    wait_for(lambda: q.got == [0, 1, 2, 3], timeout=5, what="the recovered points")
    assert flusher.stop(5)
    buf.close()


def test_a_slow_emit_shows_as_waiting_for_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kapacity.runtime.ingestbuffer as ib

    monkeypatch.setattr(ib, "SLOW_EMIT_S", 0.05)
    release = threading.Event()
    buf = IngestBuffer(tmp_path / "b.sqlite", capacity=100)
    flusher = IngestFlusher(buf, lambda items: release.wait(10) and None)
    buf.append(_items(0, 2), wait_s=0)
    assert not flusher.waiting_for_queue()
    flusher.start()
    wait_for(flusher.waiting_for_queue, timeout=5, what="a slow emit to show")
    release.set()
    wait_for(lambda: len(buf) == 0, timeout=5, what="the emit to finish")
    assert not flusher.waiting_for_queue() and flusher.stop(5)
    buf.close()


def test_a_second_buffer_on_the_same_file_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "ingest" / "a.sqlite"
    first = IngestBuffer(path, 10)
    with pytest.raises(RuntimeStateError, match=r"in use by another process.*--instance"):
        IngestBuffer(path, 10)
    first.close()
    second = IngestBuffer(path, 10)  # the lock went with the first buffer
    second.close()
