"""The ingest buffer: points accepted by ``/write`` wait here, on disk, for the ``points`` topic.

Why a local durable spill (SQLite, one file per instance under the data dir) rather than
memory alone: a ``204`` tells the writer its points are safe, and "nothing already accepted
is lost" is a project rule. While the queue cluster is down, accepted points can only be
kept locally; in memory they would die with the process. In the file they survive a crash
or a restart and are sent at the next start (same ``instance``).

Policy (every buffer is bounded):

* ``append`` stores a request's points in one SQLite transaction, then returns: the caller
  answers ``204``. Points are numbered in arrival order (``rowid``).
* At most ``capacity`` points wait. A request that does not fit waits up to ``wait_s`` for
  room, then is refused whole with :class:`~kapacity.runtime.errors.Backpressure`
  (``503`` + ``Retry-After``) and counted in ``refused``. Nothing is dropped.
* :class:`IngestFlusher` (one thread) sends the oldest points to the queue in order, and
  deletes them only once the queue acknowledged them. While the queue is unreachable it
  retries with exponential back-off (:data:`RETRY_MIN_S` .. :data:`RETRY_MAX_S`): never a
  busy loop, and never a reordering (a failed batch is sent again before anything newer).

Durability: WAL with ``synchronous=NORMAL`` — a committed append survives a crash of the
process (kill -9), not a power loss of the host; the same promise a single-node Kafka
with ``acks=all`` makes (it does not fsync each write either).

Duplicates: a batch whose acknowledgement did not arrive within the queue's emit timeout
may still be delivered by the Kafka client later. The flusher first waits until the client
holds nothing more (``flush``) and then sends the batch again, so a broker outage longer
than that timeout can write one batch (at most :data:`FLUSH_BATCH` points) twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from kapacity.queue import codec
from kapacity.runtime.errors import Backpressure, RuntimeStateError

__all__ = ["FLUSH_BATCH", "IngestBuffer", "IngestFlusher", "buffer_path"]

log: Final = logging.getLogger("kapacity.runtime.ingest")

#: Points per emit to the queue: one wait for acks amortised over many points; small enough
#: that a batch sent twice after a long outage (see module doc) is cheap.
FLUSH_BATCH: Final = 2000
#: Back-off between attempts while the queue is unreachable: the first retry is quick (a
#: blip), later ones every few seconds (a broker restart takes seconds to tens of seconds).
RETRY_MIN_S: Final = 0.2
RETRY_MAX_S: Final = 5.0
#: How long one wait for the Kafka client to drain lasts before it is retried.
DRAIN_WAIT_S: Final = 5.0
#: An emit still waiting for its acks after this long means the queue is not answering: the
#: status says so at once (the emit itself waits up to the queue's emit timeout, 60 s).
SLOW_EMIT_S: Final = 2.0

_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value BLOB NOT NULL)"


def buffer_path(data_dir: Path, instance: str) -> Path:
    """``<data dir>/ingest/<instance>.sqlite``: one file per instance (instances may share a dir)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", instance) or "_"
    return data_dir / "ingest" / f"{safe}.sqlite"


def _lock_exclusively(lock_path: Path) -> int:
    """Hold an exclusive ``flock`` on ``lock_path`` for the buffer's lifetime: two processes
    sending one buffer file would each send its points (duplicates, broken order)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeStateError(
            f"ingest buffer {lock_path.with_suffix('')} is in use by another process: each instance "
            "sharing a data dir needs its own --instance name"
        ) from None
    return fd


class IngestBuffer:
    """A bounded FIFO of ``(key, JSON value)`` on disk; thread-safe.

    >>> buf = IngestBuffer(Path("/tmp/x.sqlite"), capacity=1000)      # doctest: +SKIP
    >>> buf.append([("cpu,host=a", {"m": "cpu"})], wait_s=1.0)         # doctest: +SKIP
    >>> buf.peek(10)                                                   # doctest: +SKIP
    [(1, 'cpu,host=a', {'m': 'cpu'})]
    """

    def __init__(self, path: Path, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ingest buffer capacity must be positive, got {capacity}")
        self.path, self.capacity = path, capacity
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lockfd = _lock_exclusively(path.with_name(path.name + ".lock"))
        # isolation_level=None: transactions are explicit; one connection, guarded by _lock.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._room = threading.Condition()
        self._waiting = threading.Condition()  # notified when points arrive
        self._count: int = self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        self._closed = False
        #: Points accepted, refused (Backpressure) and removed after the queue acked them.
        self.accepted = 0
        self.refused = 0
        self.flushed = 0
        #: Points found in the file at open: accepted by a previous process, not yet sent.
        self.recovered = self._count

    def __len__(self) -> int:
        return self._count

    def append(self, items: Sequence[tuple[str, Any]], wait_s: float) -> None:
        """Store ``items`` (all or nothing); :class:`Backpressure` if no room within ``wait_s``."""
        n = len(items)
        if n == 0:
            return
        rows = [(k, codec.encode(v)) for k, v in items]
        with self._room:
            # A request larger than the whole buffer is let in once the buffer is empty.
            if not self._room.wait_for(lambda: self._closed or self._count + n <= max(self.capacity, n), wait_s):
                self.refused += n
                raise Backpressure(self._count, self.capacity, wait_s)
            self._check_open()
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany("INSERT INTO points (key, value) VALUES (?, ?)", rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._count += n
            self.accepted += n
        with self._waiting:
            self._waiting.notify_all()

    def peek(self, limit: int) -> list[tuple[int, str, Any]]:
        """The oldest ``limit`` points as ``(seq, key, value)``, in arrival order."""
        with self._lock:
            self._check_open()
            rows = self._db.execute("SELECT id, key, value FROM points ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(int(i), str(k), codec.decode(bytes(v))) for i, k, v in rows]

    def remove_through(self, seq: int) -> int:
        """Delete every point up to ``seq`` (acknowledged by the queue); returns how many."""
        with self._room:
            with self._lock:
                self._check_open()
                n = self._db.execute("DELETE FROM points WHERE id <= ?", (seq,)).rowcount
                self._count -= n
            self.flushed += n
            self._room.notify_all()
        return int(n)

    def wait_for_points(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for at least one point; True if there is one."""
        with self._waiting:
            return self._waiting.wait_for(lambda: self._count > 0 or self._closed, timeout) and self._count > 0

    def wake(self) -> None:
        with self._waiting:
            self._waiting.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            from kapacity.runtime.errors import RuntimeStateError

            raise RuntimeStateError(f"the ingest buffer {self.path} is closed")

    def close(self) -> None:
        with self._room:
            with self._lock:
                if not self._closed:
                    self._closed = True
                    self._db.close()
                    os.close(self._lockfd)  # releases the flock
            self._room.notify_all()
        self.wake()

    def counters(self) -> dict[str, int]:
        return {"buffered": self._count, "capacity": self.capacity, "accepted": self.accepted,
                "refused": self.refused, "flushed": self.flushed, "recovered": self.recovered}


