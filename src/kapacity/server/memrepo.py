"""An in-memory :class:`~kapacity.server.contracts.Repository` (tests, ``--no-store`` runs)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any


class MemoryRepository:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.handlers: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: dict[str, dict[str, dict[str, Any]]] = {}
        self.snapshots: dict[str, dict[str, dict[str, Any]]] = {}
        #: Tasks whose snapshot no later event state superseded.
        self.snapshot_current: set[str] = set()
        self.closed = False

    def load_tasks(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(t) for t in self.tasks.values()]

    def save_task(self, task: dict[str, Any]) -> None:
        self.tasks[task["id"]] = copy.deepcopy(task)

    def delete_task(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)
        self.delete_alert_snapshot(task_id)

    def load_handlers(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(h) for h in self.handlers.values()]

    def save_handler(self, spec: dict[str, Any]) -> None:
        self.handlers[(spec["topic"], spec["id"])] = copy.deepcopy(spec)

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self.handlers.pop((topic, handler_id), None)

    def load_events(self) -> dict[str, dict[str, dict[str, Any]]]:
        return copy.deepcopy(self.events)

    def save_event(self, topic: str, event_id: str, state: dict[str, Any]) -> None:
        self.events.setdefault(topic, {})[event_id] = dict(state)

    def save_events(self, events: Mapping[tuple[str, str], dict[str, Any]], tasks: Iterable[str]) -> None:
        for (topic, event_id), state in events.items():
            self.save_event(topic, event_id, state)
        for t in tasks:
            self.snapshot_current.discard(t)

    def save_alert_snapshot(self, task_id: str, snapshot: dict[str, dict[str, Any]], taken_ns: int) -> None:
        del taken_ns
        self.snapshots[task_id] = copy.deepcopy(snapshot)
        self.snapshot_current.add(task_id)

    def load_alert_snapshot(self, task_id: str) -> dict[str, dict[str, Any]] | None:
        if task_id not in self.snapshot_current:
            return None
        return copy.deepcopy(self.snapshots.get(task_id))

    def delete_alert_snapshot(self, task_id: str) -> None:
        self.snapshots.pop(task_id, None)
        self.snapshot_current.discard(task_id)

    def delete_topic(self, topic: str) -> None:
        self.events.pop(topic, None)
        for key in [k for k in self.handlers if k[0] == topic]:
            del self.handlers[key]

    def close(self) -> None:
        self.closed = True
