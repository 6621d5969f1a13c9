"""The embedded backend: one SQLite file in the data dir, one table per kind.

Tables (``q_<topic name>``): ``seq INTEGER PRIMARY KEY AUTOINCREMENT`` (the offset, never
reused), ``key``, ``value`` (NULL = tombstone), ``created`` (ms). Bookkeeping:

* ``_groups(topic, grp, next)``: the first offset no member of the group has claimed yet.
* ``_claims(id, topic, grp, start, end, owner, deadline)``: a batch handed to one member.
  Claiming (``BEGIN IMMEDIATE``: one writer at a time, across processes) first takes over an
  expired claim (its member died or rewound it), else claims new rows and moves ``next``.
  Committing deletes the claim (or moves its start). An uncommitted claim becomes visible
  again after ``lease`` — that is the at-least-once redelivery.
* Broadcast readers keep their last offset in memory and read from the beginning.

The cleaner (a background thread every ``cleaner-interval``, or :meth:`EmbeddedQueue.clean`)
applies each kind's topic properties: ``retention.ms`` for ``cleanup.policy=delete``;
``compact`` keeps the newest row per key and drops tombstones older than
``delete.retention.ms`` (default one day). Stored large payloads no row references any more
are then removed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from kapacity.queue._records import dead_letter_value, decode_value, encode_value
from kapacity.queue.base import DEFAULT_BATCH, BroadcastReader, GroupConsumer, Message, Queue, QueueStats
from kapacity.queue.errors import (
    MessageTooLargeError,
    PoisonMessageError,
    QueueClosedError,
    QueueUnavailableError,
)
from kapacity.queue.kinds import SPECS, Kind
from kapacity.queue.naming import Naming
from kapacity.queue.protection import SWEEP_GRACE_MS, Protector

__all__ = ["EmbeddedQueue"]

#: Kafka's default for how long a compacted topic keeps a tombstone readable.
DEFAULT_DELETE_RETENTION_MS: Final = 86_400_000
#: ``emit_async`` buffer bound; when full, the emitting thread writes the batch (block policy).
ASYNC_BUFFER: Final = 10_000
#: How long a claim waits for SQLite's write lock before reporting the database unavailable.
BUSY_TIMEOUT_S: Final = 30.0
_POLL_MIN_S: Final = 0.001
_POLL_MAX_S: Final = 0.02

Row = tuple[int, str, bytes | None, int]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class EmbeddedQueue(Queue):
    """The SQLite backend. ``topic_properties(kind)`` gives retention/cleanup per kind."""

    def __init__(
        self,
        path: str | Path,
        *,
        naming: Naming | None = None,
        topic_properties: Callable[[Kind], Mapping[str, str]] | None = None,
        protector: Protector | None = None,
        lease_ms: int = 30_000,
        cleaner_interval_s: float = 60.0,
        now_ms: Callable[[], int] = _now_ms,
    ) -> None:
        super().__init__()
        self.naming = naming or Naming()
        self.stats = QueueStats()
        self.protector = protector
        self._props = topic_properties or (lambda k: SPECS[k].properties)
        self._lease_ms = lease_ms
        self._now = now_ms
        self._lock = threading.RLock()
        self._closed = False
        self._pending: dict[Kind, list[tuple[str, bytes | None, int]]] = {}
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash; an OS crash may lose the
            # last transactions (the same promise as acks=all with a page-cache broker).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._setup()
        except (sqlite3.Error, OSError) as exc:
            raise QueueUnavailableError(f"cannot open the embedded queue {self.path}: {exc}") from exc
        self._stop = threading.Event()
        self._cleaner: threading.Thread | None = None
        if cleaner_interval_s > 0:
            self._cleaner = threading.Thread(
                target=self._clean_loop, args=(cleaner_interval_s,), name="queue-cleaner", daemon=True
            )
            self._cleaner.start()

    # --- schema -----------------------------------------------------------------------

    def _setup(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for kind in Kind:
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {self.naming.table(kind)} ("
                    "seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value BLOB, "
                    "created INTEGER NOT NULL)"
                )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS _groups (topic TEXT NOT NULL, grp TEXT NOT NULL, "
                "next INTEGER NOT NULL, PRIMARY KEY (topic, grp))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS _claims (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "topic TEXT NOT NULL, grp TEXT NOT NULL, start INTEGER NOT NULL, "
                "end INTEGER NOT NULL, owner TEXT NOT NULL, deadline INTEGER NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS _claims_by_group ON _claims (topic, grp, deadline)")
            self._db.execute("COMMIT")

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosedError("the embedded queue is closed")

    # --- emitting ---------------------------------------------------------------------

    def _record(self, kind: Kind, key: str, value: Any) -> tuple[str, bytes | None, int]:
        try:
            raw = encode_value(self.protector, kind.value, self.naming.topic(kind), key, value)
        except MessageTooLargeError:
            self.stats.add("refused")
            raise
        return key, raw, self._now()

    def _insert(self, kind: Kind, rows: Sequence[tuple[str, bytes | None, int]]) -> None:
        if not rows:
            return
        with self._lock:
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    f"INSERT INTO {self.naming.table(kind)} (key, value, created) VALUES (?, ?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self.stats.add("emitted", len(rows))

    def emit(self, kind: Kind, key: str, value: Any) -> None:
        self._insert(kind, [self._record(kind, key, value)])

    def emit_many(self, kind: Kind, items: Iterable[tuple[str, Any]]) -> None:
        """All or nothing: every item is encoded first, then written in one transaction."""
        self._insert(kind, [self._record(kind, k, v) for k, v in items])

    def emit_async(self, kind: Kind, key: str, value: Any) -> None:
        record = self._record(kind, key, value)
        with self._lock:
            buf = self._pending.setdefault(kind, [])
            buf.append(record)
            full = len(buf) >= ASYNC_BUFFER
        if full:
            self.flush()

    def flush(self, timeout: float = 30.0) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            for kind, rows in pending.items():
                self._insert(kind, rows)

    def delete(self, kind: Kind, key: str) -> None:
        self._insert(kind, [(key, None, self._now())])

    # --- reading ----------------------------------------------------------------------

    def _decode(self, kind: Kind, rows: list[Row]) -> list[Message]:
        out: list[Message] = []
        topic = self.naming.topic(kind)
        for seq, key, raw, created in rows:
            try:
                value = decode_value(self.protector, raw)
            except PoisonMessageError as exc:
                self.stats.add("poison")
                self.emit(Kind.DEAD_LETTER, key, dead_letter_value(topic, 0, seq, key, raw, exc))
                self.stats.add("dead_lettered")
                continue
            out.append(Message(kind, key, value, seq, 0, created))
        self.stats.add("received", len(out))
        return out

    def _read_after(self, kind: Kind, after: int, limit: int) -> list[Row]:
        with self._lock:
            self._check_open()
            cur = self._db.execute(
                f"SELECT seq, key, value, created FROM {self.naming.table(kind)} "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return cur.fetchall()

    def _claim(self, kind: Kind, group: str, owner: str, limit: int) -> tuple[int, list[Row]] | None:
        """Claim a batch for ``owner``: ``(claim id, rows)`` or ``None`` when nothing is due."""
        topic = self.naming.topic(kind)
        table = self.naming.table(kind)
        now = self._now()
        with self._lock:
            self._check_open()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                expired = db.execute(
                    "SELECT id, start, end FROM _claims WHERE topic = ? AND grp = ? AND deadline <= ? "
                    "ORDER BY start LIMIT 1",
                    (topic, group, now),
                ).fetchone()
                if expired is not None:
                    cid, start, end = expired
                    db.execute(
                        "UPDATE _claims SET owner = ?, deadline = ? WHERE id = ?",
                        (owner, now + self._lease_ms, cid),
                    )
                    rows = db.execute(
                        f"SELECT seq, key, value, created FROM {table} WHERE seq BETWEEN ? AND ? ORDER BY seq",
                        (start, end),
                    ).fetchall()
                    db.execute("COMMIT")
                    return cid, rows
                found = db.execute(
                    "SELECT next FROM _groups WHERE topic = ? AND grp = ?", (topic, group)
                ).fetchone()
                nxt = found[0] if found else 0
                rows = db.execute(
                    f"SELECT seq, key, value, created FROM {table} WHERE seq >= ? ORDER BY seq LIMIT ?",
                    (nxt, limit),
                ).fetchall()
                if not rows:
                    db.execute("COMMIT")
                    return None
                first, last = rows[0][0], rows[-1][0]
                db.execute(
                    "INSERT INTO _groups (topic, grp, next) VALUES (?, ?, ?) "
                    "ON CONFLICT (topic, grp) DO UPDATE SET next = excluded.next",
                    (topic, group, last + 1),
                )
                cur = db.execute(
                    "INSERT INTO _claims (topic, grp, start, end, owner, deadline) VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, group, first, last, owner, now + self._lease_ms),
                )
                db.execute("COMMIT")
                assert cur.lastrowid is not None
                return cur.lastrowid, rows
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _settle(self, claims: Iterable[tuple[int, int, int]], upto: int, release: bool) -> None:
        """Commit claims up to offset ``upto``; with ``release``, hand the rest out again."""
        with self._lock:
            if self._closed:
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for cid, _start, end in claims:
                    if upto >= end:
                        db.execute("DELETE FROM _claims WHERE id = ?", (cid,))
                    elif release:
                        db.execute(
                            "UPDATE _claims SET start = max(start, ?), deadline = 0 WHERE id = ?",
                            (upto + 1, cid),
                        )
                    else:
                        db.execute("UPDATE _claims SET start = max(start, ?) WHERE id = ?", (upto + 1, cid))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def consumer(self, kind: Kind, group: str) -> GroupConsumer:
        return _EmbeddedConsumer(self, kind, group)

    def broadcast(self, kind: Kind) -> BroadcastReader:
        return _EmbeddedBroadcast(self, kind)

    # --- cleaning ---------------------------------------------------------------------

    def clean(self) -> dict[str, int]:
        """Apply retention/compaction to every kind; returns rows removed per topic."""
        removed: dict[str, int] = {}
        now = self._now()
        for kind in Kind:
            props = self._props(kind)
            table = self.naming.table(kind)
            policy = props.get("cleanup.policy", "delete")
            retention = int(props.get("retention.ms", "-1"))
            count = 0
            with self._lock:
                if self._closed:
                    return removed
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    if "delete" in policy and retention >= 0:
                        count += db.execute(f"DELETE FROM {table} WHERE created < ?", (now - retention,)).rowcount
                    if "compact" in policy:
                        count += db.execute(
                            f"DELETE FROM {table} WHERE seq NOT IN (SELECT max(seq) FROM {table} GROUP BY key)"
                        ).rowcount
                        keep = int(props.get("delete.retention.ms", str(DEFAULT_DELETE_RETENTION_MS)))
                        count += db.execute(
                            f"DELETE FROM {table} WHERE value IS NULL AND created < ?", (now - keep,)
                        ).rowcount
                    refs = [r for (r,) in db.execute(f"SELECT value FROM {table} WHERE value >= x'00' AND value < x'01'")]
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            if self.protector is not None:
                names = {n for r in refs if (n := Protector.reference_name(r)) is not None}
                self.protector.sweep(self.naming.topic(kind), names, now - SWEEP_GRACE_MS)
            removed[self.naming.topic(kind)] = count
        return removed

    def _clean_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.clean()
            except sqlite3.Error as exc:  # a busy database: try again next round
                from kapacity.queue._records import log

                log.warning("embedded queue cleaner: %s", exc)

    def _close_backend(self) -> None:
        self._stop.set()
        if self._cleaner is not None:
            self._cleaner.join()
        try:
            self.flush()
        finally:
            with self._lock:
                if not self._closed:
                    self._closed = True
                    self._db.close()


class _EmbeddedConsumer(GroupConsumer):
    def __init__(self, queue: EmbeddedQueue, kind: Kind, group: str) -> None:
        self._q, self._kind, self._group = queue, kind, group
        self._owner = uuid.uuid4().hex
        self._claims: dict[int, tuple[int, int, int]] = {}
        self._closed = False

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        if self._closed:
            raise QueueClosedError("the consumer is closed")
        deadline = time.monotonic() + timeout
        pause = _POLL_MIN_S
        while True:
            got = self._q._claim(self._kind, self._group, self._owner, max_messages)
            if got is not None:
                cid, rows = got
                if rows:
                    self._claims[cid] = (cid, rows[0][0], rows[-1][0])
                    messages = self._q._decode(self._kind, rows)
                    if messages:
                        return messages
                    self._q._settle([self._claims.pop(cid)], rows[-1][0], False)  # all poison
                    continue
                self._q._settle([(cid, 0, 0)], 0, False)  # an expired claim whose rows were cleaned
                continue
            if time.monotonic() >= deadline:
                return []
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)

    def commit(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        upto = max(m.offset for m in messages)
        done = [c for c in self._claims.values() if c[1] <= upto]
        self._q._settle(done, upto, False)
        for cid, _s, end in done:
            if upto >= end:
                del self._claims[cid]
            else:
                self._claims[cid] = (cid, upto + 1, end)

    def rewind(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        first = min(m.offset for m in messages)
        hit = [c for c in self._claims.values() if c[2] >= first]
        self._q._settle(hit, first - 1, True)
        for cid, _s, _e in hit:
            del self._claims[cid]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        claims = list(self._claims.values())
        if claims:
            self._q._settle(claims, min(c[1] for c in claims) - 1, True)
        self._claims.clear()


class _EmbeddedBroadcast(BroadcastReader):
    def __init__(self, queue: EmbeddedQueue, kind: Kind) -> None:
        self._q, self._kind = queue, kind
        self._last = 0
        self._closed = False

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        if self._closed:
            raise QueueClosedError("the broadcast reader is closed")
        deadline = time.monotonic() + timeout
        pause = _POLL_MIN_S
        while True:
            rows = self._q._read_after(self._kind, self._last, max_messages)
            if rows:
                self._last = rows[-1][0]
                messages = self._q._decode(self._kind, rows)
                if messages:
                    return messages
                continue
            if time.monotonic() >= deadline:
                return []
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)

    def close(self) -> None:
        self._closed = True
