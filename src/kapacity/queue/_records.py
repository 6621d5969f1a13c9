"""Shared by the backends: turning record bytes into values, and dead-lettering poison."""

from __future__ import annotations

import base64
import logging
from typing import Any, Final

from kapacity.queue import codec
from kapacity.queue.errors import PoisonMessageError
from kapacity.queue.protection import Protector

__all__ = ["dead_letter_value", "decode_value", "encode_value", "log"]

log: Final = logging.getLogger("kapacity.queue")


def encode_value(protector: Protector | None, kind: str, topic: str, key: str, value: Any) -> bytes | None:
    """Record bytes for ``value`` (``None`` → tombstone); applies message protection."""
    if value is None:
        return None
    payload = codec.encode(value)
    if protector is not None and protector.active:
        return protector.protect(kind, topic, key, payload)
    return payload


def decode_value(protector: Protector | None, raw: bytes | None) -> Any:
    """The value of record bytes; raises :class:`PoisonMessageError`."""
    if raw is None:
        return None
    if protector is not None:
        raw = protector.resolve(raw)
    elif raw.startswith(b"\x00"):
        raise PoisonMessageError("stored message reference but message protection is off")
    return codec.decode(raw)


def dead_letter_value(
    topic: str, partition: int, offset: int, key: str, raw: bytes | None, error: Exception
) -> dict[str, Any]:
    """What the dead-letter kind stores about a poison record (the raw bytes in base64)."""
    log.error(
        "poison record %s[%d]@%d key %r moved to the dead-letter queue: %s",
        topic, partition, offset, key, error,
    )
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "error": str(error),
        "value_base64": base64.b64encode(raw or b"").decode("ascii"),
    }
