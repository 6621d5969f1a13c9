"""Values are JSON documents encoded as UTF-8 bytes; ``None`` is a tombstone (delete).

>>> decode(encode({"a": 1}))
{'a': 1}
"""

from __future__ import annotations

import json
from typing import Any

from kapacity.queue.errors import PoisonMessageError

__all__ = ["decode", "encode"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(value: Any) -> bytes:
    """JSON bytes; raises ``ValueError``/``TypeError`` for what JSON cannot hold (NaN, objects)."""
    return _ENCODER.encode(value).encode("utf-8")


def decode(raw: bytes) -> Any:
    """The JSON value of ``raw``; :class:`PoisonMessageError` when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessageError(f"value is not JSON: {exc}") from None
