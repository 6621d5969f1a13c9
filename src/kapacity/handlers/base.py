"""The interface every alert handler implements.

A handler receives :class:`~kapacity.alert.event.AlertData` from the alert node or an alert
topic. ``handle`` must not block on I/O: handlers that talk to the network queue the
alert and deliver it in the background, and account for it in their stats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from kapacity.alert.event import AlertData


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
