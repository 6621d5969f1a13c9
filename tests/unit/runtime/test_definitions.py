"""Definitions read up to their end before a batch (issue 6), without a broker: fake readers
whose fetch lags, and the embedded backend (whose poll reads synchronously: no race)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from kapacity.models import Point
from kapacity.queue.base import DEFAULT_BATCH, BroadcastReader, Message, Queue
from kapacity.queue.embedded import EmbeddedQueue
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.heads import log_end
from kapacity.queue.kinds import Kind
from kapacity.runtime.definitions import Definitions, ReadPositions
from kapacity.runtime.engine import EmbeddedEngineStage
from kapacity.runtime.processor import TaskSet
from kapacity.runtime.records import TaskDefinition, point_value, series_key

SCRIPT = "stream|from().measurement('cpu').groupBy('host')|alert().crit(lambda: \"v\" > 10)"


def _task(tid: str) -> dict[str, Any]:
    return TaskDefinition(tid, SCRIPT).value()


class FakeReader(BroadcastReader):
    """A log of ``tasks`` records on one partition; the client has fetched ``fetched`` of them."""

    def __init__(self, records: list[tuple[str, Any]], *, end_error: bool = False) -> None:
        self.records = records
        self.fetched = 0
        self.read = 0
        self.on_poll: list[int] = []  # ``fetched`` after each poll: the fetch progresses
        self.end_queries = 0
        self.end_error = end_error

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        if self.on_poll:
            self.fetched = self.on_poll.pop(0)
        out = [Message(Kind.TASKS, k, v, i, 0) for i, (k, v) in enumerate(self.records)][self.read:self.fetched]
        out = out[:max_messages]
        self.read += len(out)
        if not out:
            time.sleep(min(timeout, 0.01))
        return out

    def log_end(self, timeout: float) -> dict[int, int] | None:
        self.end_queries += 1
        if self.end_error:
            raise QueueUnavailableError("broker away")
        return {0: len(self.records)}

    def close(self) -> None:
        pass


def _definitions(reader: FakeReader, monkeypatch: pytest.MonkeyPatch, wait_s: float = 2.0) -> Definitions:
    monkeypatch.setattr(Definitions, "open_reader", lambda self, queue, kind: reader)
    return Definitions(None, TaskSet(), None, end_wait_s=wait_s)  # type: ignore[arg-type]  # the reader is faked


def test_read_positions_follow_the_highest_offset_per_partition() -> None:
    pos = ReadPositions()
    assert pos.behind({0: 1}) == {0: 1}
    pos.saw([(0, 3), (0, 1), (2, 0)])
    assert pos.behind({0: 4, 1: 0, 2: 2}) == {2: 2}  # an empty partition is read up to its end
    pos.skip_to({2: 2, 0: 1})
    assert pos.next == {0: 4, 2: 2} and pos.behind({0: 4, 2: 2}) == {}


def test_a_batch_waits_for_a_definition_its_reader_has_not_fetched_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = FakeReader([("old", _task("old"))])
    reader.fetched = 1
    defs = _definitions(reader, monkeypatch)
    defs.catch_up(0.0)
    assert sorted(defs.tasks.defs) == ["old"] and defs.waited == 0  # type: ignore[union-attr]
    # A task defined (acknowledged) before the batch's points, not yet fetched by the reader:
    reader.records.append(("cpu", _task("cpu")))
    reader.on_poll = [1, 1, 1, 2]  # the fetch brings it on the 4th poll
    defs.fresh = False
    defs.refresh_once()
    assert sorted(defs.tasks.defs) == ["cpu", "old"]  # type: ignore[union-attr]
    assert (defs.waited, defs.late, reader.end_queries) == (1, 0, 2)
    defs.refresh_once()  # same batch: nothing more is asked
    assert reader.end_queries == 2


def test_a_reader_that_never_reaches_the_end_holds_one_batch_for_the_bound_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reader = FakeReader([("a", _task("a")), ("poison", {})])  # the 2nd never comes out (poison)
    reader.fetched = 1
    defs = _definitions(reader, monkeypatch, wait_s=0.2)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, "kapacity.runtime"):
        defs.catch_up(0.0)
    assert 0.2 <= time.monotonic() - t0 < 2.0
    assert (defs.waited, defs.late) == (1, 1) and "not read up to {0: 2}" in caplog.text
    t0 = time.monotonic()
    defs.fresh = False
    defs.refresh_once()  # that end was given up on: no second wait
    assert time.monotonic() - t0 < 0.15 and (defs.waited, defs.late) == (1, 1)


def test_an_unknown_end_lets_the_batch_run_with_what_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = FakeReader([("a", _task("a"))], end_error=True)
    reader.fetched = 1
    defs = _definitions(reader, monkeypatch)
    defs.refresh_once()
    assert sorted(defs.tasks.defs) == ["a"] and defs.counters() == {  # type: ignore[union-attr]
        "definitions_waited": 0, "definitions_late": 0, "definitions_end_unknown": 1}


def test_the_embedded_backend_has_no_end_to_wait_for(tmp_path: Path) -> None:
    queue = EmbeddedQueue(tmp_path / "q.db", cleaner_interval_s=0)
    try:
        reader = queue.broadcast(Kind.TASKS)
        assert log_end(reader, 1.0) is None
        reader.close()
    finally:
        queue.close()


def _embedded(tmp_path: Path) -> Queue:
    return EmbeddedQueue(tmp_path / "q.db", cleaner_interval_s=0)


def test_embedded_points_emitted_right_after_a_define_run_through_it(tmp_path: Path) -> None:
    """No race on the embedded backend: the stage reads definitions after polling its batch,
    and a poll of SQLite sees every committed row."""
    queue = _embedded(tmp_path)
    stage = EmbeddedEngineStage(queue)  # its readers exist (and are caught up) before the define
    try:
        queue.emit(Kind.TASKS, "cpu", _task("cpu"))
        p = Point("cpu", {"host": "a"}, {"v": 50.0}, 10**9)
        queue.emit(Kind.POINTS, series_key(p), point_value(p))
        assert stage.run_once() == 1
        assert stage.events == 1 and stage.status()["tasks"] == ["cpu"]
    finally:
        stage.close()
        queue.close()
