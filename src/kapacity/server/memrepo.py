"""An in-memory :class:`~kapacity.server.contracts.Repository` (tests, ``--no-store`` runs)."""

from __future__ import annotations

import copy
from typing import Any


class MemoryRepository:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.handlers: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: dict[str, dict[str, dict[str, Any]]] = {}
        self.closed = False

    def load_tasks(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(t) for t in self.tasks.values()]

    def save_task(self, task: dict[str, Any]) -> None:
        self.tasks[task["id"]] = copy.deepcopy(task)

    def delete_task(self, task_id: str) -> None:
        self.tasks.pop(task_id, None)

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

    def delete_topic(self, topic: str) -> None:
        self.events.pop(topic, None)
        for key in [k for k in self.handlers if k[0] == topic]:
            del self.handlers[key]

    def close(self) -> None:
        self.closed = True
