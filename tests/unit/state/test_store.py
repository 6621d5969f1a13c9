"""The SQLite store on real files: survives restarts, refuses files it cannot trust."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.alert.topics import EventState, Topics
from kapacity.gotypes import Level
from kapacity.state import SCHEMA_VERSION, Store, StoreError, TaskRecord


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "kapacity.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    s = Store(db)
    yield s
    s.close()


TASK = TaskRecord(
    id="cpu_alert",
    type="stream",
    dbrps=[{"db": "telegraf", "rp": "autogen"}],
    script="stream|from().measurement('cpu')|alert()",
    vars={"crit": {"type": "float", "value": 80.0}},
    status="enabled",
    created=1_700_000_000_000_000_001,
    modified=1_700_000_000_000_000_002,
)


def test_creates_data_dir_wal_and_schema_version(db: Path, store: Store) -> None:
    assert db.exists()
    assert store.schema_version() == SCHEMA_VERSION
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_tasks_crud_and_restart(db: Path, store: Store) -> None:
    store.put_task(TASK)
    store.put_task(TaskRecord("a_first", script="batch|query('x')"))
    assert store.get_task("cpu_alert") == TASK
    assert store.get_task("missing") is None
    store.close()

    reopened = Store(db)
    try:
        assert [t.id for t in reopened.list_tasks()] == ["a_first", "cpu_alert"]
        assert reopened.get_task("cpu_alert") == TASK
        updated = dataclasses.replace(TASK, script="new", vars={}, status="disabled", modified=5)
        reopened.put_task(updated)
        assert reopened.get_task("cpu_alert") == updated
        reopened.put_alert_state("cpu_alert", "alert2", "host=a", {"level": "CRITICAL"})
        assert reopened.delete_task("cpu_alert") is True
        assert reopened.delete_task("cpu_alert") is False
        assert reopened.get_alert_states("cpu_alert") == {}
    finally:
        reopened.close()


def test_handlers_crud_and_restart(db: Path, store: Store) -> None:
    kafka = HandlerSpec("k", "cpu", "kafka", {"topic": "alerts", "cluster": "c"}, "level() > OK")
    log = HandlerSpec("l", "cpu", "log", {"path": "/tmp/x.log"})
    other = HandlerSpec("a", "mem", "log", {})
    for spec in (log, kafka, other):
        store.put_handler(spec)
    store.close()
    s = Store(db)
    try:
        assert s.get_handler("cpu", "k") == kafka
        assert s.get_handler("cpu", "zz") is None
        assert s.list_handlers("cpu") == [kafka, log]
        assert s.list_handlers() == [kafka, log, other]
        replaced = HandlerSpec("k", "cpu", "kafka", {"topic": "other"})
        s.put_handler(replaced)
        assert s.get_handler("cpu", "k") == replaced
        assert s.delete_handler("cpu", "k") is True
        assert s.delete_handler("cpu", "k") is False
        assert s.list_handlers("cpu") == [log]
    finally:
        s.close()


def test_event_states_restore_topics_after_restart(db: Path, store: Store) -> None:
    crit = EventState("cpu is CRITICAL", "{}", 1_700_000_000_123_456_789, 60_000_000_000, Level.CRITICAL)
    store.put_event_state("cpu", "cpu:host=a", crit)
    store.put_event_state("cpu", "cpu:host=b", EventState("ok", "", 1, 0, Level.OK))
    store.put_event_state("mem", "mem:host=a", EventState("w", "", 2, 0, Level.WARNING))
    store.close()

    s = Store(db)
    try:
        assert s.list_topics() == ["cpu", "mem"]
        topics = Topics()
        for topic in s.list_topics():
            topics.restore_topic(topic, s.list_event_states(topic))
        assert topics.event_state("cpu", "cpu:host=a") == crit
        # the recovery after the restart is seen as a change from CRITICAL
        assert topics.update("cpu", "cpu:host=a", EventState("ok", "", 3, 0, Level.OK)) is Level.CRITICAL
        assert s.delete_topic("cpu") is True
        assert s.delete_topic("cpu") is False
        assert s.list_event_states("cpu") == {}
        assert s.list_topics() == ["mem"]
    finally:
        s.close()


def test_alert_states_per_node_and_group(store: Store) -> None:
    store.put_alert_state("t", "alert2", "host=a", {"level": "WARNING", "history": [1, 2]})
    store.put_alert_state("t", "alert2", "host=b", {"level": "OK"})
    store.put_alert_state("t", "alert2", "host=a", {"level": "CRITICAL"})
    store.put_alert_state("other", "alert2", "", {"level": "INFO"})
    assert store.get_alert_states("t") == {
        ("alert2", "host=a"): {"level": "CRITICAL"},
        ("alert2", "host=b"): {"level": "OK"},
    }
    assert store.delete_alert_states("t") == 2
    assert store.get_alert_states("t") == {}
    assert store.get_alert_states("other") == {("alert2", ""): {"level": "INFO"}}


def test_garbage_file_is_refused_and_left_untouched(db: Path) -> None:
    db.parent.mkdir(parents=True)
    garbage = b"this is not sqlite at all \x00\xff" * 200
    db.write_bytes(garbage)
    with pytest.raises(StoreError) as info:
        Store(db)
    assert str(db) in str(info.value)
    assert "corrupt" in str(info.value)
    assert db.read_bytes() == garbage


def test_damaged_sqlite_file_is_refused(db: Path, store: Store) -> None:
    for i in range(200):
        store.put_task(TaskRecord(f"task{i}", script="x" * 500))
    store.close()
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 4 * page] = b"\xde\xad\xbe\xef" * (page // 2)
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=str(db)):
        Store(db)


def test_newer_schema_version_is_refused(db: Path, store: Store) -> None:
    store.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        Store(db)
    message = str(info.value)
    assert str(db) in message
    assert "schema version 99" in message
    assert f"supports up to version {SCHEMA_VERSION}" in message


def test_foreign_sqlite_database_is_refused(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a kapacity store.*users"):
        Store(db)


def test_closed_store_refuses_use(store: Store) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.list_tasks()


def test_concurrent_writers_from_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(50):
                store.put_event_state("t", f"e{n}-{i}", EventState("m", "", i, 0, Level.OK))
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_event_states("t")) == 200


def test_handlers_of_kinds_beyond_the_defaults_are_read_back(store: Store) -> None:
    spec = HandlerSpec.from_dict(
        {"id": "s", "topic": "t", "kind": "slack", "options": {}}, kinds=("slack",)
    )
    store.put_handler(spec)
    assert store.list_handlers("t") == [spec]


def test_damaged_handler_row_is_a_store_error(db: Path, store: Store) -> None:
    store.put_handler(HandlerSpec("h", "t", "log", {}))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE topic_handlers SET spec = '{\"id\": \"bad id\"}'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="stored handler is invalid"):
        store.list_handlers()


_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tasks (id TEXT PRIMARY KEY, type TEXT NOT NULL, dbrps TEXT NOT NULL,
    script TEXT NOT NULL, vars TEXT NOT NULL, status TEXT NOT NULL,
    created INTEGER NOT NULL, modified INTEGER NOT NULL);
CREATE TABLE topic_handlers (topic TEXT NOT NULL, id TEXT NOT NULL, spec TEXT NOT NULL,
    PRIMARY KEY (topic, id));
CREATE TABLE topic_event_states (topic TEXT NOT NULL, event_id TEXT NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (topic, event_id));
CREATE TABLE alert_states (task TEXT NOT NULL, node TEXT NOT NULL, grp TEXT NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (task, node, grp));
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO tasks VALUES ('old', 'stream', '[]', 'stream|from()', '{}', 'enabled', 5, 6);
"""


