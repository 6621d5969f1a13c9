"""``kapacity serve`` on the Kafka queue (``[queue] type = "kafka"``).

:class:`QueuedEngine` is the in-process :class:`~kapacity.server.engine.Engine` with its
writes and definitions forwarded to a :class:`~kapacity.runtime.app.Runtime`:

* ``/write`` → :meth:`Runtime.submit_points` (durable in the runtime's on-disk ingest
  buffer when the ``204`` is sent, then sent to the ``points`` topic in order — also while
  the queue cluster is unreachable, see :mod:`kapacity.runtime.ingestbuffer`); a full ingest
  buffer (:class:`~kapacity.runtime.errors.Backpressure`) answers ``503`` + ``Retry-After``. The local engine never sees the points: the runtime's
  exactly-once engine and delivery stages (on this and every other instance) process them.
* task and topic-handler changes are validated and stored by the local engine (which keeps
  serving the read routes: ``GET /tasks``, ``GET .../handlers``), then broadcast through the
  ``tasks`` / ``handlers`` topics to every instance.
* every instance applies the broadcast ``tasks`` / ``handlers`` records to its local
  engine's views (:mod:`kapacity.server.defsync`), so any instance's API shows — within a
  second — what was defined or deleted through any other.
* every instance applies the broadcast ``topic_state`` records (written by the delivery
  stages) to its local engine's topics (:mod:`kapacity.server.topicsync`), so the topic and
  event routes of any instance show every event, whichever instance processed it; a topic
  delete writes tombstones for its events, so it is deleted cluster-wide.
* the local engine's clock (deadman ticks, periodic snapshots) does not run: with no points
  its tasks would only produce spurious deadman alerts. Deadman is driven by the runtime's
  regroup stage instead (:mod:`kapacity.runtime.ticks`).
* ``|httpOut`` endpoints (``GET /tasks/<id>/<endpoint>``) show the latest series of every
  group in the cluster (:mod:`kapacity.runtime.httpout`).
* task stats (``GET /tasks/<id>`` ``stats`` and DOT, ``kapacity show``, ``/debug/vars``) are
  the cluster's: each instance publishes its stages' per-task node counters with its
  membership status, and any instance answers with their sum over the instances not
  ``stopped`` (:mod:`kapacity.runtime.taskstats`).

The default (``embedded``) path does not use this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.models import Point
from kapacity.queue.base import Queue
from kapacity.queue.errors import QueueUnavailableError
from kapacity.queue.kinds import Kind
from kapacity.runtime.errors import Backpressure, RuntimeStateError
from kapacity.runtime.records import TaskDefinition
from kapacity.runtime.httpout import cluster_http_out
from kapacity.runtime.taskstats import NodeStats, TaskStats, cluster_task_stats, overlay
from kapacity.server.defsync import DefinitionSync, EchoFilter
from kapacity.server.engine import Engine
from kapacity.server.errors import Unavailable
from kapacity.server.topicsync import TopicSync
from kapacity.server.pipeline import dot_graph
from kapacity.server.taskdef import DEFAULT_RP, ENABLED, task_json

if TYPE_CHECKING:
    from kapacity.runtime.app import Runtime

log = logging.getLogger("kapacity.server.queued")

#: Seconds :meth:`Runtime.stop` gets at shutdown to drain, flush handlers and commit.
RUNTIME_STOP_TIMEOUT_S = 30.0


class QueueFull(Unavailable):
    """503 + Retry-After: the runtime's bounded ingest buffer stayed full."""


