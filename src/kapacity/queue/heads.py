"""Where a broadcast kind ends now: the offsets a reader must reach to have read it all.

A :class:`~kapacity.queue.base.BroadcastReader` returns what its client has fetched so far;
on Kafka that lags the log by a fetch round trip or more (librdkafka fetches in the
background). A stage that must apply every definition written *before* the work it is
about to process (read-your-writes across the API: a point written after ``define``
returned runs through that task) asks :func:`log_end` once per batch, after polling the
batch, and reads its reader up to the answer.

Kafka: the reader's ``log_end`` (one ListOffsets request for every partition, on the
reader's own client: no client, thread or connection more). Embedded (SQLite): ``None`` —
a poll reads the table synchronously, so it already sees every committed definition.

Not a ``BroadcastReader`` method, so the queue contract stays as it is for its other
users: any reader (or test double) providing ``log_end(timeout)`` is asked.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kapacity.queue.base import BroadcastReader

__all__ = ["HasLogEnd", "log_end"]


@runtime_checkable
class HasLogEnd(Protocol):
    def log_end(self, timeout: float) -> dict[int, int] | None: ...


def log_end(reader: BroadcastReader, timeout: float) -> dict[int, int] | None:
    """Per partition of the reader's kind, the offset after its last record now; ``None``
    when the backend's poll already sees everything committed (nothing to wait for).

    Raises :class:`~kapacity.queue.errors.QueueUnavailableError` when the broker does not answer within
    ``timeout`` s.
    """
    if isinstance(reader, HasLogEnd):
        return reader.log_end(timeout)
    return None
