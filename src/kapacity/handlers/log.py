"""The ``log`` alert handler: append each alert as one JSON line to a file.

Options (handler file ``options:`` or TICKscript ``.log('/path')``): ``path`` (required,
absolute) and ``mode`` (file mode used when the file is created, default ``0600``).
The line is the same JSON body Kapacitor writes (see ``encode_alert_json``); in the queued
runtime it ends with an ``"eventId"`` field (see :mod:`kapacity.handlers.base`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kapacity.alert.event import AlertData, encode_alert_json
from kapacity.handlers.base import with_event_id
from kapacity.handlers.errors import HandlerOptionError

log = logging.getLogger("kapacity.handlers")

#: Kapacitor's default for files the log handler creates: owner read/write only.
DEFAULT_MODE = 0o600



#: Alerts waiting for a background handler's delivery thread. Bounded. Policy when full:
#: block the caller (backpressure on the pipeline, then on writers) for up to
#: ``FULL_QUEUE_WAIT_S``; only a receiver stuck longer than that makes new alerts be
#: dropped — counted in ``dropped`` and logged, never silent.
DELIVERY_QUEUE_SIZE = 1000
FULL_QUEUE_WAIT_S = 5.0


def option(options: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Read ``name`` from ``options`` case-insensitively (as Kapacitor's mapstructure does)."""
    for key, value in options.items():
        if key.lower() == name.lower():
            return value
    return default


def reject_unknown(options: Mapping[str, Any], known: tuple[str, ...], kind: str) -> None:
    """Fail on an option key this handler does not know, listing the valid ones."""
    valid = {k.lower() for k in known}
    for key in options:
        if key.lower() not in valid:
            raise HandlerOptionError(kind, key, f"unknown option; valid options: {', '.join(known)}")


class BackgroundHandler:
    """Base of handlers whose delivery is I/O: ``handle`` queues, a thread delivers
    (``handle`` returns at once unless the queue is full, see ``FULL_QUEUE_WAIT_S``).

    Subclasses implement :meth:`deliver` (may raise; failures are counted and logged).
    :meth:`handle_event` is :meth:`handle` with the runtime's event id, which ``deliver``
    sends along (see :mod:`kapacity.handlers.base`); ``handle`` gives it None.
    """

    kind = "handler"

    def __init__(self, queue_size: int = DELIVERY_QUEUE_SIZE, full_wait: float = FULL_QUEUE_WAIT_S) -> None:
        self._full_wait = full_wait
        self._queue: queue.Queue[tuple[AlertData, str | None] | None] = queue.Queue(maxsize=queue_size)
        self._counts = {"alerts": 0, "delivered": 0, "errors": 0, "dropped": 0}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"kapacity-{self.kind}", daemon=True)
        self._thread.start()

    def deliver(self, alert: AlertData, event_id: str | None = None) -> None:
        raise NotImplementedError

    def handle(self, alert: AlertData) -> None:
        self.handle_event(alert, None)

    def handle_event(self, alert: AlertData, event_id: str | None) -> None:
        self._counts["alerts"] += 1
        try:
            self._queue.put((alert, event_id), timeout=self._full_wait)
        except queue.Full:
            self._counts["dropped"] += 1
            log.error("%s handler: delivery queue full (%d alerts), alert %s dropped",
                      self.kind, self._queue.maxsize, alert.id)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                alert, event_id = item
                # Without an id, call as before the id existed: subclasses that only take
                # ``deliver(alert)`` keep working on the in-process path.
                if event_id is None:
                    self.deliver(alert)
                else:
                    self.deliver(alert, event_id)
                self._counts["delivered"] += 1
            except Exception as exc:  # noqa: BLE001 - counted and logged, the next alert goes on
                self._counts["errors"] += 1
                log.error("%s handler: alert %s not delivered: %s", self.kind, item[0].id if item else "", exc)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float) -> None:
        if self._closed:
            return
        self._closed = True
        settled = self.flush(timeout)
        if not settled:
            log.error("%s handler: %d alerts still undelivered at close", self.kind,
                      self._queue.unfinished_tasks)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return
        self._thread.join(max(timeout, 0.1))

    def stats(self) -> Mapping[str, int]:
        return dict(self._counts)


@dataclass(frozen=True, slots=True)
class LogOptions:
    path: str
    mode: int = DEFAULT_MODE


def parse_log_options(options: Mapping[str, Any]) -> LogOptions:
    """Validate ``options`` of a ``log`` handler.

    >>> parse_log_options({"path": "/tmp/alerts.log"}).mode == 0o600
    True
    """
    reject_unknown(options, ("path", "mode"), "log")
    path = option(options, "path")
    if not isinstance(path, str) or not path:
        raise HandlerOptionError("log", "path", f"must be a non-empty absolute file path, got {path!r}")
    if not os.path.isabs(path):
        raise HandlerOptionError("log", "path", f"must be an absolute file path, got {path!r}")
    raw_mode = option(options, "mode", DEFAULT_MODE)
    if isinstance(raw_mode, bool):
        raise HandlerOptionError("log", "mode", f"must be a file mode like 0644, got {raw_mode!r}")
    if isinstance(raw_mode, str):
        try:
            mode = int(raw_mode, 8)
        except ValueError:
            raise HandlerOptionError("log", "mode", f"must be an octal file mode like '0644', got {raw_mode!r}") from None
    elif isinstance(raw_mode, int):
        mode = raw_mode
    else:
        raise HandlerOptionError("log", "mode", f"must be a file mode like 0644, got {raw_mode!r}")
    if not 0 <= mode <= 0o7777:
        raise HandlerOptionError("log", "mode", f"out of range: {oct(mode)}")
    return LogOptions(path=path, mode=mode)


class LogHandler(BackgroundHandler):
    """Appends alerts to ``options.path``; the file is opened per alert, like Kapacitor,
    so that log rotation by renaming needs no signal."""

    kind = "log"

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        super().__init__()

    def deliver(self, alert: AlertData, event_id: str | None = None) -> None:
        body = encode_alert_json(alert)
        if event_id is not None:
            body = with_event_id(body, event_id)
        fd = os.open(self.options.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.options.mode)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
