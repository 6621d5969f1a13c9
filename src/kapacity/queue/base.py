"""The queue contract: what every backend (embedded SQLite, Kafka) provides.

* ``emit(kind, key, value)`` writes one JSON value and returns once it is durable (the
  broker's ack / the SQLite commit). ``emit_many`` writes a batch with one wait;
  ``emit_async`` buffers and ``flush`` waits. ``delete`` writes a tombstone.
* ``consumer(kind, group)``: competing consumers. Each message goes to one consumer of the
  group; it is handed out again unless committed (at-least-once). ``receive`` is the
  one-call form: poll a batch, run the handler on each message, commit after handling.
* ``commit`` marks messages handled. It need not wait for the commit to be durable (Kafka
  sends it without a round trip; embedded commits at once), but it is durable at the latest
  when ``close`` returns or, on Kafka, when its partition is revoked in a rebalance
  (committed synchronously then). A commit lost before that — a crash, a failed
  request — only means those messages are delivered again: at-least-once, never a loss.
* ``broadcast(kind)``: every reader reads everything from the beginning and never commits
  (definitions and state).

A record that cannot be decoded is a *poison* record: it is logged, counted, copied to the
``dead_letter`` kind and skipped — it never stops a consumer.

Delivery invariant for ``receive``: handler → commit, in that order. If the handler raises,
the messages it handled are committed, the rest of the batch (including the failing one) is
rewound so it is delivered again, and the exception propagates.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from kapacity.queue.kinds import Kind
from kapacity.queue.naming import Naming
from kapacity.queue.protection import Protector

__all__ = [
    "DEFAULT_BATCH",
    "BroadcastReader",
    "GroupConsumer",
    "Handler",
    "Message",
    "Queue",
    "QueueStats",
]

#: Messages per poll: large enough to amortise a round trip, small enough that a batch
#: redelivered after a crash is cheap to process again.
DEFAULT_BATCH: Final = 500


class Message(NamedTuple):
    """One decoded message. ``value`` is ``None`` for a tombstone (a deleted key).

    A named tuple: immutable and cheap to build on the hot receive path.
    """

    kind: Kind
    key: str
    value: Any
    offset: int
    partition: int = 0
    timestamp_ms: int = 0


Handler = Callable[[Message], None]


@dataclass
class QueueStats:
    """Counters of what the queue did (read by metrics; nothing happens uncounted)."""

    emitted: int = 0
    received: int = 0
    poison: int = 0
    dead_lettered: int = 0
    refused: int = 0
    commit_failures: int = 0
    """Commits the broker refused or never answered (their messages may come again)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


class GroupConsumer(ABC):
    """A member of a consumer group on one kind."""

    @abstractmethod
    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        """Up to ``max_messages``, waiting at most ``timeout`` s for the first one."""

    @abstractmethod
    def commit(self, messages: Sequence[Message]) -> None:
        """Mark these messages (and everything before them in their partition) handled.

        May return before the commit is durable; it is durable at the latest after
        :meth:`close` (see the module docstring).
        """

    @abstractmethod
    def rewind(self, messages: Sequence[Message]) -> None:
        """Hand these uncommitted messages out again."""

    @abstractmethod
    def close(self) -> None:
        """Make every commit durable, then leave the group; uncommitted messages go to
        other members."""


class BroadcastReader(ABC):
    """Reads a kind from the beginning; keeps its own position; never commits."""

    @abstractmethod
    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]: ...

    @abstractmethod
    def close(self) -> None: ...


class Queue(ABC):
    """A queue backend. Thread-safe for emitting; each consumer/reader belongs to one thread."""

    naming: Naming
    stats: QueueStats
    protector: Protector | None
    """Message protection (``None``: any size inline)."""

    def __init__(self) -> None:
        self._receivers: dict[tuple[Kind, str], GroupConsumer] = {}
        self._receivers_lock = threading.Lock()

    @abstractmethod
    def emit(self, kind: Kind, key: str, value: Any) -> None: ...

    @abstractmethod
    def emit_many(self, kind: Kind, items: Iterable[tuple[str, Any]]) -> None: ...

    @abstractmethod
    def emit_async(self, kind: Kind, key: str, value: Any) -> None: ...

    @abstractmethod
    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every ``emit_async`` message is durable; raises the first failure."""

    @abstractmethod
    def delete(self, kind: Kind, key: str) -> None: ...

    @abstractmethod
    def consumer(self, kind: Kind, group: str) -> GroupConsumer: ...

    @abstractmethod
    def broadcast(self, kind: Kind) -> BroadcastReader: ...

    @abstractmethod
    def _close_backend(self) -> None: ...

    def receive(
        self,
        kind: Kind,
        group: str,
        handler: Handler,
        max_messages: int = DEFAULT_BATCH,
        timeout: float = 1.0,
    ) -> int:
        """Poll one batch for ``group`` and handle it; returns how many were handled."""
        with self._receivers_lock:
            consumer = self._receivers.get((kind, group))
            if consumer is None:
                consumer = self._receivers[(kind, group)] = self.consumer(kind, group)
        batch = consumer.poll(max_messages, timeout)
        for i, message in enumerate(batch):
            try:
                handler(message)
            except BaseException:
                if i:
                    consumer.commit(batch[:i])
                consumer.rewind(batch[i:])
                raise
        if batch:
            consumer.commit(batch)
        return len(batch)

    def close(self) -> None:
        with self._receivers_lock:
            receivers, self._receivers = list(self._receivers.values()), {}
        for consumer in receivers:
            consumer.close()
        self._close_backend()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