class QueuedEngine(Engine):
    """An :class:`Engine` whose writes and definitions go to ``runtime`` (see module doc)."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        #: Own broadcast writes not yet read back (see :mod:`kapacity.server.defsync`).
        self.echoes = EchoFilter()
        self.definitions: DefinitionSync | None = None
        self.topic_sync: TopicSync | None = None
        #: The cluster's task stats while :meth:`list_tasks` builds its views (under the lock).
        self._cluster_view: TaskStats | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the runtime (opens the queue, creates missing topics), then the engine."""
        self.runtime.start()
        try:
            super().start()
            if isinstance(self.runtime.queue, Queue):  # a test double may have none
                self.definitions = DefinitionSync(self.runtime.queue, self, self.echoes)
                self.definitions.start()
                self.topic_sync = TopicSync(self.runtime.queue, self)
                self.topic_sync.start()
        except BaseException:
            self.runtime.stop(RUNTIME_STOP_TIMEOUT_S)
            raise

    def close(self) -> None:
        """Stop the runtime (drain, flush handlers, commit), then close the engine."""
        runtime_ok = True
        syncs = (self.topic_sync, self.definitions)
        self.topic_sync = self.definitions = None
        for sync in syncs:
            if sync is not None:
                sync.stop()  # its readers belong to the queue the runtime closes
        if self.runtime.queue is not None:
            runtime_ok = self.runtime.stop(RUNTIME_STOP_TIMEOUT_S)
            self.runtime.queue = None
        if not runtime_ok:
            log.error("the queue runtime did not stop within %gs", RUNTIME_STOP_TIMEOUT_S)
        super().close()

    def _tick_loop(self) -> None:
        self._stop_tick.wait()

    # ---------------------------------------------------------------- writes
    def write(self, points: list[Point], dbrp: tuple[str, str] | None = None) -> None:
        if not points:
            return
        for p in points:
            if not p.retention_policy:
                p.retention_policy = DEFAULT_RP
        try:
            self.runtime.submit_points(points)
        except Backpressure as exc:
            self.counters.writes_rejected += 1
            raise QueueFull(str(exc)) from None
        except RuntimeStateError as exc:
            raise Unavailable(f"server is shutting down, write refused ({exc})") from None
        self.counters.points_received += len(points)

    # ---------------------------------------------------------------- definitions
    def _emit(self, kind: Kind, key: str, value: Any, emit: Callable[[], object]) -> None:
        """Broadcast one definition (under ``self.lock``), noting it as an own write first so
        the definition sync does not undo it with an older record (see :mod:`.defsync`)."""
        self.echoes.sent(kind.value, key, value)
        try:
            emit()
        except BaseException:
            self.echoes.failed(kind.value, key)
            raise

    def _broadcast_task(self, task_id: str) -> None:
        rec = self._tasks[task_id]
        dbrps = [(d.db, d.rp) for d in rec.dbrps]
        enabled = rec.status == ENABLED
        # The record Runtime.define_task emits, built the same way.
        value = TaskDefinition(rec.id, rec.script, dict(rec.vars), tuple(dbrps), enabled).value()
        self._emit(Kind.TASKS, rec.id, value, lambda: self.runtime.define_task(
            rec.id, rec.script, vars=rec.vars, dbrps=dbrps, enabled=enabled,
        ))

    def _broadcast_task_delete(self, task_id: str) -> None:
        self._emit(Kind.TASKS, task_id, None, lambda: self.runtime.delete_task(task_id))

    def create_task(self, body: Any) -> dict[str, Any]:
        with self.lock:
            view = super().create_task(body)
            self._broadcast_task(str(view["id"]))
            return view

    def update_task(self, task_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            view = super().update_task(task_id, body)
            new_id = str(view["id"])
            self._broadcast_task(new_id)
            if new_id != task_id:
                self._broadcast_task_delete(task_id)
            return view

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            super().delete_task(task_id)
            self._broadcast_task_delete(task_id)

    def put_handler(self, spec: HandlerSpec, *, must_exist: bool) -> dict[str, Any]:
        with self.lock:
            out = super().put_handler(spec, must_exist=must_exist)
            self._emit(Kind.HANDLERS, f"{spec.topic}/{spec.id}", spec.to_dict(), lambda: self.runtime.put_handler(spec))
            return out

    def delete_handler(self, topic: str, handler_id: str) -> None:
        with self.lock:
            super().delete_handler(topic, handler_id)
            self._emit(Kind.HANDLERS, f"{topic}/{handler_id}", None,
                       lambda: self.runtime.delete_handler(topic, handler_id))

    # ---------------------------------------------------------------- topics
    def delete_topic(self, topic: str) -> None:
        """Tombstones for the topic's events (every instance drops them, a restart does not
        bring them back), then the local delete (its handlers are deleted and broadcast)."""
        with self.lock:
            if self.topic_sync is not None:
                try:
                    self.topic_sync.delete_topic_events(topic)
                except QueueUnavailableError as exc:
                    raise Unavailable(f"topic {topic!r} not deleted: {exc}") from None
            super().delete_topic(topic)

    # ---------------------------------------------------------------- task stats
    def cluster_task_stats(self) -> TaskStats | None:
        """Per task, per node: the counters of every instance running it, summed (the
        cluster view, see :mod:`kapacity.runtime.taskstats`): this instance's counted now,
        the others' as last published (every membership interval, 2 s by default); ``None``
        without a started runtime."""
        membership = getattr(self.runtime, "membership", None)
        if membership is None:
            return None
        try:
            return cluster_task_stats(membership.instances(membership.record()))
        except Exception as exc:  # noqa: BLE001 - the task API must answer; stats are advisory
            log.warning("cluster task stats unavailable, showing the local view: %s", exc)
            return None

    def _task_view(self, task_id: str) -> dict[str, Any]:
        """The task as the local engine knows it (definition, status), with the cluster's
        counters in ``stats`` and the DOT: the local copy of the task never sees a point."""
        running = self._running.get(task_id)
        cluster = self._cluster_view if self._cluster_view is not None else self.cluster_task_stats()
        if running is None or cluster is None:
            return super()._task_view(task_id)
        stats = _with_cluster_counts(running.stats(), cluster.get(task_id))
        return task_json(self._tasks[task_id], executing=True, dot=dot_graph(task_id, stats["node-stats"]),
                         stats=stats)

    def list_tasks(self, pattern: str = "", offset: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        with self.lock:  # one cluster view for the whole list, not one per task
            self._cluster_view = self.cluster_task_stats()
            try:
                return super().list_tasks(pattern, offset, limit)
            finally:
                self._cluster_view = None

    def task_stats(self) -> dict[str, dict[str, Any]]:
        """``/debug/vars`` ``nodes:<task>:<node>`` / ``tasks:<task>``: the cluster's counters."""
        cluster = self.cluster_task_stats()
        with self.lock:
            running = dict(self._running)
        if cluster is None:
            return {tid: t.stats() for tid, t in running.items()}
        return {tid: _with_cluster_counts(t.stats(), cluster.get(tid)) for tid, t in running.items()}

    # ---------------------------------------------------------------- httpOut
    def http_out(self, task_id: str, endpoint: str) -> str:
        """``|httpOut`` of the cluster (see :mod:`kapacity.runtime.httpout`): the local copy
        of the task says whether it has the endpoint (and never sees a point); the groups'
        latest series come from every instance's stages."""
        local = super().http_out(task_id, endpoint)  # NotFound for an unknown task/endpoint
        membership = getattr(self.runtime, "membership", None)
        if membership is None:
            return local
        try:
            body = cluster_http_out(membership.instances(membership.record()), task_id, endpoint)
        except Exception as exc:  # noqa: BLE001 - answer with what is known locally
            log.warning("cluster httpOut unavailable, showing the local view: %s", exc)
            return local
        return '{"series":null}' if body is None else body

    # ---------------------------------------------------------------- status
    def cluster_status(self) -> dict[str, Any]:
        """This instance's status plus ``instances``: every member of the cluster, from the
        ``instances`` kind (see :mod:`kapacity.runtime.membership`)."""
        return {"mode": "kafka", "instances": [], **self.runtime.status()}


def _with_cluster_counts(local: dict[str, Any], cluster: NodeStats | None) -> dict[str, Any]:
    """A running task's ``stats`` (``task-stats`` + ``node-stats``) with the node numbers
    replaced by the cluster's (node order, types and zero counters from the local copy)."""
    return {**local, "node-stats": overlay(local.get("node-stats") or {}, cluster)}


def embedded_status(engine: Engine) -> dict[str, Any]:
    """``GET /kapacitor/v1/cluster`` without a Kafka queue: this one instance."""
    tasks, enabled = engine.task_count()
    return {
        "mode": "embedded", "instance": engine.hostname, "queue": "embedded", "accepting": engine._accepting,
        "instances": [engine.hostname], "tasks": tasks, "enabled_tasks": enabled,
        "points_received": engine.counters.points_received,
        "points_processed": engine.counters.points_processed,
    }


def cluster_status(engine: Engine) -> dict[str, Any]:
    if isinstance(engine, QueuedEngine):
        return engine.cluster_status()
    return embedded_status(engine)

