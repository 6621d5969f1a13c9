"""The interface every alert handler implements.

A handler receives :class:`~kapacity.alert.event.AlertData` from the alert node or an alert
topic. ``handle`` must not block on I/O: handlers that talk to the network queue the
alert and deliver it in the background, and account for it in their stats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol, runtime_checkable

from kapacity.alert.event import AlertData
from kapacity.alert.gojson import go_string


@runtime_checkable
class Handler(Protocol):
    """An alert handler: non-blocking ``handle``, then ``flush`` / ``close`` with a deadline."""

    def handle(self, alert: AlertData) -> None:
        """Accept one alert; returns at once (delivery happens in the background)."""

    def flush(self, timeout: float) -> bool:
        """Deliver everything accepted so far; True if it all settled within ``timeout`` s."""

    def close(self, timeout: float) -> None:
        """Flush within ``timeout`` s, then release resources; nothing pending is lost silently."""

    def stats(self) -> Mapping[str, int]:
        """Counters for ``/debug/vars`` and ``kapacity stats`` (names as Kapacitor's)."""


# --- event ids (issue 6) --------------------------------------------------------------------
#
# In the queued runtime, handlers other than an in-transaction Kafka target are
# at-least-once: an event processed again after a crash is sent again. Each send then
# carries the event's id (``runtime.records.event_id``, the same on every redelivery) so that
# receivers can drop duplicates. The in-process server path has no event id and sends
# exactly what Kapacitor sends.

#: HTTP request header of the ``post`` handler.
EVENT_ID_HTTP_HEADER: Final = "X-Kapacity-Event-Id"
#: Environment variable of the ``exec`` handler's child process.
EVENT_ID_ENV: Final = "KAPACITY_EVENT_ID"
#: Top-level JSON field appended (last) to the alert body of ``tcp`` and ``log``: Kapacitor's
#: body has no header, and readers of it (Go ``encoding/json`` into ``alert.Data``) skip
#: unknown fields, as they did when Kapacitor itself added ``previousLevel``/``recoverable``.
EVENT_ID_FIELD: Final = "eventId"


@runtime_checkable
class EventIdHandler(Protocol):
    """A handler that can label one delivery with the event's id (see module notes)."""

    def handle_event(self, alert: AlertData, event_id: str) -> None:
        """As :meth:`Handler.handle`, with ``event_id`` sent along so receivers can de-duplicate."""


def with_event_id(body: bytes, event_id: str) -> bytes:
    """The alert JSON ``body`` with ``"eventId"`` appended as its last top-level field;
    every byte before the closing brace is unchanged (a trailing newline is kept).

    >>> with_event_id(b'{"id":"a"}\\n', "0:7:t:0")
    b'{"id":"a","eventId":"0:7:t:0"}\\n'
    """
    end = body.rstrip(b"\n")
    if not end.endswith(b"}"):
        raise ValueError("not a JSON object")
    field = ',"' + EVENT_ID_FIELD + '":' + go_string(event_id) + "}"
    return end[:-1] + field.encode() + body[len(end):]
