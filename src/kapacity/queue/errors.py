"""Queue errors.

::

    KapacityError
     └── QueueError
          ├── QueueUnavailableError   the broker / database cannot be reached (retriable)
          ├── TopicAdminError         a topic could not be created or its configs updated
          ├── MessageTooLargeError    a payload is above the hard limit (names size and limit)
          ├── PoisonMessageError      a record cannot be decoded (dead-lettered, never fatal)
          └── QueueClosedError        the queue was used after close()
"""

from __future__ import annotations

from kapacity.errors import KapacityError

__all__ = [
    "MessageTooLargeError",
    "PoisonMessageError",
    "QueueClosedError",
    "QueueError",
    "QueueUnavailableError",
    "TopicAdminError",
]


class QueueError(KapacityError):
    """Base of the queue's errors."""


class QueueUnavailableError(QueueError):
    """The backend cannot be reached within the bounded start-up / operation time."""

    retriable = True


class TopicAdminError(QueueError):
    """The cluster refused to create a topic or to update its configs."""


class MessageTooLargeError(QueueError):
    """A payload exceeds ``message-protection.hard-limit``; the message was not sent."""

    def __init__(self, kind: str, key: str, size: int, limit: int, *, hard: bool = True) -> None:
        self.kind, self.key, self.size, self.limit = kind, key, size, limit
        setting = (
            "queue.kafka.message-protection.hard-limit"
            if hard
            else "the producer's message.max.bytes (max.request.size); set "
            "queue.kafka.message-protection.soft-limit to send larger payloads via storage"
        )
        super().__init__(
            f"{kind} message {key!r} is {size} bytes, above the {'hard ' if hard else ''}limit "
            f"of {limit} bytes ({setting}); it was refused"
        )


class PoisonMessageError(QueueError):
    """A record's value cannot be decoded (not JSON, or a dangling storage reference)."""


class QueueClosedError(QueueError):
    """The queue (or one of its consumers) was used after ``close()``."""
