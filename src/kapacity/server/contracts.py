"""The narrow interfaces the engine needs from the parts it wires together.

The engine is written against these, not against the concrete pipeline, store and
handler modules, so that each can be tested alone (``tests/unit/server`` uses fakes)
and the adapters in :mod:`kapacity.server.wiring` are the only place that knows the
concrete APIs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kapacity.alert.event import AlertData
from kapacity.handlers.base import Handler
from kapacity.models import Point


@dataclass(frozen=True, slots=True)
class HandlerRef:
    """A handler chained in a TICKscript (``.kafka()``, ``.log('/p')``...)."""

    kind: str
    options: Mapping[str, Any]


@dataclass(slots=True)
class Emitted:
    """An alert event a task produced.

    ``topic`` is the alert topic the event belongs to: ``.topic('name')`` or, like
    Kapacitor, the anonymous per-node topic ``main:<task>:<node>`` — ``previousLevel``
    and the restart recovery come from that topic's stored state. ``publish`` says whether
    topic handlers receive it (only ``.topic()`` events are published).
    """

    alert: AlertData
    topic: str
    handlers: list[HandlerRef] = field(default_factory=list)
    publish: bool = False
    task: str = ""
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class RunningTask(Protocol):
    """A compiled, executing task."""

    def process(self, point: Point) -> list[Emitted]:
        """Run ``point`` through the pipeline; the alert events it caused, in order."""
        ...

    def process_many(self, points: list[Point]) -> list[Emitted]:
        """Run a batch of points through the pipeline, in order; the events they caused."""
        ...

    def tick(self, now_ns: int) -> list[Emitted]:
        """Time passes (deadman, windows flushed by the clock)."""
        ...

    def stats(self) -> dict[str, Any]:
        """``{"task-stats": {...}, "node-stats": {node: {...}}}``."""
        ...

    def dot(self) -> str:
        ...

    def http_out(self, endpoint: str) -> str | None:
        """The JSON of the latest result kept by ``|httpOut(endpoint)``; None if no such endpoint."""
        ...

    def restore_levels(self, levels: Mapping[str, Mapping[str, tuple[int, int]]]) -> None:
        """Give the alert nodes the last (level, time ns) of each event, per topic, from the store."""
        ...

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The full state of every alert node (JSON-ready), keyed by node name."""
        ...

    def restore(self, snapshot: dict[str, dict[str, Any]]) -> None:
        """Restore what :meth:`snapshot` returned."""
        ...


@dataclass(frozen=True, slots=True)
class CompiledScript:
    """The result of checking a script: its implicit dbrps and the alert topics it uses."""

    dbrps: tuple[tuple[str, str], ...] = ()
    handlers: tuple[HandlerRef, ...] = ()


class TaskCompiler(Protocol):
    def check(self, task_id: str, script: str, vars: Mapping[str, Any]) -> CompiledScript:
        """Parse and validate; raises an error whose text names line:col."""
        ...

    def start(self, task_id: str, script: str, vars: Mapping[str, Any]) -> RunningTask:
        ...


class HandlerFactory(Protocol):
    kinds: tuple[str, ...]

    def validate(self, kind: str, options: Mapping[str, Any]) -> None:
        """Raise with the option's name when ``options`` are invalid for ``kind``."""
        ...

    def create(self, kind: str, options: Mapping[str, Any]) -> Handler:
        ...

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per kind, per key: ``{"tags": {...}, "values": {...}}`` for ``/debug/vars``
        (e.g. ``kafka`` per cluster/topic)."""
        ...

    def close(self, timeout: float) -> None:
        """Flush and close every shared resource (producers) within ``timeout`` s."""
        ...


class Repository(Protocol):
    """What the engine persists (the embedded store)."""

    def load_tasks(self) -> list[dict[str, Any]]: ...
    def save_task(self, task: dict[str, Any]) -> None: ...
    def delete_task(self, task_id: str) -> None: ...
    def load_handlers(self) -> list[dict[str, Any]]: ...
    def save_handler(self, spec: dict[str, Any]) -> None: ...
    def delete_handler(self, topic: str, handler_id: str) -> None: ...
    def load_events(self) -> dict[str, dict[str, dict[str, Any]]]: ...
    def save_event(self, topic: str, event_id: str, state: dict[str, Any]) -> None: ...
    def save_events(self, events: Mapping[tuple[str, str], dict[str, Any]], tasks: Iterable[str]) -> None:
        """Event states keyed by (topic, event ID), in one transaction; ``tasks`` produced
        them, so their alert snapshots are no longer current."""
        ...
    def save_alert_snapshot(self, task_id: str, snapshot: dict[str, dict[str, Any]], taken_ns: int) -> None: ...
    def load_alert_snapshot(self, task_id: str) -> dict[str, dict[str, Any]] | None:
        """The task's alert node states, or None when absent or older than its event states."""
        ...
    def delete_alert_snapshot(self, task_id: str) -> None: ...
    def delete_topic(self, topic: str) -> None: ...
    def close(self) -> None: ...

__all__ = ["CompiledScript", "Emitted", "Handler", "HandlerFactory", "HandlerRef", "Repository",
           "RunningTask", "TaskCompiler"]
