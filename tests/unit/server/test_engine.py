"""The engine over fakes: routing by dbrp, topics and previousLevel, handlers, restart, drain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kapacity.gotypes import Level
from kapacity.models import Point
from kapacity.alert.handlerspec import HandlerSpec
from kapacity.server.engine import Engine
from kapacity.server.errors import BadRequest, NotFound, Unavailable
from kapacity.server.memrepo import MemoryRepository
from tests.unit.server.fakes import FakeCompiler, FakeFactory, fake_match

DBRPS = [{"db": "telegraf", "rp": "autogen"}]


def make(repo: MemoryRepository | None = None, factory: FakeFactory | None = None) -> Engine:
    e = Engine(compiler=FakeCompiler(), handlers=factory or FakeFactory(), repo=repo or MemoryRepository(),
               match_compiler=fake_match, clock=lambda: 1_000)
    e.start()
    return e


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = make()
    yield e
    e.close()


def cpu(value: float, host: str = "a", db: str = "telegraf", rp: str = "autogen", t: int = 1) -> Point:
    return Point("cpu", {"host": host}, {"usage": value}, t, db, rp)


def test_points_reach_only_tasks_with_matching_dbrp(engine: Engine) -> None:
    engine.create_task({"id": "t1", "script": "crit usage > 90 handler log", "dbrps": DBRPS, "status": "enabled"})
    factory = engine.factory
    assert isinstance(factory, FakeFactory)
    engine.write([cpu(95, db="other"), cpu(95, rp="")])  # rp "" means autogen
    assert engine.wait_idle()
    assert [(k, a.level) for k, a in factory.received] == [("log", Level.CRITICAL)]
    assert engine.counters.points_processed == 2


def test_disabled_task_gets_nothing_and_enabling_starts_it(engine: Engine) -> None:
    view = engine.create_task({"id": "t1", "script": "crit usage > 90 handler log", "dbrps": DBRPS})
    assert (view["status"], view["executing"]) == ("disabled", False)
    engine.write([cpu(95)])
    engine.wait_idle()
    assert isinstance(engine.factory, FakeFactory) and engine.factory.received == []
    view = engine.update_task("t1", {"status": "enabled"})
    assert view["executing"] is True and view["last-enabled"] != "0001-01-01T00:00:00Z"
    engine.write([cpu(95)])
    engine.wait_idle()
    assert len(engine.factory.received) == 1


def test_previous_level_comes_from_the_topic(engine: Engine) -> None:
    engine.create_task({"id": "t1", "script": "crit usage > 90 topic cpu handler log", "dbrps": DBRPS,
                        "status": "enabled"})
    engine.write([cpu(95, t=1), cpu(5, t=2)])
    engine.wait_idle()
    assert isinstance(engine.factory, FakeFactory)
    alerts = [a for _, a in engine.factory.received]
    assert [(a.level, a.previous_level) for a in alerts] == [(Level.CRITICAL, Level.OK), (Level.OK, Level.CRITICAL)]
    [topic] = engine.topics.topic_states()
    assert (topic.id, topic.collected, topic.level) == ("cpu", 2, Level.OK)


def test_topic_handlers_receive_published_events_filtered_by_match(engine: Engine) -> None:
    engine.put_handler(HandlerSpec("all", "cpu", "log", {}), must_exist=False)
    engine.put_handler(HandlerSpec("crit", "cpu", "kafka", {}, "level() >= CRITICAL"), must_exist=False)
    engine.create_task({"id": "t1", "script": "crit usage > 90 topic cpu", "dbrps": DBRPS, "status": "enabled"})
    engine.write([cpu(95, t=1), cpu(5, t=2)])
    engine.wait_idle()
    assert isinstance(engine.factory, FakeFactory)
    got = sorted((k, a.level.name) for k, a in engine.factory.received)
    assert got == [("kafka", "CRITICAL"), ("log", "CRITICAL"), ("log", "OK")]


def test_failing_handler_is_counted_and_others_still_run(engine: Engine) -> None:
    engine.put_handler(HandlerSpec("bad", "cpu", "log", {"fail": True}), must_exist=False)
    engine.put_handler(HandlerSpec("good", "cpu", "kafka", {}), must_exist=False)
    engine.create_task({"id": "t1", "script": "crit usage > 90 topic cpu", "dbrps": DBRPS, "status": "enabled"})
    engine.write([cpu(95)])
    engine.wait_idle()
    assert engine.counters.handler_errors == 1
    assert isinstance(engine.factory, FakeFactory)
    assert [k for k, _ in engine.factory.received] == ["kafka"]


def test_bad_inputs_are_rejected_with_the_reason(engine: Engine) -> None:
    with pytest.raises(BadRequest, match="line 1 char 1"):
        engine.create_task({"id": "t1", "script": "nonsense", "dbrps": DBRPS})
    with pytest.raises(BadRequest, match="option 'bad'"):
        engine.put_handler(HandlerSpec("h", "cpu", "log", {"bad": 1}), must_exist=False)
    with pytest.raises(BadRequest, match="kind: unknown handler kind 'smtp'; valid: log, kafka"):
        engine.put_handler(HandlerSpec("h", "cpu", "smtp", {}), must_exist=False)
    with pytest.raises(BadRequest, match="match: line 1 char 1"):
        engine.put_handler(HandlerSpec("h", "cpu", "log", {}, "changed("), must_exist=False)
    with pytest.raises(NotFound):
        engine.get_task("missing")
    with pytest.raises(NotFound):
        engine.update_task("missing", {"status": "enabled"})
    engine.create_task({"id": "t1", "script": "crit usage > 1", "dbrps": DBRPS})
    with pytest.raises(BadRequest, match="already exists"):
        engine.create_task({"id": "t1", "script": "crit usage > 1", "dbrps": DBRPS})


def test_implicit_dbrp_from_script(engine: Engine) -> None:
    view = engine.create_task({"id": "t1", "script": 'dbrp "db"."rp"\ncrit usage > 1'})
    assert view["dbrps"] == [{"db": "db", "rp": "rp"}]
    with pytest.raises(BadRequest, match="both implicitly and explicitly"):
        engine.create_task({"id": "t2", "script": 'dbrp "db"."rp"\ncrit usage > 1', "dbrps": DBRPS})


def test_restart_restores_tasks_handlers_and_levels() -> None:
    repo = MemoryRepository()
    first = make(repo)
    first.put_handler(HandlerSpec("h", "cpu", "log", {}), must_exist=False)
    first.create_task({"id": "t1", "script": "crit usage > 90 topic cpu", "dbrps": DBRPS, "status": "enabled"})
    first.write([cpu(95)])
    first.close()
    assert repo.closed
    repo.closed = False
    factory = FakeFactory()
    second = make(repo, factory)
    try:
        assert second.get_task("t1")["executing"] is True
        second.write([cpu(5, t=2)])  # recovery after the restart
        second.wait_idle()
        [(kind, alert)] = factory.received
        assert (kind, alert.level, alert.previous_level) == ("log", Level.OK, Level.CRITICAL)
    finally:
        second.close()


def test_close_drains_accepted_points_then_refuses_writes() -> None:
    factory = FakeFactory()
    e = make(factory=factory)
    e.create_task({"id": "t1", "script": "crit usage > 90 handler log", "dbrps": DBRPS, "status": "enabled"})
    e.write([cpu(95, host=f"h{i}") for i in range(500)])
    e.close()
    assert len(factory.received) == 500
    assert factory.closed and all(h.closed for h in factory.created)
    with pytest.raises(Unavailable):
        e.write([cpu(1)])


def test_delete_topic_removes_handlers_and_state(engine: Engine) -> None:
    engine.put_handler(HandlerSpec("h", "cpu", "log", {}), must_exist=False)
    engine.delete_topic("cpu")
    assert engine.list_handlers("cpu") == []
    assert engine.topics.topic("cpu") is None
    repo = engine.repo
    assert isinstance(repo, MemoryRepository) and repo.handlers == {}


def test_task_without_dbrp_gets_every_database(engine: Engine) -> None:
    # As the seed document shows: `kapacitor define cpu_alert -tick cpu_alert.tick`.
    view = engine.create_task({"id": "t1", "script": "crit usage > 90 handler log", "status": "enabled"})
    assert view["dbrps"] == []
    engine.write([cpu(95, db="a", host="1"), cpu(95, db="b", rp="x", host="2")])
    engine.wait_idle()
    assert isinstance(engine.factory, FakeFactory) and len(engine.factory.received) == 2


class CountingRepository(MemoryRepository):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def save_events(self, events, tasks):  # type: ignore[no-untyped-def]
        self.batches.append(len(events))
        super().save_events(events, tasks)


def test_topic_states_of_one_write_are_stored_in_one_batch() -> None:
    repo = CountingRepository()
    e = make(repo)
    try:
        e.create_task({"id": "t", "script": "crit usage > 90", "dbrps": DBRPS, "status": "enabled"})
        e.write([cpu(95, host=h) for h in "abcde"])
        assert e.wait_idle()
        assert repo.batches == [5]
        assert set(repo.events["main:t:alert2"]) == {f"t:{h}" for h in "abcde"}
    finally:
        e.close()


def test_clean_stop_snapshots_and_restart_restores_the_snapshot() -> None:
    repo = MemoryRepository()
    e = make(repo)
    e.create_task({"id": "t", "script": "crit usage > 90", "dbrps": DBRPS, "status": "enabled"})
    e.write([cpu(95)])
    assert e.wait_idle()
    e.close()
    assert repo.load_alert_snapshot("t") == {"alert2": {"levels": {"t:a": 3}}}
    repo.closed = False
    e2 = make(repo)
    try:
        task = e2._running["t"]
        assert task.restored_from_snapshot  # type: ignore[attr-defined]
        e2.write([cpu(10)])
        assert e2.wait_idle()
        assert repo.events["main:t:alert2"]["t:a"]["level"] == "OK"  # the recovery was emitted
    finally:
        e2.close()


def test_after_a_crash_the_topic_state_seeds_the_task() -> None:
    repo = MemoryRepository()
    e = make(repo)
    e.create_task({"id": "t", "script": "crit usage > 90", "dbrps": DBRPS, "status": "enabled"})
    e.write([cpu(10)])
    e.update_task("t", {"status": "disabled"})  # snapshot taken here (all OK)...
    e.update_task("t", {"status": "enabled"})
    e.write([cpu(95)])  # ...then an event newer than the snapshot, and no clean stop
    assert e.wait_idle()
    assert repo.load_alert_snapshot("t") is None
    e2 = make(repo)  # the first engine "crashed": never closed
    try:
        task = e2._running["t"]
        assert not task.restored_from_snapshot  # type: ignore[attr-defined]
        assert task.levels == {"t:a": Level.CRITICAL}  # type: ignore[attr-defined]
    finally:
        e2.close()
        e._accepting = False


def test_write_queue_is_bounded_in_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from kapacity.server import engine as engine_module

    monkeypatch.setattr(engine_module, "WRITE_QUEUE_TIMEOUT_S", 0.05)
    e = Engine(compiler=FakeCompiler(), handlers=FakeFactory(), repo=MemoryRepository(),
               match_compiler=fake_match, clock=lambda: 1_000, queue_points=3)
    e.start()
    try:
        e.create_task({"id": "t", "script": "crit usage > 90", "dbrps": DBRPS, "status": "enabled"})
        with e.lock:  # the worker cannot process: the queue fills up
            e.write([cpu(1), cpu(2)])
            e.write([cpu(3)])
            with pytest.raises(Unavailable, match="3 points waiting, limit 3"):
                e.write([cpu(4)])
            assert e.counters.writes_rejected == 1
        assert e.wait_idle()
        e.write([cpu(v) for v in range(10)])  # larger than the bound, taken when empty
        assert e.wait_idle()
        assert (e.counters.points_received, e.counters.points_processed) == (13, 13)
    finally:
        e.close()
