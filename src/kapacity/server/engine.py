"""The engine: tasks, routing of written points, alert topics and handlers.

Processing model (simple and correct first):

* ``write`` hands a batch of parsed points to **one worker thread** through a queue
  bounded in points (``WRITE_QUEUE_POINTS``: a parsed point weighs ~600 bytes, so the
  bound is on what costs memory, not on requests of any size). A full queue blocks the
  writer for up to ``WRITE_QUEUE_TIMEOUT_S`` and then answers 503 (counted in
  ``writes_rejected``), so memory stays bounded and nothing is dropped silently.
* The worker runs each batch through the enabled tasks whose dbrps match (decided once
  per batch: a /write names one db and rp), and dispatches the alert events they produce:
  topic state first (``previousLevel``), then the chained handlers, then — for ``.topic()``
  events — the topic's handlers whose ``match`` holds. Handler failures are counted and
  logged, never raised into the pipeline.
* Topic event states reach the store once per batch, in one transaction (a commit costs
  about a millisecond; one per alert would cap the alert rate), before the next batch is
  taken — and on ``close`` after the drain, so a clean stop loses none.
* Alert node state (flapping history, ``stateChangesOnly`` timers, when a level began) is
  snapshotted to the store on a clean stop, when a task is disabled, and every
  ``SNAPSHOT_INTERVAL_S`` for tasks that emitted since their last snapshot. At start a task
  restores its snapshot if no event state of it was stored after the snapshot; otherwise
  (a crash) its alert nodes are seeded with the last level of each event of their topics.
* Every state change (tasks, handlers, topic state, the pipelines) happens under one lock.
* ``close`` stops accepting writes, drains the queue (every accepted point is processed),
  flushes and closes the handlers (producers deliver what they hold), then closes the store.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kapacity.alert.event import AlertData
from kapacity.alert.handlerspec import HandlerSpec
from kapacity.alert.topics import EventState, Topics
from kapacity.gotypes import Level
from kapacity.models import Point
from kapacity.server.contracts import (
    Emitted,
    Handler,
    HandlerFactory,
    Repository,
    RunningTask,
    TaskCompiler,
)
from kapacity.server.errors import BadRequest, NotFound, Unavailable
from kapacity.server.taskdef import (
    DBRP,
    DEFAULT_RP,
    ENABLED,
    TaskRecord,
    new_record,
    task_json,
    updated_record,
)

log = logging.getLogger("kapacity.engine")

#: Points waiting for the worker (~60 MB; about half a second of work at full speed).
#: A writer faster than the pipeline is slowed down (then refused with 503), memory is
#: not. One batch larger than this is still taken when the queue is empty.
WRITE_QUEUE_POINTS = 100_000
#: How long a /write waits for room in the queue before answering 503.
WRITE_QUEUE_TIMEOUT_S = 10.0
#: Clock ticks given to the tasks (deadman, time-driven windows).
TICK_INTERVAL_S = 1.0
#: How long close() waits for handlers (Kafka producers) to deliver what they hold.
FLUSH_TIMEOUT_S = 30.0
#: How often the alert state of tasks that emitted events is snapshotted. A snapshot of a
#: task with many groups takes time under the engine lock, so not on every change; a crash
#: between snapshots falls back to the per-event topic state (always current).
SNAPSHOT_INTERVAL_S = 30.0

#: A compiled ``match`` expression: called with the event, says whether the handler gets it.
MatchFn = Callable[["MatchContext"], bool]
MatchCompiler = Callable[[str], MatchFn]


@dataclass(frozen=True, slots=True)
class MatchContext:
    """What a topic handler's ``match`` expression sees of one event."""

    alert: AlertData
    previous_level: Level
    task: str
    name: str
    tags: Mapping[str, str]

    @property
    def changed(self) -> bool:
        return self.alert.level != self.previous_level


@dataclass(slots=True)
class _TopicHandler:
    spec: HandlerSpec
    handler: Handler
    match: MatchFn | None


