"""Definitions made through any instance's API, shown by every instance's API.

With ``[queue] type = "kafka"`` a task or topic handler defined through one instance is
stored by its local engine and broadcast on the compacted ``tasks`` / ``handlers`` kinds
(see :mod:`kapacity.server.queued`). :class:`DefinitionSync` reads both kinds from the
beginning on one thread and applies every record to the local engine's views
(``GET /tasks``, ``GET /alerts/topics/<t>/handlers``) through the **base**
:class:`~kapacity.server.engine.Engine` methods, which never broadcast: no echo loop.

Read-your-writes: an instance sees its own writes come back from the broadcast. While one
of them is still on its way back (:class:`EchoFilter`), records of that key are older in
the log than the local view and are skipped; the instance's own echo is equal to the view,
so applying it is a no-op. Every instance therefore ends on the log's last record per key,
and a client never sees its own write undone by an older record.

>>> f = EchoFilter()
>>> f.sent("tasks", "cpu", {"v": 1}); f.sent("tasks", "cpu", {"v": 2})
>>> f.received("tasks", "cpu", {"v": 1}), f.received("tasks", "cpu", {"v": 2})
(False, True)
>>> f.received("tasks", "cpu", {"v": 3})  # another instance wrote after us
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.queue import codec
from kapacity.queue.base import BroadcastReader, Message, Queue
from kapacity.queue.kinds import Kind
from kapacity.runtime.records import TaskDefinition
from kapacity.server.engine import Engine
from kapacity.server.taskdef import DISABLED, ENABLED

__all__ = [
    "CATCH_UP_IDLE_S", "POLL_S", "BroadcastSync", "DefinitionSync", "EchoFilter", "apply_handler", "apply_task",
]

log: Final = logging.getLogger("kapacity.server.defsync")

#: Each reader's poll while idle: with two readers a record is seen within ~2 polls plus the
#: broker's fetch wait (librdkafka ``fetch.wait.max.ms``, 500 ms): well inside the 1 s the
#: API promises, at a cost of a few wake-ups per second.
POLL_S: Final = 0.05
#: At start, definitions are read until a poll of this long finds nothing (as the engine
#: stage does), so the API shows the cluster's definitions as soon as it serves.
CATCH_UP_IDLE_S: Final = 0.5
#: Pause after a failed read or apply: a broker blip must not become a busy loop.
ERROR_PAUSE_S: Final = 0.5
#: An own write not read back within this is forgotten. It cannot normally happen (``emit``
#: returns once the record is durable); the bound keeps a key from being skipped forever
#: if it ever did (e.g. a value the queue stores in another form).
ECHO_EXPIRY_S: Final = 30.0


def _normal(value: Any) -> Any:
    """The value as it comes back from the queue (JSON round trip: tuples become lists)."""
    return None if value is None else codec.decode(codec.encode(value))


class EchoFilter:
    """This instance's broadcast writes not yet read back, per (kind, key) (not locked; the
    clock is injected)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, expiry_s: float = ECHO_EXPIRY_S) -> None:
        self._pending: dict[tuple[str, str], deque[tuple[Any, float]]] = {}
        self._clock, self._expiry_s = clock, expiry_s

    def sent(self, kind: str, key: str, value: Any) -> None:
        """Call before emitting ``value`` (``None``: a delete) for ``key``."""
        self._pending.setdefault((kind, key), deque()).append((_normal(value), self._clock() + self._expiry_s))

    def failed(self, kind: str, key: str) -> None:
        """The last :meth:`sent` of ``key`` was not emitted: it will not come back."""
        q = self._pending.get((kind, key))
        if q:
            q.pop()
            if not q:
                del self._pending[(kind, key)]

    def received(self, kind: str, key: str, value: Any) -> bool:
        """Whether a record read from the broadcast is to be applied to the local view."""
        q = self._pending.get((kind, key))
        now = self._clock()
        while q and q[0][1] < now:
            log.warning("definitions: own %s write of %r never read back; forgotten", kind, key)
            q.popleft()
        if not q:
            self._pending.pop((kind, key), None)
            return True
        if q[0][0] == value:
            q.popleft()
            if not q:
                del self._pending[(kind, key)]
                return True  # our latest write: equal to the view (a no-op) but harmless
        # An older record (ours or another instance's): our pending write comes after it.
        return False

    def pending(self) -> int:
        return sum(len(q) for q in self._pending.values())


# --- applying one record to the local views (base Engine methods: never broadcast) ----------


def _task_body(d: TaskDefinition) -> dict[str, Any]:
    return {
        "id": d.id, "script": d.script, "vars": dict(d.vars),
        "dbrps": [{"db": db, "rp": rp} for db, rp in d.dbrps],
        "status": ENABLED if d.enabled else DISABLED,
    }


def apply_task(engine: Engine, key: str, value: Any) -> str:
    """One ``tasks`` record; returns what was done: ``created``, ``updated``, ``deleted``,
    ``unchanged``. Raises what the engine raises (``BadRequest``: this instance cannot run
    the script, e.g. a handler cluster it does not configure)."""
    with engine.lock:
        current = engine._tasks.get(key)
        if value is None:
            if current is None:
                return "unchanged"
            Engine.delete_task(engine, key)
            return "deleted"
        d = TaskDefinition.from_value(value)
        body = _task_body(d)
        if current is None:
            Engine.create_task(engine, body)
            return "created"
        same = (
            current.script == d.script and current.vars == d.vars
            and tuple((x.db, x.rp) for x in current.dbrps) == d.dbrps
            and (current.status == ENABLED) == d.enabled
        )
        if same:
            return "unchanged"
        Engine.update_task(engine, key, body)
        return "updated"


