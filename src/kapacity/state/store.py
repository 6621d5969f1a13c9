"""The embedded store: tasks, topic handlers, topic event states and alert node states.

One SQLite file in the data directory. Durability choices:

* WAL journal: readers never block the writer, and a crash mid-write leaves the
  previous committed state intact.
* ``synchronous=NORMAL``: in WAL mode a commit survives a crash of the process
  (the case that matters for "recovery after restart fires an OK event"); only an
  OS crash or power loss may drop the last commits — never corrupt the file.
* One connection guarded by a lock: SQLite allows one writer at a time anyway,
  and one connection keeps the store usable from any thread.

Opening never repairs or recreates: a corrupt file, a foreign database or one
written by a newer kapacity raises :class:`StoreError` naming the path and the
versions, so the operator decides.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.alert.topics import EventState
from kapacity.state.errors import StoreError

#: Version of the table layout below; bump it with a migration in ``_MIGRATIONS``.
SCHEMA_VERSION = 2

#: How long a statement waits for a lock held by another process on the same
#: file before failing (a second kapacity pointed at the same data dir).
BUSY_TIMEOUT_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    dbrps TEXT NOT NULL,
    script TEXT NOT NULL,
    vars TEXT NOT NULL,
    status TEXT NOT NULL,
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    last_enabled INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE topic_handlers (
    topic TEXT NOT NULL,
    id TEXT NOT NULL,
    spec TEXT NOT NULL,
    PRIMARY KEY (topic, id)
);
CREATE TABLE topic_event_states (
    topic TEXT NOT NULL,
    event_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (topic, event_id)
);
CREATE TABLE alert_states (
    task TEXT NOT NULL,
    node TEXT NOT NULL,
    grp TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (task, node, grp)
);
"""

#: In-place migrations: ``_MIGRATIONS[v]`` turns a version ``v`` store into ``v + 1``.
#: Each runs in the same transaction as the version bump, so a store is never half-migrated.
_MIGRATIONS: dict[int, str] = {
    1: (
        "ALTER TABLE tasks ADD COLUMN last_enabled INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE tasks ADD COLUMN error TEXT NOT NULL DEFAULT '';"
    ),
}

#: The ``alert_states`` row (node and group empty: no real node has an empty name) that says
#: a task's stored snapshot is current: written with the snapshot, deleted in the same
#: transaction as any later topic event state of the task. Without it, the snapshot may be
#: older than the topic states and the engine falls back to seeding from those.
_SNAPSHOT_MARK = ("", "")


@dataclass(slots=True)
class TaskRecord:
    """A stored task as the tasks API describes it; times in ns since the epoch."""

    id: str
    type: str = "stream"
    dbrps: list[dict[str, str]] = field(default_factory=list)
    script: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    status: str = "disabled"
    created: int = 0
    modified: int = 0
    last_enabled: int = 0
    #: Why the task could not start ("" when it runs or is disabled).
    error: str = ""