@dataclass(slots=True)
class Counters:
    points_received: int = 0
    points_processed: int = 0
    writes_rejected: int = 0
    alerts: int = 0
    handler_errors: int = 0
    task_errors: int = 0


_STOP = object()
_NO_HANDLERS: dict[str, _TopicHandler] = {}


def _by_dbrp(points: list[Point]) -> list[tuple[DBRP, list[Point]]]:
    """Points split by (db, rp), order kept within each; one group for a /write body."""
    first = points[0]
    db, rp = first.database, first.retention_policy
    if all(p.database == db and p.retention_policy == rp for p in points):
        return [(DBRP(db, rp), points)]
    groups: dict[DBRP, list[Point]] = {}
    for p in points:
        groups.setdefault(DBRP(p.database, p.retention_policy), []).append(p)
    return list(groups.items())


class Engine:
    def __init__(
        self,
        *,
        compiler: TaskCompiler,
        handlers: HandlerFactory,
        repo: Repository,
        match_compiler: MatchCompiler | None = None,
        clock: Callable[[], int] = time.time_ns,
        hostname: str = "localhost",
        queue_points: int = WRITE_QUEUE_POINTS,
    ) -> None:
        self.compiler = compiler
        self.factory = handlers
        self.repo = repo
        self.match_compiler = match_compiler
        self.clock = clock
        self.hostname = hostname
        self.counters = Counters()
        self.topics = Topics()
        self.lock = threading.RLock()
        self._tasks: dict[str, TaskRecord] = {}
        self._running: dict[str, RunningTask] = {}
        self._chained: dict[tuple[str, str, str], Handler] = {}
        self._topic_handlers: dict[str, dict[str, _TopicHandler]] = {}
        #: Unbounded itself: ``write`` bounds the points in it (``_queued_points``).
        self._queue: queue.Queue[object] = queue.Queue()
        self._max_points = queue_points
        self._queued_points = 0
        self._room = threading.Condition()
        self._accepting = False
        self._stop_tick = threading.Event()
        self._worker: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        #: Topic event states not yet in the store, and the tasks that produced them.
        self._pending_events: dict[tuple[str, str], dict[str, Any]] = {}
        self._pending_tasks: set[str] = set()
        #: Tasks that emitted events since their last alert snapshot.
        self._dirty: set[str] = set()
        #: Per (db, rp): the running tasks that receive its points; rebuilt on task changes.
        self._routes: dict[DBRP, list[tuple[str, RunningTask]]] = {}

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Load the store, start enabled tasks and the worker."""
        with self.lock:
            for topic_id, events in self.repo.load_events().items():
                self.topics.restore_topic(
                    topic_id, {eid: EventState.from_dict(s) for eid, s in events.items()})
            for data in self.repo.load_handlers():
                try:
                    spec = HandlerSpec.from_dict(data)
                    self._install_handler(spec)
                except Exception as exc:  # noqa: BLE001 - one bad handler must not stop the server
                    log.error("stored handler %s/%s cannot be loaded: %s", spec.topic, spec.id, exc)
            for data in self.repo.load_tasks():
                rec = TaskRecord.from_store(data)
                self._tasks[rec.id] = rec
                if rec.status == ENABLED:
                    self._start_task(rec)
        self._accepting = True
        self._worker = threading.Thread(target=self._work, name="kapacity-engine", daemon=True)
        self._worker.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="kapacity-ticker", daemon=True)
        self._ticker.start()
        log.info("engine started: %d tasks (%d enabled), %d topic handlers",
                 len(self._tasks), len(self._running),
                 sum(len(h) for h in self._topic_handlers.values()))

    def close(self) -> None:
        """Stop accepting writes, drain, flush handlers, close the store. Idempotent."""
        if not self._accepting and self._worker is None:
            return
        self._accepting = False
        if self._worker is not None:
            self._queue.put(_STOP)
            self._worker.join()
            self._worker = None
        self._stop_tick.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self.lock:
            self._flush_events()
            for task_id in list(self._running):
                self._save_snapshot(task_id)
            handlers = list(self._chained.values()) + [
                th.handler for hs in self._topic_handlers.values() for th in hs.values()
            ]
            for h in handlers:
                try:
                    h.close(FLUSH_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - close the others anyway
                    log.error("closing handler failed: %s", exc)
            self.factory.close(FLUSH_TIMEOUT_S)
            self.repo.close()
        log.info("engine stopped: %d points processed, %d alerts",
                 self.counters.points_processed, self.counters.alerts)

    # ---------------------------------------------------------------- writes
    def write(self, points: list[Point], dbrp: tuple[str, str] | None = None) -> None:
        """Accept points for processing; raises Unavailable when shutting down or full.

        ``dbrp``: the caller vouches that every point has this (database, retention policy)
        — one parsed /write body — which saves two passes over the points.
        """
        if not points:
            return
        if not self._accepting:
            raise Unavailable("server is shutting down, write refused")
        if dbrp is not None:
            groups = [(DBRP(*dbrp), points)]
        else:
            for p in points:
                if not p.retention_policy:
                    p.retention_policy = DEFAULT_RP
            groups = _by_dbrp(points)
        n = len(points)
        with self._room:
            if not self._room.wait_for(
                lambda: self._queued_points == 0 or self._queued_points + n <= self._max_points,
                timeout=WRITE_QUEUE_TIMEOUT_S,
            ):
                self.counters.writes_rejected += 1
                raise Unavailable(
                    f"write queue full ({self._queued_points} points waiting, limit "
                    f"{self._max_points}); retry later"
                )
            self._queued_points += n
            self.counters.points_received += n
        self._queue.put((n, groups))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every accepted point has been processed (tests, service shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.005)
        return False

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, tuple)
                count, groups = item
                try:
                    with self.lock:
                        for key, points in groups:
                            self._process(key, points)
                        self._flush_events()
                finally:
                    with self._room:
                        self._queued_points -= count
                        self._room.notify_all()
            except Exception:  # noqa: BLE001 - the worker must survive a bad batch
                log.exception("processing a write failed")
            finally:
                self._queue.task_done()

    def _route(self, key: DBRP) -> list[tuple[str, RunningTask]]:
        tasks = self._routes.get(key)
        if tasks is None:
            tasks = self._routes[key] = [
                (tid, t) for tid, t in self._running.items()
                if not self._tasks[tid].dbrps or key in self._tasks[tid].dbrps
            ]
        return tasks

    def _process(self, key: DBRP, points: list[Point]) -> None:
        for task_id, task in self._route(key):
            try:
                events = task.process_many(points)
            except Exception as exc:  # noqa: BLE001 - one failing task must not stop the others
                self.counters.task_errors += 1
                log.error("task %s failed on a point: %s", task_id, exc)
                continue
            for ev in events:
                self._dispatch(task_id, ev)
        self.counters.points_processed += len(points)

    def _flush_events(self) -> None:
        """Write the batch's topic event states in one transaction (see module docs)."""
        if not self._pending_events and not self._pending_tasks:
            return
        events, tasks = self._pending_events, self._pending_tasks
        self._pending_events, self._pending_tasks = {}, set()
        try:
            self.repo.save_events(events, tasks)
        except Exception as exc:  # noqa: BLE001 - logged; the alerts themselves went out
            log.error("storing %d topic event states failed: %s", len(events), exc)

    def _save_snapshot(self, task_id: str) -> None:
        running = self._running.get(task_id)
        if running is None:
            return
        self._flush_events()  # the snapshot must not be older than what the store holds
        try:
            self.repo.save_alert_snapshot(task_id, running.snapshot(), self.clock())
        except Exception as exc:  # noqa: BLE001 - the topic state stays as the fallback
            log.error("storing the alert state of task %s failed: %s", task_id, exc)
        self._dirty.discard(task_id)

    def _tick_loop(self) -> None:
        last_snapshot = time.monotonic()
        while not self._stop_tick.wait(TICK_INTERVAL_S):
            with self.lock:
                now = self.clock()
                for task_id, task in list(self._running.items()):
                    try:
                        for ev in task.tick(now):
                            self._dispatch(task_id, ev)
                    except Exception as exc:  # noqa: BLE001
                        self.counters.task_errors += 1
                        log.error("task %s failed on a clock tick: %s", task_id, exc)
                self._flush_events()
                if time.monotonic() - last_snapshot >= SNAPSHOT_INTERVAL_S:
                    last_snapshot = time.monotonic()
                    for task_id in list(self._dirty):
                        self._save_snapshot(task_id)

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, task_id: str, ev: Emitted) -> None:
        alert = ev.alert
        state = EventState(alert.message, alert.details, alert.time.ns, alert.duration.ns, alert.level)
        previous = self.topics.update(ev.topic, alert.id, state)
        alert.previous_level = previous
        self._pending_events[(ev.topic, alert.id)] = state.to_dict()
        self._pending_tasks.add(task_id)
        self._dirty.add(task_id)
        self.counters.alerts += 1
        for ref in ev.handlers:
            key = (task_id, ref.kind, repr(sorted(ref.options.items())))
            handler = self._chained.get(key)
            if handler is None:
                try:
                    handler = self._chained[key] = self.factory.create(ref.kind, ref.options)
                except Exception as exc:  # noqa: BLE001 - counted and logged like a failed delivery
                    self.counters.handler_errors += 1
                    log.error("task %s: cannot create its %s handler: %s", task_id, ref.kind, exc)
                    continue
            self._call(handler, alert, f"{ref.kind} handler of task {task_id}")
        if not ev.publish:
            return
        ctx: MatchContext | None = None  # built for the first handler with a match
        for th in self._topic_handlers.get(ev.topic, _NO_HANDLERS).values():
            if th.match is not None:
                if ctx is None:
                    ctx = MatchContext(alert, previous, ev.task or task_id, ev.name, ev.tags)
                try:
                    if not th.match(ctx):
                        continue
                except Exception as exc:  # noqa: BLE001 - a failing match counts as false
                    log.warning("match of handler %s/%s failed: %s", ev.topic, th.spec.id, exc)
                    continue
            self._call(th.handler, alert, f"handler {ev.topic}/{th.spec.id}")

    def _call(self, handler: Handler, alert: AlertData, what: str) -> None:
        try:
            handler.handle(alert)
        except Exception as exc:  # noqa: BLE001 - counted and logged, the pipeline goes on
            self.counters.handler_errors += 1
            log.error("%s failed for alert %s: %s", what, alert.id, exc)

    # ---------------------------------------------------------------- tasks
    def _start_task(self, rec: TaskRecord) -> None:
        try:
            running = self.compiler.start(rec.id, rec.script, rec.vars)
        except Exception as exc:  # noqa: BLE001 - kept as the task's error, shown by the API
            self._tasks[rec.id] = dataclasses.replace(rec, error=str(exc))
            log.error("task %s cannot start: %s", rec.id, exc)
            return
        snapshot = None
        try:
            snapshot = self.repo.load_alert_snapshot(rec.id)
            if snapshot is not None:
                running.restore(snapshot)
        except Exception as exc:  # noqa: BLE001 - a bad snapshot: fall back to the topic state
            log.error("task %s: stored alert state unusable, seeding from topics: %s", rec.id, exc)
            snapshot = None
            running = self.compiler.start(rec.id, rec.script, rec.vars)
        if snapshot is None:
            running.restore_levels(self._levels())
        self._running[rec.id] = running
        self._routes.clear()

    def _stop_task(self, task_id: str, *, keep_state: bool = True) -> None:
        if keep_state:
            self._save_snapshot(task_id)
        self._running.pop(task_id, None)
        self._routes.clear()
        self._dirty.discard(task_id)
        for key in [k for k in self._chained if k[0] == task_id]:
            h = self._chained.pop(key)
            try:
                h.close(FLUSH_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001
                log.error("closing a handler of task %s failed: %s", task_id, exc)

    def _checked(self, rec: TaskRecord) -> TaskRecord:
        try:
            compiled = self.compiler.check(rec.id, rec.script, rec.vars)
        except BadRequest:
            raise
        except Exception as exc:  # noqa: BLE001 - TICKscript errors carry line:col
            raise BadRequest(f"invalid TICKscript: {exc}") from exc
        for ref in compiled.handlers:
            try:
                self.factory.validate(ref.kind, ref.options)
            except Exception as exc:  # noqa: BLE001
                raise BadRequest(f"invalid TICKscript: .{ref.kind}(): {exc}") from exc
        implicit = tuple(DBRP(db, rp) for db, rp in compiled.dbrps)
        if implicit and rec.dbrps and set(implicit) != set(rec.dbrps):
            raise BadRequest("cannot specify dbrp in both implicitly and explicitly")
        # Kapacitor refuses a task without dbrp ("must specify dbrp"), but its docs define
        # the seed example without one ("kapacitor define cpu_alert -tick cpu_alert.tick"):
        # kapacity does what the docs show — such a task receives the points of every database.
        dbrps = implicit or rec.dbrps
        return dataclasses.replace(rec, dbrps=dbrps, error="")

    def create_task(self, body: Any) -> dict[str, Any]:
        rec = new_record(body, self.clock())
        with self.lock:
            if rec.id in self._tasks:
                raise BadRequest(f"task {rec.id} already exists")
            rec = self._checked(rec)
            self._tasks[rec.id] = rec
            if rec.status == ENABLED:
                self._start_task(rec)
            self.repo.save_task(self._tasks[rec.id].to_store())
            return self._task_view(rec.id)

    def update_task(self, task_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            old = self._tasks.get(task_id)
            if old is None:
                raise NotFound("task does not exist, cannot update")
            rec = self._checked(updated_record(old, body, self.clock()))
            if rec.id != task_id and rec.id in self._tasks:
                raise BadRequest(f"task {rec.id} already exists")
            was_running = task_id in self._running
            changed = (rec.script, rec.vars, rec.dbrps, rec.id) != (old.script, old.vars, old.dbrps, old.id)
            if was_running and (changed or rec.status != ENABLED):
                self._stop_task(task_id, keep_state=not changed)
            if changed:
                # Another script (or id) may have other alert nodes and groups: the old
                # state would be misleading; the topic state still seeds the new one.
                self.repo.delete_alert_snapshot(task_id)
            if rec.id != task_id:
                del self._tasks[task_id]
                self.repo.delete_task(task_id)
            self._tasks[rec.id] = rec
            if rec.status == ENABLED and rec.id not in self._running:
                self._start_task(rec)
            self.repo.save_task(self._tasks[rec.id].to_store())
            return self._task_view(rec.id)

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            self._stop_task(task_id, keep_state=False)
            if self._tasks.pop(task_id, None) is not None:
                self.repo.delete_task(task_id)

    def get_task(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            if task_id not in self._tasks:
                raise NotFound(f"no task exists with ID: {task_id}")
            return self._task_view(task_id)

    def http_out(self, task_id: str, endpoint: str) -> str:
        """The JSON an ``|httpOut(endpoint)`` node of a running task holds."""
        with self.lock:
            if task_id not in self._tasks:
                raise NotFound(f"no task exists with ID: {task_id}")
            running = self._running.get(task_id)
            body = running.http_out(endpoint) if running is not None else None
        if body is None:
            raise NotFound(
                f"no endpoint {endpoint!r} on task {task_id}: "
                f"is the task enabled, and does it have |httpOut('{endpoint}')?"
            )
        return body

    def list_tasks(self, pattern: str = "", offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self.lock:
            ids = sorted(t for t in self._tasks if not pattern or fnmatch.fnmatchcase(t, pattern))
            return [self._task_view(t) for t in ids[offset:offset + limit]]

    def _task_view(self, task_id: str) -> dict[str, Any]:
        rec = self._tasks[task_id]
        running = self._running.get(task_id)
        stats: dict[str, Any] = {}
        dot = ""
        if running is not None:
            stats = running.stats()
            dot = running.dot()
        return task_json(rec, executing=running is not None, dot=dot, stats=stats)

    # ---------------------------------------------------------------- topic handlers
    def _install_handler(self, spec: HandlerSpec) -> None:
        match = self.match_compiler(spec.match) if spec.match and self.match_compiler else None
        if spec.match and self.match_compiler is None:
            raise BadRequest("match: expressions are not supported by this build")
        handler = self.factory.create(spec.kind, spec.options)
        old = self._topic_handlers.setdefault(spec.topic, {}).get(spec.id)
        self._topic_handlers[spec.topic][spec.id] = _TopicHandler(spec, handler, match)
        if self.topics.topic(spec.topic) is None:
            self.topics.restore_topic(spec.topic, {})  # a topic exists once it has a handler
        if old is not None:
            old.handler.close(FLUSH_TIMEOUT_S)

    def validate_handler(self, spec: HandlerSpec) -> None:
        if spec.kind not in self.factory.kinds:
            raise BadRequest(f"kind: unknown handler kind {spec.kind!r}; valid: {', '.join(self.factory.kinds)}")
        try:
            self.factory.validate(spec.kind, spec.options)
        except Exception as exc:  # noqa: BLE001 - the message names the option
            raise BadRequest(f"options: {exc}") from exc
        if spec.match:
            if self.match_compiler is None:
                raise BadRequest("match: expressions are not supported by this build")
            try:
                self.match_compiler(spec.match)
            except Exception as exc:  # noqa: BLE001
                raise BadRequest(f"match: {exc}") from exc

    def validate_spec(self, data: Any, topic: str) -> HandlerSpec:
        """An API body as a spec (the URL's topic wins); BadRequest names the field."""
        from kapacity.alert.handlerspec import HandlerSpecError

        try:
            return HandlerSpec.from_dict(data, topic=topic, kinds=self.factory.kinds)
        except HandlerSpecError as exc:
            raise BadRequest(f"invalid handler spec: {exc}") from None

    def put_handler(self, spec: HandlerSpec, *, must_exist: bool) -> dict[str, Any]:
        with self.lock:
            exists = spec.id in self._topic_handlers.get(spec.topic, {})
            if must_exist and not exists:
                raise NotFound(f"unknown handler: {spec.id!r}")
            self.validate_handler(spec)
            self._install_handler(spec)
            self.repo.save_handler(spec.to_dict())
            return spec.to_dict()

    def get_handler(self, topic: str, handler_id: str) -> HandlerSpec:
        with self.lock:
            th = self._topic_handlers.get(topic, {}).get(handler_id)
            if th is None:
                raise NotFound(f"unknown handler: {handler_id!r}")
            return th.spec

    def list_handlers(self, topic: str, pattern: str = "") -> list[HandlerSpec]:
        with self.lock:
            specs = [th.spec for hid, th in self._topic_handlers.get(topic, {}).items()
                     if not pattern or fnmatch.fnmatchcase(hid, pattern)]
            return sorted(specs, key=lambda s: s.id)

    def delete_handler(self, topic: str, handler_id: str) -> None:
        with self.lock:
            th = self._topic_handlers.get(topic, {}).pop(handler_id, None)
            if th is not None:
                th.handler.close(FLUSH_TIMEOUT_S)
            self.repo.delete_handler(topic, handler_id)

    # ---------------------------------------------------------------- topics
    def delete_topic(self, topic: str) -> None:
        with self.lock:
            for hid in list(self._topic_handlers.get(topic, {})):
                self.delete_handler(topic, hid)
            self._topic_handlers.pop(topic, None)
            self.topics.delete_topic(topic)
            self.repo.delete_topic(topic)

    def _levels(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Per topic, per event: (level, time ns) — what alert nodes are seeded with."""
        return {
            t.id: {eid: (int(s.level), s.time) for eid, s in self.topics.event_states(t.id).items()}
            for t in self.topics.topic_states()
        }

    # ---------------------------------------------------------------- stats
    def task_count(self) -> tuple[int, int]:
        with self.lock:
            return len(self._tasks), len(self._running)

    def task_stats(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {tid: t.stats() for tid, t in self._running.items()}

    def handler_stats(self) -> dict[str, Any]:
        return self.factory.stats()