def apply_handler(engine: Engine, key: str, value: Any) -> str:
    """One ``handlers`` record (key ``topic/handler id``); returns what was done."""
    topic, _, handler_id = key.rpartition("/")
    with engine.lock:
        exists = handler_id in engine._topic_handlers.get(topic, {})
        if value is None:
            if not exists:
                return "unchanged"
            Engine.delete_handler(engine, topic, handler_id)
            _drop_if_empty(engine, topic)
            return "deleted"
        spec = HandlerSpec.from_dict(value)
        if exists and engine.get_handler(spec.topic, spec.id).to_dict() == spec.to_dict():
            return "unchanged"
        Engine.put_handler(engine, spec, must_exist=False)
        return "updated" if exists else "created"


def _drop_if_empty(engine: Engine, topic: str) -> None:
    """A topic left with neither handlers nor events is not shown (as after a restart, which
    rebuilds the view from the broadcasts): a topic deleted through another instance goes,
    whichever of its handler and event tombstones arrives last (see :mod:`.topicsync`)."""
    t = engine.topics.topic(topic)
    if t is not None and t.event_count() == 0 and not engine._topic_handlers.get(topic):
        engine.topics.delete_topic(topic)


Apply = Callable[[Engine, str, Any], str]
_APPLY: Final[dict[Kind, Apply]] = {Kind.TASKS: apply_task, Kind.HANDLERS: apply_handler}


class BroadcastSync:
    """Reads broadcast ``kinds`` from the beginning on one thread and hands every batch to
    :meth:`_apply_batch` (subclasses: :class:`DefinitionSync`, and
    :class:`~kapacity.server.topicsync.TopicSync` for ``topic_state``).

    :meth:`start` applies what the broadcast holds (until a poll of
    :data:`CATCH_UP_IDLE_S` finds nothing, or ``catch_up_max_s`` has passed), then follows it.
    """

    #: Names the thread and prefixes the log lines.
    what = "broadcast"

    def __init__(self, queue: Queue, kinds: Sequence[Kind], *, catch_up_max_s: float | None = None) -> None:
        self.queue, self.kinds = queue, tuple(kinds)
        self.catch_up_max_s = catch_up_max_s
        self.counts: dict[str, int] = {"applied": 0, "skipped": 0, "unchanged": 0, "errors": 0}
        self._readers: list[tuple[Kind, BroadcastReader]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the readers, apply what the broadcast holds, then follow it on a thread."""
        for kind in self.kinds:
            self._readers.append((kind, self.queue.broadcast(kind)))
        deadline = None if self.catch_up_max_s is None else time.monotonic() + self.catch_up_max_s
        try:
            while self._read(CATCH_UP_IDLE_S) and (deadline is None or time.monotonic() < deadline):
                pass
        except Exception as exc:  # noqa: BLE001 - the thread retries; serving must not wait
            self.counts["errors"] += 1
            log.warning("%s: catching up failed, retrying in the background: %s", self.what, exc)
        self._thread = threading.Thread(target=self._run, name=f"kapacity-{self.what}-sync", daemon=True)
        self._thread.start()

    def _read(self, timeout: float) -> int:
        n = 0
        for kind, reader in self._readers:
            batch = reader.poll(1000, timeout)
            n += len(batch)
            if batch:
                self._apply_batch(kind, batch)
        return n

    def _apply_batch(self, kind: Kind, batch: Sequence[Message]) -> None:
        raise NotImplementedError

    def _count(self, kind: Kind, key: str, done: str) -> None:
        self.counts["unchanged" if done == "unchanged" else "applied"] += 1
        if done != "unchanged":
            log.info("%s: %s %s %s (broadcast)", self.what, kind.value, key, done)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read(POLL_S)
            except Exception as exc:  # noqa: BLE001 - the queue may be restarting
                self.counts["errors"] += 1
                log.warning("%s: reading the broadcast failed: %s", self.what, exc)
                self._stop.wait(ERROR_PAUSE_S)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the readers (before the queue closes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for _, reader in self._readers:
            try:
                reader.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the stop
                log.warning("%s: closing a reader: %s", self.what, exc)
        self._readers.clear()

    def status(self) -> dict[str, int]:
        return dict(self.counts)


class DefinitionSync(BroadcastSync):
    """Reads the ``tasks`` and ``handlers`` kinds and applies them to ``engine`` (one thread).

    ``echoes`` is shared with the writer (the API path), which calls :meth:`EchoFilter.sent`
    under ``engine.lock`` before emitting; records are applied under the same lock.
    """

    what = "definitions"

    def __init__(self, queue: Queue, engine: Engine, echoes: EchoFilter) -> None:
        super().__init__(queue, (Kind.TASKS, Kind.HANDLERS))
        self.engine, self.echoes = engine, echoes

    def _apply_batch(self, kind: Kind, batch: Sequence[Message]) -> None:
        for m in batch:
            self._apply(kind, m.key, m.value)

    def _apply(self, kind: Kind, key: str, value: Any) -> None:
        with self.engine.lock:
            if not self.echoes.received(kind.value, key, value):
                self.counts["skipped"] += 1
                return
            try:
                done = _APPLY[kind](self.engine, key, value)
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                self.counts["errors"] += 1
                log.error("definitions: %s record %r cannot be shown by this instance: %s", kind.value, key, exc)
                return
        self._count(kind, key, done)

    def status(self) -> dict[str, int]:
        return {**self.counts, "pending_echoes": self.echoes.pending()}
