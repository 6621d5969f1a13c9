"""Definition sync: own writes are never undone by older records; broadcast records reach the
local engine's views without being broadcast again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from kapacity.queue.base import BroadcastReader, Message
from kapacity.queue.kinds import Kind
from kapacity.runtime.records import TaskDefinition
from kapacity.server.defsync import DefinitionSync, EchoFilter, apply_handler, apply_task
from kapacity.server.engine import Engine
from kapacity.server.memrepo import MemoryRepository
from tests.support.waiting import wait_for
from tests.unit.server.fakes import FakeCompiler, FakeFactory, fake_match

SCRIPT = "crit usage > 90 topic cpu"
HANDLER = {"id": "out", "topic": "cpu", "kind": "log", "options": {"path": "/tmp/x.log"}}


def _task(script: str = SCRIPT, enabled: bool = True) -> dict[str, Any]:
    return TaskDefinition("cpu", script, {}, (("telegraf", "autogen"),), enabled).value()


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine(compiler=FakeCompiler(), handlers=FakeFactory(), repo=MemoryRepository(),
               match_compiler=fake_match, clock=lambda: 1_000)
    e.start()
    yield e
    e.close()


# --- EchoFilter -------------------------------------------------------------------------------


def test_own_older_writes_are_skipped_and_the_latest_applied() -> None:
    f = EchoFilter()
    f.sent("tasks", "cpu", {"v": 1})
    f.sent("tasks", "cpu", None)
    assert f.received("tasks", "cpu", {"v": 1}) is False  # a delete of ours follows it
    assert f.received("tasks", "cpu", None) is True
    assert f.pending() == 0
    assert f.received("tasks", "cpu", {"v": 9}) is True  # nothing of ours pending: foreign wins


def test_a_foreign_record_before_our_echo_is_older_than_our_write() -> None:
    f = EchoFilter()
    f.sent("handlers", "cpu/out", {"id": "out", "dbrps": ("a", "b")})  # compared as JSON
    assert f.received("handlers", "cpu/out", {"id": "other"}) is False
    assert f.received("handlers", "cpu/out", {"id": "out", "dbrps": ["a", "b"]}) is True
    assert f.received("tasks", "cpu/out", {"id": "other"}) is True  # kinds are apart


def test_a_failed_emit_and_a_lost_echo_do_not_block_the_key_forever() -> None:
    now = [0.0]
    f = EchoFilter(clock=lambda: now[0], expiry_s=30)
    f.sent("tasks", "cpu", {"v": 1})
    f.failed("tasks", "cpu")
    assert f.pending() == 0 and f.received("tasks", "cpu", {"v": 2}) is True
    f.sent("tasks", "cpu", {"v": 3})
    assert f.received("tasks", "cpu", {"v": 2}) is False
    now[0] = 31.0
    assert f.received("tasks", "cpu", {"v": 4}) is True and f.pending() == 0


# --- applying records -------------------------------------------------------------------------


def test_task_records_create_update_and_delete_the_local_view(engine: Engine) -> None:
    assert apply_task(engine, "cpu", _task()) == "created"
    view = engine.get_task("cpu")
    assert (view["status"], view["executing"], view["dbrps"]) == ("enabled", True, [{"db": "telegraf", "rp": "autogen"}])
    assert apply_task(engine, "cpu", _task()) == "unchanged"
    assert apply_task(engine, "cpu", _task(enabled=False)) == "updated"
    assert engine.get_task("cpu")["status"] == "disabled"
    assert apply_task(engine, "cpu", _task("crit usage > 50 topic cpu", enabled=False)) == "updated"
    assert engine.get_task("cpu")["script"] == "crit usage > 50 topic cpu"
    assert apply_task(engine, "cpu", None) == "deleted"
    assert engine.list_tasks() == []
    assert apply_task(engine, "cpu", None) == "unchanged"


def test_handler_records_create_replace_and_delete(engine: Engine) -> None:
    assert apply_handler(engine, "cpu/out", HANDLER) == "created"
    assert apply_handler(engine, "cpu/out", HANDLER) == "unchanged"
    assert apply_handler(engine, "cpu/out", {**HANDLER, "options": {"path": "/tmp/y.log"}}) == "updated"
    assert engine.get_handler("cpu", "out").options == {"path": "/tmp/y.log"}
    assert apply_handler(engine, "cpu/out", None) == "deleted"
    assert engine.list_handlers("cpu") == []


# --- the sync thread over a fake queue ---------------------------------------------------------


class _Reader(BroadcastReader):
    """Reads an append-only log from the beginning, keeping its position (as Kafka's does)."""

    def __init__(self, log: list[Message]) -> None:
        self.log, self.position = log, 0
        self.closed = False

    def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        out = self.log[self.position:self.position + max_messages]
        self.position += len(out)
        if not out:
            time.sleep(timeout)  # as a real poll waits for records
        return out

    def close(self) -> None:
        self.closed = True


class _Queue:
    def __init__(self) -> None:
        self.logs: dict[Kind, list[Message]] = {Kind.TASKS: [], Kind.HANDLERS: []}
        self.readers: list[_Reader] = []

    def broadcast(self, kind: Kind) -> _Reader:
        self.readers.append(_Reader(self.logs[kind]))
        return self.readers[-1]

    def add(self, kind: Kind, key: str, value: Any) -> None:
        self.logs[kind].append(Message(kind, key, value, len(self.logs[kind])))


def test_the_sync_applies_what_the_broadcast_holds_at_start_then_follows_it(engine: Engine) -> None:
    q = _Queue()
    q.add(Kind.TASKS, "cpu", _task())
    q.add(Kind.HANDLERS, "cpu/out", HANDLER)
    q.add(Kind.HANDLERS, "cpu/bad", {"id": "bad", "topic": "cpu", "kind": "log", "options": {"bad": 1}})
    sync = DefinitionSync(q, engine, EchoFilter())  # type: ignore[arg-type]  # duck-typed queue
    sync.start()
    try:
        assert engine.get_task("cpu")["executing"] is True  # applied before start() returned
        assert [s.id for s in engine.list_handlers("cpu")] == ["out"]
        assert sync.status()["errors"] == 1  # the invalid handler: logged, counted, skipped
        q.add(Kind.TASKS, "cpu", None)
        wait_for(lambda: engine.list_tasks() == [], timeout=5, what="the task delete to apply")
    finally:
        sync.stop()
    assert all(r.closed for r in q.readers)
