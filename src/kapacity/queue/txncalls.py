"""Failure kinds of the transactional loop's clients, and calls bounded by our own deadline.

:class:`BoundedCaller` exists because librdkafka's transactional calls take a timeout yet
can block past it (see :mod:`kapacity.queue.transactional`); :func:`is_fatal` tells the
errors after which a client cannot go on.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from confluent_kafka import KafkaError, KafkaException

from kapacity.queue.errors import QueueError, QueueUnavailableError

__all__ = ["BoundedCaller", "ConnectionLostError", "FatalLoopError", "StuckCallError", "is_connection_loss", "is_fatal"]


class FatalLoopError(QueueError):
    """A client of the loop failed for good: fenced by another client with the same
    ``group.instance.id`` or transactional id, in librdkafka's fatal state, or stuck in a
    call (:class:`StuckCallError`). No retry of the batch can succeed: the loop must be
    dropped (and built again with new clients, if the stage is still this process's to run)."""

    retriable = False


class ConnectionLostError(QueueUnavailableError):
    """The connection to the cluster was lost while a transaction was open: the transaction
    is aborted and its batch runs again (a broker may have dropped part of it)."""


class StuckCallError(FatalLoopError):
    """A blocking client call did not return within its bound (or the loop was interrupted
    while waiting for it): the client is left to the thread blocked in it, never used again."""


_T = TypeVar("_T")


class BoundedCaller:
    """Runs blocking client calls on one helper thread and waits for each with a deadline.

    librdkafka's transactional calls take a timeout but can block past it (issue #5511):
    the caller then gets :class:`StuckCallError` instead of hanging with them, and so does a
    caller waiting when :meth:`interrupt` is called (a stop that cannot wait any longer),
    and every later caller. After that the helper thread may stay blocked: the caller is
    unusable (``stuck``).

    >>> c = BoundedCaller("doc")
    >>> c.call(lambda: 6 * 7, timeout=1.0)
    42
    >>> c.close()
    """

    def __init__(self, name: str) -> None:
        self.name = name
        #: Set once a call outlived its bound or was interrupted: no call is accepted any more.
        self.stuck: str | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], _Pending] | None] = queue.SimpleQueue()
        self._interrupted = threading.Event()
        self._thread: threading.Thread | None = None

    def call(self, fn: Callable[[], _T], timeout: float, what: str = "call") -> _T:
        """``fn()``'s result (or its exception), or :class:`StuckCallError` after ``timeout`` s."""
        if self._interrupted.is_set() and self.stuck is None:
            self.stuck = f"{what} not started (interrupted)"
        if self.stuck is not None:
            raise StuckCallError(f"{self.name}: {self.stuck}")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"kapacity-call-{self.name}", daemon=True)
            self._thread.start()
        pending = _Pending()
        self._calls.put((fn, pending))
        deadline = time.monotonic() + timeout
        while not pending.done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if self._interrupted.is_set() or time.monotonic() >= deadline:
                why = "interrupted" if self._interrupted.is_set() else f"no answer within {timeout:g}s"
                self.stuck = f"{what} blocked ({why})"
                raise StuckCallError(f"{self.name}: {self.stuck}")
        if pending.error is not None:
            raise pending.error
        result: _T = pending.result
        return result

    def interrupt(self) -> None:
        """Make a waiting :meth:`call`, and every later one, give up (from any thread)."""
        self._interrupted.set()

    def close(self) -> None:
        """Let the helper thread end (a stuck one ends, if ever, when its call returns)."""
        if self._thread is not None:
            self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            fn, pending = item
            try:
                pending.result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
                pending.error = exc
            pending.done.set()


class _Pending:
    """One call's outcome, handed from the helper thread to the caller."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


#: Errors after which a client cannot go on. A consumer whose static membership was taken by
#: another client with its ``group.instance.id`` gets FENCED_INSTANCE_ID (librdkafka makes it
#: fatal); a producer whose transactional id was initialised by another gets PRODUCER_FENCED
#: / INVALID_PRODUCER_EPOCH, or the local _FENCED.
_FENCED_CODES: Final = frozenset({
    KafkaError._FATAL, KafkaError._FENCED, KafkaError.FENCED_INSTANCE_ID,
    KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
})


def is_fatal(err: object) -> bool:
    """Whether a ``KafkaError`` (or a ``KafkaException`` carrying one) ends its client.

    >>> is_fatal(KafkaError(KafkaError.FENCED_INSTANCE_ID)), is_fatal(KafkaError(KafkaError._TRANSPORT))
    (True, False)
    """
    if isinstance(err, KafkaException) and err.args:
        err = err.args[0]
    if not isinstance(err, KafkaError):
        return False
    return bool(err.fatal()) or err.code() in _FENCED_CODES


#: Errors a client reports when it lost its connections (the broker went away).
_CONNECTION_LOSS_CODES: Final = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})


def is_connection_loss(err: object) -> bool:
    """Whether a ``KafkaError`` says a connection to the cluster was lost.

    >>> is_connection_loss(KafkaError(KafkaError._ALL_BROKERS_DOWN)), is_connection_loss(KafkaError(KafkaError._FENCED))
    (True, False)
    """
    return isinstance(err, KafkaError) and err.code() in _CONNECTION_LOSS_CODES
