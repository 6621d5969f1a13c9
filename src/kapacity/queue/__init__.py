"""kapacity's internal queue: one small interface, an embedded (SQLite) and a Kafka backend.

>>> from kapacity.queue import Kind, Naming
>>> Naming().topic(Kind.EVENTS)
'kapacity_events'

Backends are imported lazily (``open_queue``, ``EmbeddedQueue``, ``KafkaQueue``) so that the
config package can import the pure parts (kinds, naming, property translation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kapacity.queue.kinds import KINDS, SPECS, Kind, KindSpec, parse_kind
from kapacity.queue.naming import DEFAULT_PREFIX, Naming

if TYPE_CHECKING:
    from kapacity.queue.base import BroadcastReader, GroupConsumer, Message, Queue
    from kapacity.queue.embedded import EmbeddedQueue
    from kapacity.queue.errors import MessageTooLargeError, QueueError, QueueUnavailableError
    from kapacity.queue.factory import open_queue
    from kapacity.queue.kafka import KafkaQueue

__all__ = [
    "DEFAULT_PREFIX",
    "KINDS",
    "SPECS",
    "BroadcastReader",
    "EmbeddedQueue",
    "GroupConsumer",
    "KafkaQueue",
    "Kind",
    "KindSpec",
    "Message",
    "MessageTooLargeError",
    "Naming",
    "Queue",
    "QueueError",
    "QueueUnavailableError",
    "open_queue",
    "parse_kind",
]

_LAZY = {
    "BroadcastReader": "kapacity.queue.base",
    "GroupConsumer": "kapacity.queue.base",
    "Message": "kapacity.queue.base",
    "Queue": "kapacity.queue.base",
    "EmbeddedQueue": "kapacity.queue.embedded",
    "KafkaQueue": "kapacity.queue.kafka",
    "MessageTooLargeError": "kapacity.queue.errors",
    "QueueError": "kapacity.queue.errors",
    "QueueUnavailableError": "kapacity.queue.errors",
    "open_queue": "kapacity.queue.factory",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kapacity.queue' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
