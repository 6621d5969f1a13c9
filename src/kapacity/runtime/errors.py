"""Runtime errors::

    KapacityError
     └── RuntimeStateError   the runtime was used in the wrong state (not started, stopped)
          └── Backpressure   the ingest buffer is full: retry later (retriable)
     └── TargetUnavailable   a handler target holds an event unacknowledged (retriable)
"""

from __future__ import annotations

from kapacity.errors import KapacityError

__all__ = ["Backpressure", "RuntimeStateError", "TargetUnavailable"]


class RuntimeStateError(KapacityError):
    """The runtime is not running (not started yet, stopping or stopped)."""


class Backpressure(RuntimeStateError):
    """Points were refused because the bounded ingest buffer stayed full; retry later."""

    retriable = True

    def __init__(self, pending: int, limit: int, waited_s: float) -> None:
        self.pending, self.limit, self.waited_s = pending, limit, waited_s
        super().__init__(
            f"ingest buffer full ({pending} of {limit} points waiting for the queue after {waited_s:g}s); retry later"
        )


class TargetUnavailable(KapacityError):
    """A handler target neither acknowledged an event nor reported it failed (unreachable):
    the delivery batch is run again later, from that event on."""

    retriable = True

    def __init__(self, target: str, event_id: str, waited_s: float) -> None:
        self.target, self.event_id, self.waited_s = target, event_id, waited_s
        super().__init__(f"{target}: event {event_id} not acknowledged within {waited_s:g}s; delivery waits")