class Store:
    """kapacity's persistent state in one SQLite file (see module docs).

    >>> import tempfile, os
    >>> store = Store(os.path.join(tempfile.mkdtemp(), "kapacity.db"))
    >>> store.put_task(TaskRecord("cpu", script="stream|from()"))
    >>> store.get_task("cpu").status
    'disabled'
    >>> store.close()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._closed = False
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                check_same_thread=False,
                isolation_level=None,  # explicit transactions below
            )
        except (OSError, sqlite3.Error) as err:
            raise StoreError(self.path, f"cannot open: {err}") from None
        try:
            self._open()
        except sqlite3.DatabaseError as err:
            self._conn.close()
            raise StoreError(
                self.path, f"not a usable kapacity store (corrupt or not SQLite): {err}"
            ) from None
        except StoreError:
            self._conn.close()
            raise

    # --- opening -------------------------------------------------------------------

    def _open(self) -> None:
        conn = self._conn
        check = conn.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise StoreError(self.path, f"integrity check failed: {check[0] if check else '?'}")
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables:
            conn.execute("PRAGMA journal_mode=WAL")
            # executescript commits any open transaction first, so the script
            # carries its own: the schema and its version appear together or not at all.
            conn.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + f"INSERT INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
                + "COMMIT;"
            )
        elif "meta" not in tables:
            raise StoreError(
                self.path,
                "not a kapacity store (an SQLite database without kapacity's meta table: "
                f"tables {', '.join(sorted(tables))}); point the data dir elsewhere",
            )
        else:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            found = int(row[0]) if row is not None and str(row[0]).isdigit() else None
            if found is None:
                raise StoreError(self.path, "not a kapacity store (no schema version)")
            if found > SCHEMA_VERSION:
                raise StoreError(
                    self.path,
                    f"written by a newer kapacity: schema version {found}, this kapacity "
                    f"supports up to version {SCHEMA_VERSION}; upgrade kapacity "
                    "(the file was left untouched)",
                )
            conn.execute("PRAGMA journal_mode=WAL")
            if found < SCHEMA_VERSION:
                self._migrate(found)
        conn.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self, found: int) -> None:
        """Upgrade a store of an older kapacity in place, one version at a time."""
        script = "BEGIN IMMEDIATE;"
        for version in range(found, SCHEMA_VERSION):
            script += _MIGRATIONS[version]
        script += (
            f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';COMMIT;"
        )
        try:
            self._conn.executescript(script)
        except sqlite3.Error as err:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreError(
                self.path, f"cannot migrate schema version {found} to {SCHEMA_VERSION}: {err} "
                "(the file was left as it was)",
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on error; caller holds no lock."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            self._check_open()
            try:
                with self._transaction() as conn:
                    return conn.execute(sql, params).rowcount
            except sqlite3.Error as err:
                raise StoreError(self.path, f"write failed: {err}") from None

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._check_open()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as err:
                raise StoreError(self.path, f"read failed: {err}") from None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(self.path, "store is closed")

    def close(self) -> None:
        """Checkpoint the WAL and close; further calls raise :class:`StoreError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # closing still releases the file; the WAL is replayed on next open
            self._conn.close()

    def schema_version(self) -> int:
        return int(self._read("SELECT value FROM meta WHERE key = 'schema_version'")[0][0])

    # --- tasks -----------------------------------------------------------------------

    def put_task(self, task: TaskRecord) -> None:
        """Create or replace a task."""
        self._write(
            "INSERT OR REPLACE INTO tasks "
            "(id, type, dbrps, script, vars, status, created, modified, last_enabled, error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                task.id,
                task.type,
                json.dumps(task.dbrps),
                task.script,
                json.dumps(task.vars),
                task.status,
                task.created,
                task.modified,
                task.last_enabled,
                task.error,
            ),
        )

    @staticmethod
    def _task(row: tuple[Any, ...]) -> TaskRecord:
        return TaskRecord(
            id=row[0],
            type=row[1],
            dbrps=json.loads(row[2]),
            script=row[3],
            vars=json.loads(row[4]),
            status=row[5],
            created=row[6],
            modified=row[7],
            last_enabled=row[8],
            error=row[9],
        )

    _TASK_COLUMNS = "id, type, dbrps, script, vars, status, created, modified, last_enabled, error"

    def get_task(self, task_id: str) -> TaskRecord | None:
        rows = self._read(f"SELECT {self._TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return self._task(rows[0]) if rows else None

    def list_tasks(self) -> list[TaskRecord]:
        """All tasks, sorted by ID."""
        return [
            self._task(r) for r in self._read(f"SELECT {self._TASK_COLUMNS} FROM tasks ORDER BY id")
        ]

    def delete_task(self, task_id: str) -> bool:
        """Delete a task and its alert states; false when there was none."""
        with self._lock:
            self._check_open()
            try:
                with self._transaction() as conn:
                    conn.execute("DELETE FROM alert_states WHERE task = ?", (task_id,))
                    return conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,)).rowcount > 0
            except sqlite3.Error as err:
                raise StoreError(self.path, f"write failed: {err}") from None

    # --- topic handlers --------------------------------------------------------------

    def put_handler(self, spec: HandlerSpec) -> None:
        """Create or replace the handler ``spec.id`` of ``spec.topic``."""
        self._write(
            "INSERT OR REPLACE INTO topic_handlers (topic, id, spec) VALUES (?, ?, ?)",
            (spec.topic, spec.id, json.dumps(spec.to_dict())),
        )

    def get_handler(self, topic: str, handler_id: str) -> HandlerSpec | None:
        rows = self._read(
            "SELECT spec FROM topic_handlers WHERE topic = ? AND id = ?", (topic, handler_id)
        )
        return self._spec(rows[0][0]) if rows else None

    def _spec(self, text: str) -> HandlerSpec:
        # Stored specs were valid when written; re-validating their shape guards
        # against a damaged row. The kind is not re-checked: which kinds exist is
        # the caller's business (it may register more than the defaults).
        try:
            data = json.loads(text)
            kind = data.get("kind") if isinstance(data, dict) else None
            return HandlerSpec.from_dict(data, source=self.path, kinds=(str(kind),))
        except ValueError as err:
            raise StoreError(self.path, f"stored handler is invalid: {err}") from None

    def list_handlers(self, topic: str | None = None) -> list[HandlerSpec]:
        """Handlers of one topic (or of all), sorted by topic then ID."""
        if topic is None:
            rows = self._read("SELECT spec FROM topic_handlers ORDER BY topic, id")
        else:
            rows = self._read(
                "SELECT spec FROM topic_handlers WHERE topic = ? ORDER BY id", (topic,)
            )
        return [self._spec(r[0]) for r in rows]

    def delete_handler(self, topic: str, handler_id: str) -> bool:
        return (
            self._write(
                "DELETE FROM topic_handlers WHERE topic = ? AND id = ?", (topic, handler_id)
            )
            > 0
        )

    # --- topic event states ----------------------------------------------------------

    def put_event_state(self, topic: str, event_id: str, state: EventState) -> None:
        self._write(
            "INSERT OR REPLACE INTO topic_event_states (topic, event_id, state) VALUES (?, ?, ?)",
            (topic, event_id, json.dumps(state.to_dict())),
        )

    def put_event_states(
        self, states: list[tuple[str, str, EventState]], tasks: frozenset[str] | set[str] = frozenset()
    ) -> None:
        """Store many topic event states in one transaction (one commit, not one per event).

        ``tasks`` are the tasks whose alerts produced them: their alert snapshots stop being
        current (see :meth:`get_alert_snapshot`).
        """
        if not states and not tasks:
            return
        rows = [(topic, eid, json.dumps(st.to_dict())) for topic, eid, st in states]
        with self._lock:
            self._check_open()
            try:
                with self._transaction() as conn:
                    conn.executemany(
                        "INSERT OR REPLACE INTO topic_event_states (topic, event_id, state) "
                        "VALUES (?, ?, ?)", rows,
                    )
                    conn.executemany(
                        "DELETE FROM alert_states WHERE task = ? AND node = ? AND grp = ?",
                        [(t, *_SNAPSHOT_MARK) for t in tasks],
                    )
            except sqlite3.Error as err:
                raise StoreError(self.path, f"write failed: {err}") from None

    def list_event_states(self, topic: str) -> dict[str, EventState]:
        rows = self._read(
            "SELECT event_id, state FROM topic_event_states WHERE topic = ? ORDER BY event_id",
            (topic,),
        )
        try:
            return {eid: EventState.from_dict(json.loads(s)) for eid, s in rows}
        except ValueError as err:
            raise StoreError(self.path, f"stored event state of topic {topic!r}: {err}") from None

    def list_topics(self) -> list[str]:
        """Topics that have stored event states, sorted."""
        return [
            r[0]
            for r in self._read("SELECT DISTINCT topic FROM topic_event_states ORDER BY topic")
        ]

    def delete_topic(self, topic: str) -> bool:
        """Delete a topic's event states (its handlers stay, as in Kapacitor)."""
        return self._write("DELETE FROM topic_event_states WHERE topic = ?", (topic,)) > 0

    # --- alert node states -----------------------------------------------------------

    def put_alert_state(self, task: str, node: str, group: str, state: dict[str, Any]) -> None:
        """Store the state of one group of one alert node (a JSON-ready dict)."""
        self._write(
            "INSERT OR REPLACE INTO alert_states (task, node, grp, state) VALUES (?, ?, ?, ?)",
            (task, node, group, json.dumps(state)),
        )

    def get_alert_states(self, task: str) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(node, group): state}`` of a task."""
        rows = self._read(
            "SELECT node, grp, state FROM alert_states WHERE task = ? ORDER BY node, grp", (task,)
        )
        return {(node, grp): json.loads(s) for node, grp, s in rows}

    def delete_alert_states(self, task: str) -> int:
        """Forget a task's alert states (e.g. when its script changes); returns the count."""
        return self._write("DELETE FROM alert_states WHERE task = ?", (task,))

    def put_alert_snapshot(self, task: str, nodes: dict[str, dict[str, Any]], taken_ns: int) -> None:
        """Replace a task's alert states by a snapshot (node name → state) and mark it current."""
        rows = [(task, node, "", json.dumps(state)) for node, state in nodes.items()]
        rows.append((task, *_SNAPSHOT_MARK, json.dumps({"taken": taken_ns})))
        with self._lock:
            self._check_open()
            try:
                with self._transaction() as conn:
                    conn.execute("DELETE FROM alert_states WHERE task = ?", (task,))
                    conn.executemany(
                        "INSERT INTO alert_states (task, node, grp, state) VALUES (?, ?, ?, ?)", rows
                    )
            except sqlite3.Error as err:
                raise StoreError(self.path, f"write failed: {err}") from None

    def get_alert_snapshot(self, task: str) -> dict[str, dict[str, Any]] | None:
        """The task's snapshot (node name → state) if one is stored and no topic event state
        of the task was written after it; else None."""
        states = self.get_alert_states(task)
        if _SNAPSHOT_MARK not in states:
            return None
        return {node: s for (node, grp), s in states.items() if grp == "" and node != ""}
