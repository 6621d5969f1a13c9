"""The engine's :class:`~kapacity.server.contracts.Repository` over ``kapacity.state.Store``.

The store file is ``<data_dir>/kapacity.db``. A corrupt file, a foreign database or one
written by a newer kapacity raises :class:`kapacity.state.StoreError` at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kapacity.alert.handlerspec import HandlerSpec
from kapacity.alert.topics import EventState
from kapacity.state import Store, TaskRecord

STORE_FILE = "kapacity.db"


class StoreRepository:
    def __init__(self, store: Store, *, persist_events: bool = True) -> None:
        self.store = store
        self.persist_events = persist_events

    def load_tasks(self) -> list[dict[str, Any]]:
        return [
            {"id": t.id, "script": t.script, "dbrps": t.dbrps, "type": t.type, "status": t.status,
             "vars": t.vars, "created": t.created, "modified": t.modified,
             "last-enabled": t.last_enabled, "error": t.error}
            for t in self.store.list_tasks()
        ]

    def save_task(self, task: dict[str, Any]) -> None:
        self.store.put_task(TaskRecord(
            id=task["id"], type=task["type"], dbrps=list(task["dbrps"]), script=task["script"],
            vars=dict(task["vars"]), status=task["status"], created=task["created"],
            modified=task["modified"], last_enabled=int(task.get("last-enabled", 0)),
            error=str(task.get("error", ""))))

    def delete_task(self, task_id: str) -> None:
        self.store.delete_task(task_id)

    def load_handlers(self) -> list[dict[str, Any]]:
        return [h.to_dict() for h in self.store.list_handlers()]

    def save_handler(self, spec: dict[str, Any]) -> None:
        self.store.put_handler(HandlerSpec.from_dict(spec))

    def delete_handler(self, topic: str, handler_id: str) -> None:
        self.store.delete_handler(topic, handler_id)

    def load_events(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {t: {eid: s.to_dict() for eid, s in self.store.list_event_states(t).items()}
                for t in self.store.list_topics()}

    def save_event(self, topic: str, event_id: str, state: dict[str, Any]) -> None:
        self.save_events({(topic, event_id): state}, ())

    def save_events(self, events: Mapping[tuple[str, str], dict[str, Any]], tasks: Iterable[str]) -> None:
        states = ([(t, eid, EventState.from_dict(s)) for (t, eid), s in events.items()]
                  if self.persist_events else [])
        self.store.put_event_states(states, set(tasks))

    def save_alert_snapshot(self, task_id: str, snapshot: dict[str, dict[str, Any]], taken_ns: int) -> None:
        self.store.put_alert_snapshot(task_id, snapshot, taken_ns)

    def load_alert_snapshot(self, task_id: str) -> dict[str, dict[str, Any]] | None:
        return self.store.get_alert_snapshot(task_id)

    def delete_alert_snapshot(self, task_id: str) -> None:
        self.store.delete_alert_states(task_id)

    def delete_topic(self, topic: str) -> None:
        self.store.delete_topic(topic)

    def close(self) -> None:
        self.store.close()


def open_store(data_dir: Path, *, persist_events: bool = True) -> StoreRepository:
    return StoreRepository(Store(Path(data_dir) / STORE_FILE), persist_events=persist_events)
