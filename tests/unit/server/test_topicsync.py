"""Topic sync: broadcast ``topic_state`` records make every instance's topic views show every
event; a topic delete writes tombstones on the partitions the records were read from."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.alert.topics import EventState, Topics, TopicStateError
from kapacity.gotypes import Level
from kapacity.queue.base import BroadcastReader, Message
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.kinds import Kind
from kapacity.server.defsync import apply_handler
from kapacity.server.engine import Engine
from kapacity.server.errors import Unavailable
from kapacity.server.memrepo import MemoryRepository
from kapacity.server.queued import QueuedEngine
from kapacity.server.topicsync import TopicSync, apply_topic_state, split_topic_key, tombstone_writer
from tests.support.waiting import wait_for
from tests.unit.server.fakes import FakeCompiler, FakeFactory, fake_match


def _state(level: str, message: str = "m", time: int = 5) -> dict[str, Any]:
    return {"message": message, "details": "", "time": time, "duration": 0, "level": level}


def _levels(topics: Topics, topic: str) -> dict[str, str]:
    return {eid: s.level.name for eid, s in topics.event_states(topic).items()}


# --- the pure apply function -------------------------------------------------------------------


def test_records_create_update_and_delete_events_and_the_topic_level_follows() -> None:
    t = Topics()
    assert apply_topic_state(t, "cpu/cpu:host=a", _state("WARNING")) == "created"
    assert apply_topic_state(t, "cpu/cpu:host=b", _state("CRITICAL")) == "created"
    assert apply_topic_state(t, "cpu/cpu:host=b", _state("CRITICAL")) == "unchanged"
    assert [(s.id, s.level) for s in t.topic_states()] == [("cpu", Level.CRITICAL)]
    assert apply_topic_state(t, "cpu/cpu:host=b", _state("OK", time=9)) == "updated"
    assert t.event_state("cpu", "cpu:host=b") == EventState("m", "", 9, 0, Level.OK)
    assert t.topic_states()[0].level == Level.WARNING  # the max of its events
    assert apply_topic_state(t, "cpu/cpu:host=a", None) == "deleted"
    assert _levels(t, "cpu") == {"cpu:host=b": "OK"} and t.topic_states()[0].level == Level.OK
    assert apply_topic_state(t, "cpu/cpu:host=a", None) == "unchanged"
    assert t.topic_states()[0].collected == 3  # created, created, updated: not the no-ops


def test_the_last_event_deleted_removes_the_topic_unless_it_has_handlers() -> None:
    t = Topics()
    apply_topic_state(t, "cpu/a", _state("CRITICAL"))
    apply_topic_state(t, "mem/a", _state("CRITICAL"))
    assert apply_topic_state(t, "cpu/a", None, keep_topic=lambda topic: topic == "cpu") == "deleted"
    assert apply_topic_state(t, "mem/a", None, keep_topic=lambda topic: topic == "cpu") == "deleted"
    assert [(s.id, s.level) for s in t.topic_states()] == [("cpu", Level.OK)]
    assert t.event_states("cpu") == {}


def test_alert_ids_may_hold_slashes_topics_may_not() -> None:
    assert split_topic_key("cpu/disk:/var/lib") == ("cpu", "disk:/var/lib")
    t = Topics()
    apply_topic_state(t, "cpu/disk:/var/lib", _state("WARNING"))
    assert _levels(t, "cpu") == {"disk:/var/lib": "WARNING"}


@pytest.mark.parametrize(("key", "value", "error"), [
    ("cpu", _state("OK"), "expected 'topic/alert id'"),
    ("/a", _state("OK"), "expected 'topic/alert id'"),
    ("cpu/", _state("OK"), "expected 'topic/alert id'"),
    ("cpu/a", ["OK"], "value must be an object, got list"),
    ("cpu/a", {**_state("OK"), "level": "SEVERE"}, "SEVERE"),
    ("cpu/a", {k: v for k, v in _state("OK").items() if k != "time"}, "missing field 'time'"),
    ("cpu/a", {**_state("OK"), "time": "5"}, "field 'time' must be int, got str"),
])
def test_malformed_records_name_what_is_wrong_and_change_nothing(key: str, value: Any, error: str) -> None:
    t = Topics()
    with pytest.raises(TopicStateError, match=error):
        apply_topic_state(t, key, value)
    assert t.topic_states() == []


# --- the sync over a fake queue ----------------------------------------------------------------


class _Log(BroadcastReader):
    """An append-only log read from the beginning; ``poll`` waits for records up to ``timeout``."""

    def __init__(self, records: list[Message], changed: threading.Condition) -> None:
        self.records, self.changed, self.position, self.closed = records, changed, 0, False

    def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        with self.changed:
            self.changed.wait_for(lambda: self.position < len(self.records), timeout)
            out = self.records[self.position:self.position + max_messages]
            self.position += len(out)
            return out

    def close(self) -> None:
        self.closed = True


class _Queue:
    """``topic_state`` as a partitioned log; ``tombstones`` records what a delete wrote."""

    def __init__(self) -> None:
        self.records: list[Message] = []
        self.changed = threading.Condition()
        self.readers: list[_Log] = []
        self.tombstones: list[tuple[str, int | None]] = []
        self.fail = False

    def broadcast(self, kind: Kind) -> _Log:
        assert kind is Kind.TOPIC_STATE
        self.readers.append(_Log(self.records, self.changed))
        return self.readers[-1]

    def add(self, key: str, value: Any, partition: int) -> None:
        with self.changed:
            self.records.append(Message(Kind.TOPIC_STATE, key, value, len(self.records), partition))
            self.changed.notify_all()

    def write(self, items: Sequence[tuple[str, int | None]]) -> None:
        if self.fail:
            raise QueueUnavailableError("no ack within 10s")
        self.tombstones.extend(items)
        for key, partition in items:
            self.add(key, None, partition or 0)

    def delete(self, kind: Kind, key: str) -> None:
        self.tombstones.append((key, None))


def _engine() -> Engine:
    return Engine(compiler=FakeCompiler(), handlers=FakeFactory(), repo=MemoryRepository(),
                  match_compiler=fake_match, clock=lambda: 1_000)


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = _engine()
    e.start()
    yield e
    e.close()


def _sync(q: _Queue, engine: Engine) -> TopicSync:
    return TopicSync(q, engine, write_tombstones=q.write)  # type: ignore[arg-type]  # duck-typed queue


def test_the_sync_shows_what_the_broadcast_holds_at_start_then_follows_it(engine: Engine) -> None:
    q = _Queue()
    q.add("cpu/cpu:host=a", _state("CRITICAL"), partition=1)
    q.add("cpu/cpu:host=b", _state("WARNING"), partition=0)
    q.add("cpu/bad", {"level": "CRITICAL"}, partition=0)
    sync = _sync(q, engine)
    sync.start()
    try:
        assert _levels(engine.topics, "cpu") == {"cpu:host=a": "CRITICAL", "cpu:host=b": "WARNING"}  # before start() returned
        assert sync.status()["errors"] == 1  # the malformed record: logged, counted, skipped
        q.add("cpu/cpu:host=a", _state("OK", time=9), partition=1)
        wait_for(lambda: engine.topics.topic_states()[0].level == Level.WARNING, timeout=5,
                 what="the recovery to apply")
        q.add("cpu/cpu:host=b", None, partition=0)
        wait_for(lambda: _levels(engine.topics, "cpu") == {"cpu:host=a": "OK"}, timeout=5, what="the tombstone to apply")
    finally:
        sync.stop()
    assert all(r.closed for r in q.readers)
    assert sync.status()["events"] == 1


def test_a_topic_delete_writes_tombstones_where_the_records_are_and_is_not_undone(engine: Engine) -> None:
    q = _Queue()
    q.add("cpu/a", _state("CRITICAL"), partition=3)
    q.add("cpu/b", _state("WARNING"), partition=1)
    q.add("mem/a", _state("WARNING"), partition=3)
    sync = _sync(q, engine)
    sync.start()
    try:
        with engine.lock:
            q.add("cpu/a", _state("OK", time=7), partition=3)  # on its way: older than the delete
            assert sync.delete_topic_events("cpu") == 2
            Engine.delete_topic(engine, "cpu")
        assert q.tombstones == [("cpu/a", 3), ("cpu/b", 1)]
        wait_for(lambda: sync.status()["pending_echoes"] == 0, timeout=5, what="the tombstones to come back")
        assert engine.topics.topic("cpu") is None  # the older record did not bring cpu/a back
        assert sync.status()["skipped"] == 1
        q.add("cpu/a", _state("CRITICAL", time=11), partition=3)  # fired again after the delete
        wait_for(lambda: _levels(engine.topics, "cpu") == {"a": "CRITICAL"}, timeout=5, what="the new event")
        assert _levels(engine.topics, "mem") == {"a": "WARNING"}
    finally:
        sync.stop()


def test_a_delete_whose_tombstones_fail_leaves_no_echo_pending(engine: Engine) -> None:
    q = _Queue()
    q.add("cpu/a", _state("CRITICAL"), partition=0)
    sync = _sync(q, engine)
    sync.start()
    try:
        q.fail = True
        with pytest.raises(QueueUnavailableError), engine.lock:
            sync.delete_topic_events("cpu")
        assert sync.status()["pending_echoes"] == 0
        q.add("cpu/a", _state("OK"), partition=0)  # not skipped as older than a failed delete
        wait_for(lambda: _levels(engine.topics, "cpu") == {"a": "OK"}, timeout=5, what="the next record")
    finally:
        sync.stop()


def test_a_backend_without_partitions_deletes_through_the_queue() -> None:
    q = _Queue()
    tombstone_writer(q)([("cpu/a", 2), ("cpu/b", None)])  # type: ignore[arg-type]  # duck-typed queue
    assert q.tombstones == [("cpu/a", None), ("cpu/b", None)]


# --- topic handlers and events together ---------------------------------------------------------


def test_a_topic_deleted_elsewhere_goes_whichever_tombstone_comes_last(engine: Engine) -> None:
    spec = {"id": "out", "topic": "cpu", "kind": "log", "options": {}}
    for last in ("handler", "event"):
        apply_handler(engine, "cpu/out", spec)
        apply_topic_state(engine.topics, "cpu/a", _state("CRITICAL"))
        if last == "handler":
            apply_topic_state(engine.topics, "cpu/a", None, lambda t: bool(engine._topic_handlers.get(t)))
            assert engine.topics.topic("cpu") is not None  # it still has its handler
            apply_handler(engine, "cpu/out", None)
        else:
            apply_handler(engine, "cpu/out", None)
            assert engine.topics.topic("cpu") is not None  # it still has its event
            apply_topic_state(engine.topics, "cpu/a", None, lambda t: bool(engine._topic_handlers.get(t)))
        assert engine.topics.topic("cpu") is None, last


class _Runtime:
    queue: object | None = None

    def start(self) -> None: ...

    def stop(self, timeout: float = 30.0) -> bool:
        return True

    def put_handler(self, spec: HandlerSpec) -> HandlerSpec:
        return spec

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self.deleted = (topic, handler_id)


def test_the_topic_delete_route_deletes_cluster_wide_or_answers_503() -> None:
    runtime = _Runtime()
    engine = QueuedEngine(runtime, compiler=FakeCompiler(), handlers=FakeFactory(),  # type: ignore[arg-type]  # duck-typed Runtime
                          repo=MemoryRepository(), match_compiler=fake_match)
    engine.start()
    q = _Queue()
    try:
        engine.topic_sync = sync = _sync(q, engine)
        engine.put_handler(HandlerSpec.from_dict({"id": "out", "topic": "cpu", "kind": "log", "options": {}}),
                           must_exist=False)
        with engine.lock:
            sync._apply_batch(Kind.TOPIC_STATE, [Message(Kind.TOPIC_STATE, "cpu/a", _state("CRITICAL"), 0, 4)])
        q.fail = True
        with pytest.raises(Unavailable, match="topic 'cpu' not deleted: no ack"):
            engine.delete_topic("cpu")
        assert _levels(engine.topics, "cpu") == {"a": "CRITICAL"} and engine.list_handlers("cpu") != []
        q.fail = False
        engine.delete_topic("cpu")
        assert q.tombstones == [("cpu/a", 4)] and runtime.deleted == ("cpu", "out")
        assert engine.topics.topic("cpu") is None and engine.list_handlers("cpu") == []
    finally:
        engine.topic_sync = None
        engine.close()
