"""The queue-based runtime: ``Runtime(config, data_dir)``.

>>> rt = Runtime(config, "/var/lib/kapacity", instance="a")      # doctest: +SKIP
>>> rt.start()                                                    # doctest: +SKIP
>>> rt.define_task("cpu", "stream|from().measurement('cpu')|alert()...")  # doctest: +SKIP
>>> rt.submit_points(points)   # durable in the queue on return  # doctest: +SKIP
>>> rt.stop(10.0)                                                 # doctest: +SKIP

The HTTP write path calls :meth:`Runtime.submit_points`; a full ingest buffer raises the
retriable :class:`~kapacity.runtime.errors.Backpressure` (answer 503 + Retry-After).
"""

from __future__ import annotations

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
from kapacity.runtime.errors import Backpressure, RuntimeStateError
from kapacity.runtime.records import TaskDefinition, handler_key, point_value, series_key

__all__ = ["DEFAULT_MAX_PENDING", "Runtime"]

#: Points accepted by ``submit_points`` and not yet durable in the queue (~600 B each parsed:
#: 100k points bound the ingest memory to about 60 MB).
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

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        from kapacity.queue.factory import open_queue

        config = self.config
        if str(config.data_dir) != str(self.data_dir):
            config = config.model_copy(update={"data_dir": str(self.data_dir)})
        self.queue = open_queue(config, instance_id=self.instance)
        if self._run_stages:
            self.stages = start_stages(config, self.queue, self.state_dir, self.instance)
        self._accepting = True

    @property
    def state_dir(self) -> Path:
        return self.config.queue.kafka.state_dir(str(self.data_dir))

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop accepting, let the stages finish what is queued (a poll that finds nothing),
        close handlers and commit; True when every stage ended within ``timeout``."""
        self._accepting = False
        deadline = time.monotonic() + timeout
        ok = True
        for stage in self.stages:  # engine first: its events are then delivered
            ok = stage.stop(max(0.1, deadline - time.monotonic())) and ok
        if self.queue is not None:
            self.queue.close()
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
        """
        queue = self._queue()
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
        """Instance, backend, and per stage: partitions owned, lag, restore progress, counters."""
        stages: dict[str, Any] = {}
        for t in self.stages:
            try:
                info = t.stage.status()
            except Exception as exc:  # noqa: BLE001 - status must answer even mid-rebalance
                info = {"error": str(exc)}
            info.update(handled=t.handled, errors=t.errors, idle=t.idle.is_set())
            stages[t.stage.name] = info
        return {
            "instance": self.instance,
            "queue": self.config.queue.type,
            "accepting": self._accepting,
            "pending_points": self._pending,
            "refused_points": self.refused,
            "stages": stages,
        }