def test_version_1_store_is_migrated_in_place_keeping_its_tasks(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript(_V1_SCHEMA)
    conn.close()
    with_store = Store(db)
    try:
        assert with_store.schema_version() == SCHEMA_VERSION == 2
        old = with_store.get_task("old")
        assert old is not None
        assert (old.script, old.created, old.modified, old.last_enabled, old.error) == (
            "stream|from()", 5, 6, 0, "")
        with_store.put_task(dataclasses.replace(old, last_enabled=7, error="boom"))
    finally:
        with_store.close()
    reopened = Store(db)
    try:
        again = reopened.get_task("old")
        assert again is not None and (again.last_enabled, again.error) == (7, "boom")
    finally:
        reopened.close()


def test_event_states_in_one_batch_and_snapshot_currency(store: Store) -> None:
    crit = EventState("m", "", 10, 0, Level.CRITICAL)
    store.put_alert_snapshot("t", {"alert2": {"groups": {}}}, taken_ns=1)
    assert store.get_alert_snapshot("t") == {"alert2": {"groups": {}}}
    # Event states of another task leave t's snapshot current...
    store.put_event_states([("main:u:alert2", "u:a", crit)], {"u"})
    assert store.get_alert_snapshot("t") is not None
    # ...those of t make it stale: the topic state is newer than the snapshot.
    store.put_event_states([("cpu", "a", crit), ("cpu", "b", crit)], {"t"})
    assert store.get_alert_snapshot("t") is None
    assert set(store.list_event_states("cpu")) == {"a", "b"}
    store.put_alert_snapshot("t", {"alert2": {"groups": {"x": 1}}}, taken_ns=2)
    assert store.get_alert_snapshot("t") == {"alert2": {"groups": {"x": 1}}}
    store.delete_task("t")
    assert store.get_alert_snapshot("t") is None


def test_failed_migration_leaves_the_file_at_its_version(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    # A v1 store whose tasks table already has the column: the ALTER fails midway.
    conn.executescript(_V1_SCHEMA + "ALTER TABLE tasks ADD COLUMN error TEXT;")
    conn.close()
    with pytest.raises(StoreError, match="cannot migrate schema version 1 to 2"):
        Store(db)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("1",)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(tasks)")]
        assert "last_enabled" not in columns
    finally:
        conn.close()