Emit = Callable[[list[tuple[str, Any]]], None]
"""Send points to the ``points`` kind; returns once acknowledged, raises otherwise."""
Drain = Callable[[float], None]
"""Wait until the queue client holds no unacknowledged record; raises if not within the time."""


class IngestFlusher:
    """One thread moving points from an :class:`IngestBuffer` to the queue, oldest first."""

    def __init__(self, buffer: IngestBuffer, emit: Emit, drain: Drain | None = None,
                 *, batch: int = FLUSH_BATCH) -> None:
        self.buffer, self._emit, self._drain, self.batch = buffer, emit, drain, batch
        self._stop = threading.Event()
        self._stopping_deadline = float("inf")
        #: Failed emit attempts, and whether the latest one failed (the queue is unreachable).
        self.failures = 0
        self.waiting_since: float | None = None
        self.last_error = ""
        self._emit_started: float | None = None  # monotonic time of the emit in progress
        self._thread = threading.Thread(target=self._run, name="kapacity-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run_once(self) -> int:
        """Send one batch; returns how many points were acknowledged (raises on failure)."""
        rows = self.buffer.peek(self.batch)
        if not rows:
            return 0
        self._emit_started = time.monotonic()
        try:
            self._emit([(k, v) for _, k, v in rows])
        finally:
            self._emit_started = None
        return self.buffer.remove_through(rows[-1][0])

    def _run(self) -> None:
        pause = RETRY_MIN_S
        unsure = False  # an emit failed: the client may still hold (and later send) its records
        while True:
            if self._stop.is_set() and (len(self.buffer) == 0 or time.monotonic() >= self._stopping_deadline):
                return
            if not self.buffer.wait_for_points(0.2):
                continue
            try:
                if unsure and self._drain is not None:
                    self._drain(DRAIN_WAIT_S)  # never resend what the client may still deliver
                unsure = False
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - the queue is unreachable: wait, then retry
                unsure = True
                self.failures += 1
                self.last_error = str(exc)
                if self.waiting_since is None:
                    self.waiting_since = time.time()
                    log.warning("ingest: the queue is unreachable, %d points wait on disk: %s",
                                len(self.buffer), exc)
                self._stop.wait(pause) if not self._stop.is_set() else time.sleep(min(pause, 0.5))
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            if self.waiting_since is not None:
                log.warning("ingest: the queue is reachable again after %.1fs", time.time() - self.waiting_since)
                self.waiting_since = None
            pause = RETRY_MIN_S

    def stop(self, timeout: float) -> bool:
        """Send what is buffered within ``timeout``, then stop; True if the buffer is empty.

        What is left stays in the file and is sent at the next start.
        """
        self._stopping_deadline = time.monotonic() + timeout
        self._stop.set()
        self.buffer.wake()
        if self._thread.is_alive():
            self._thread.join(timeout + 1.0)
        return len(self.buffer) == 0

    def waiting_for_queue(self) -> bool:
        """True while the queue does not acknowledge: a failed emit, or one waiting too long."""
        started = self._emit_started
        return self.waiting_since is not None or (started is not None and time.monotonic() - started > SLOW_EMIT_S)

    def status(self) -> dict[str, Any]:
        return {**self.buffer.counters(), "failures": self.failures,
                "waiting_for_queue": self.waiting_for_queue(),
                "waiting_since": self.waiting_since, "last_error": self.last_error}
