"""The queue-based runtime: ``Runtime(config, data_dir)``.

>>> rt = Runtime(config, "/var/lib/kapacity", instance="a")      # doctest: +SKIP
>>> rt.start()                                                    # doctest: +SKIP
>>> rt.define_task("cpu", "stream|from().measurement('cpu')|alert()...")  # doctest: +SKIP
>>> rt.submit_points(points)   # durable in the queue on return  # doctest: +SKIP
>>> rt.stop(10.0)                                                 # doctest: +SKIP

The HTTP write path calls :meth:`Runtime.submit_points`; a full ingest buffer raises the
retriable :class:`~kapacity.runtime.errors.Backpressure` (answer 503 + Retry-After).
On the Kafka queue, accepted points first go to a durable local buffer
(:mod:`kapacity.runtime.ingestbuffer`), so writes keep being accepted while the queue
cluster is down, up to ``max_pending`` points.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.config.model import Config
from kapacity.models import Point
from kapacity.queue.base import Queue
from kapacity.queue.kinds import Kind
from kapacity.runtime.engine import StageThread, start_stages
from kapacity.runtime.ingestbuffer import IngestBuffer, IngestFlusher, buffer_path
from kapacity.runtime.errors import Backpressure, RuntimeStateError
from kapacity.runtime.httpout import bounded
from kapacity.runtime.membership import DEFAULT_INTERVAL_S, Membership
from kapacity.runtime.takeover import Takeover, session_timeout_ms
from kapacity.runtime.taskstats import compact
from kapacity.runtime.records import TaskDefinition, handler_key, point_value, series_key

__all__ = ["DEFAULT_MAX_PENDING", "Runtime"]

log: Final = logging.getLogger("kapacity.runtime")

#: Points accepted by ``submit_points`` and not yet durable in the queue (~600 B each parsed:
#: 100k points bound the ingest memory to about 60 MB). On the Kafka queue, the bound of the
#: on-disk ingest buffer (~150 B a point: about 15 MB), i.e. of what an outage can hold.
DEFAULT_MAX_PENDING: Final = 100_000
#: How long ``submit_points`` waits for room before raising Backpressure.
DEFAULT_SUBMIT_WAIT_S: Final = 5.0


class Runtime:
    """The engine and delivery stages of one instance, plus the emitting side of the API."""

    def __init__(
        self,
        config: Config,
        data_dir: str | Path | None = None,
        *,
        instance: str | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        submit_wait_s: float = DEFAULT_SUBMIT_WAIT_S,
        run_stages: bool = True,
        membership_interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir if data_dir is not None else config.data_dir)
        #: Names this instance's transactional ids and state dir: it must be stable across
        #: restarts (a restart then fences and aborts what the previous process left open)
        #: and different for each instance sharing the queue.
        self.instance = instance or socket.gethostname()
        self.max_pending, self.submit_wait_s = max_pending, submit_wait_s
        self._run_stages = run_stages
        self.queue: Queue | None = None
        self.stages: list[StageThread] = []
        self._pending = 0
        self._room = threading.Condition()
        self._accepting = False
        self.refused = 0
        #: Kafka queue only: accepted points wait on disk for the queue (see module doc).
        self.buffer: IngestBuffer | None = None
        self.flusher: IngestFlusher | None = None
        self.membership_interval_s = membership_interval_s
        #: Publishes this instance's status to the ``instances`` kind and reads everyone's.
        self.membership: Membership | None = None
        #: Kafka queue with stages: runs the stages of lost instances (see :mod:`.takeover`).
        self.takeover: Takeover | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        from kapacity.queue.factory import open_queue

        config = self.config
        if str(config.data_dir) != str(self.data_dir):
            config = config.model_copy(update={"data_dir": str(self.data_dir)})
        self.queue = open_queue(config, instance_id=self.instance)
        if config.queue.type == "kafka":
            self._start_ingest(self.queue)
        if self._run_stages:
            self.stages = start_stages(config, self.queue, self.state_dir, self.instance)
        self._accepting = True
        self.membership = Membership(self.queue, self.instance, self._local_status,
                                     interval_s=self.membership_interval_s)
        self.membership.start()  # publishes at once, then every interval
        if self._run_stages and config.queue.type == "kafka":
            queue, cfg = self.queue, config

            def adopt(name: str, state_dir: Path) -> list[StageThread]:
                return start_stages(cfg, queue, state_dir, name, adopted=True)

            self.takeover = Takeover(queue, self.membership, self.data_dir,
                                     session_timeout_ms=session_timeout_ms(config.queue.kafka.consumer_properties()),
                                     start_stages=adopt, stages_status=stages_status)
            self.takeover.start()

    def _start_ingest(self, queue: Queue) -> None:
        from kapacity.queue.errors import QueueError, QueueUnavailableError

        def emit(items: list[tuple[str, Any]]) -> None:
            queue.emit_many(Kind.POINTS, items)

        def drain(timeout: float) -> None:
            try:
                queue.flush(timeout)
            except QueueUnavailableError:
                raise  # records still without an ack: they may yet be delivered
            except QueueError:
                pass  # an older asynchronous failure: nothing is in flight any more

        self.buffer = IngestBuffer(buffer_path(self.data_dir, self.instance), self.max_pending)
        self.flusher = IngestFlusher(self.buffer, emit, drain)
        self.flusher.start()

    @property
    def state_dir(self) -> Path:
        return self.config.queue.kafka.state_dir(str(self.data_dir))

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop accepting, let the stages finish what is queued (a poll that finds nothing),
        close handlers and commit; True when every stage ended within ``timeout``."""
        self._accepting = False
        deadline = time.monotonic() + timeout
        ok = True
        membership = self.membership  # kept until the end: status() answers while draining
        if membership is not None:
            membership.set_state("stopping")  # still published while the stages drain
        flusher, self.flusher = self.flusher, None
        if flusher is not None:  # what cannot be sent in time stays on disk for the next start
            if not flusher.stop(max(0.1, deadline - time.monotonic())):
                log.warning("%d accepted points stay in %s until the next start", len(flusher.buffer), flusher.buffer.path)
        takeover, self.takeover = self.takeover, None
        if takeover is not None:  # adopted stages first: they are another instance's
            takeover.stop(max(0.1, min(10.0, deadline - time.monotonic())))
        for stage in self.stages:  # engine first: its events are then delivered
            ok = stage.stop(max(0.1, deadline - time.monotonic())) and ok
        if membership is not None:
            membership.stop(max(0.1, deadline - time.monotonic()))
            membership.publish_stopped()
            self.membership = None
        if self.queue is not None:
            self.queue.close()
        if flusher is not None:
            flusher.buffer.close()
            self.buffer = None
        return ok

    def _queue(self) -> Queue:
        if self.queue is None or not self._accepting:
            raise RuntimeStateError("the runtime is not running (call start(); not after stop())")
        return self.queue

    # --- ingest -------------------------------------------------------------------------------

    def submit_points(self, points: Sequence[Point]) -> None:
        """Emit points to the ``points`` kind (keyed by series); returns once they are durable.

        Bounded: at most ``max_pending`` points are in flight; beyond that the caller waits up
        to ``submit_wait_s`` and then gets :class:`Backpressure` (nothing was written).

        On the Kafka queue, "durable" means stored in the local ingest buffer, from which
        they are sent to the queue in order (also after the queue cluster was unreachable).
        """
        queue = self._queue()
        buffer = self.buffer
        if buffer is not None:
            try:
                buffer.append([(series_key(p), point_value(p)) for p in points], self.submit_wait_s)
            except Backpressure:
                self.refused += len(points)
                raise
            return
        n = len(points)
        with self._room:
            if not self._room.wait_for(lambda: self._pending + n <= max(self.max_pending, n), self.submit_wait_s):
                self.refused += n
                raise Backpressure(self._pending, self.max_pending, self.submit_wait_s)
            self._pending += n
        try:
            queue.emit_many(Kind.POINTS, [(series_key(p), point_value(p)) for p in points])
        finally:
            with self._room:
                self._pending -= n
                self._room.notify_all()

    # --- definitions (broadcast to every instance) ----------------------------------------------

    def define_task(
        self,
        task_id: str,
        script: str,
        *,
        vars: Mapping[str, Any] | None = None,
        dbrps: Sequence[tuple[str, str]] = (),
        enabled: bool = True,
    ) -> TaskDefinition:
        """Check the script (raises ``TickError`` with line:column) and broadcast it."""
        from kapacity.pipeline import build_task

        build_task(script, task_name=task_id, vars=dict(vars or {}))
        definition = TaskDefinition(task_id, script, dict(vars or {}), tuple(dbrps), enabled)
        self._queue().emit(Kind.TASKS, task_id, definition.value())
        return definition

    def delete_task(self, task_id: str) -> None:
        self._queue().delete(Kind.TASKS, task_id)

    def put_handler(self, spec: HandlerSpec | Mapping[str, Any]) -> HandlerSpec:
        if not isinstance(spec, HandlerSpec):
            spec = HandlerSpec.from_dict(dict(spec))
        self._queue().emit(Kind.HANDLERS, handler_key(spec), spec.to_dict())
        return spec

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self._queue().delete(Kind.HANDLERS, f"{topic}/{handler_id}")

    # --- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Instance, backend, and per stage: partitions owned, lag, restore progress, counters;
        ``instances``: every instance of the cluster (see :mod:`kapacity.runtime.membership`),
        this one included, with its state (``running``/``stopping``/``stopped``/``lost``)."""
        local = self._local_status()
        membership = self.membership
        if membership is not None:
            local["instances"] = membership.instances(membership.record(local=local))
        else:
            local["instances"] = []
        return local

    def _local_status(self) -> dict[str, Any]:
        stages = stages_status(self.stages)
        takeover = self.takeover
        return {
            "instance": self.instance,
            "queue": self.config.queue.type,
            "accepting": self._accepting,
            "pending_points": self._pending + (len(self.buffer) if self.buffer is not None else 0),
            "refused_points": self.refused,
            "stages": stages,
            **({"ingest": self.flusher.status()} if self.flusher is not None else {}),
            **({"takeover": takeover.status()} if takeover is not None else {}),
        }


def stages_status(threads: Sequence[StageThread]) -> dict[str, Any]:
    """Per stage: its own status plus the thread's counters (batches, errors, fatal errors)."""
    stages: dict[str, Any] = {}
    for t in threads:
        try:
            info = t.stage.status()
        except Exception as exc:  # noqa: BLE001 - status must answer even mid-rebalance
            info = {"error": str(exc)}
        info.update(handled=t.handled, errors=t.errors, idle=t.idle.is_set(), fatal_errors=t.fatal_errors,
                    rebuilds=t.rebuilds, dropped=t.dropped)
        loop = getattr(t.stage, "loop", None)  # Kafka stages: batches run again after a lost connection
        if loop is not None and "error" not in info:
            info["connection_reruns"] = loop.connection_reruns
        task_stats = getattr(t.stage, "task_stats", None)  # the stages running tasks
        if task_stats is not None and "error" not in info:
            try:  # published to every instance: numbers only (see kapacity.runtime.taskstats)
                info["task_stats"] = compact(task_stats())
            except Exception as exc:  # noqa: BLE001 - e.g. a dict resized by the stage thread
                log.debug("%s stage: task stats skipped this time: %s", t.stage.name, exc)
        http_out = getattr(t.stage, "http_out", None)  # the stages running tasks
        if http_out is not None and "error" not in info:
            try:  # published too: the API of every instance serves the union (runtime.httpout)
                outs, truncated = bounded(http_out())
                if outs:
                    info["http_out"] = outs
                if truncated:
                    info["http_out_truncated"] = True
            except Exception as exc:  # noqa: BLE001 - e.g. a dict resized by the stage thread
                log.debug("%s stage: httpOut results skipped this time: %s", t.stage.name, exc)
        stages[t.stage.name] = info
    return stages
