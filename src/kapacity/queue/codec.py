"""Values are JSON documents encoded as UTF-8 bytes; ``None`` is a tombstone (delete).

orjson does the work (about ten times faster than the standard library at encoding, which
is what bounds queue throughput). JSON has no NaN or infinities: orjson writes them as
``null``. Keys of objects must be strings.

The format is the wire format of every kind, including changelogs that persist across
upgrades: it must stay readable by every later version. A binary format would not pay:
decoding is dominated by building the Python dicts and strings, and orjson does that faster
than the C decoders of binary formats (a 58-byte point: orjson 0.67 µs, marshal 1.0 µs,
pickle 1.06 µs per record, measured for issue 5).

>>> decode(encode({"a": 1}))
{'a': 1}
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from kapacity.queue.errors import PoisonMessageError

__all__ = ["SLOW", "decode", "decode_fast", "encode", "loads"]

SLOW: Final = object()
"""What :func:`decode_fast` returns when the full :func:`decode` (with errors) must run."""

encode: Final = orjson.dumps
"""JSON bytes of a value; raises ``TypeError`` for what JSON cannot hold (objects, int keys)."""


loads: Final = orjson.loads
"""The raw decoder for batch fast paths: raises ``ValueError`` for anything that is not a JSON
document (a tombstone's ``None``, a storage reference, poison) — the caller then falls back to
:func:`decode` record by record, so errors are still reported one record at a time."""


def decode(raw: bytes) -> Any:
    """The JSON value of ``raw``; :class:`PoisonMessageError` when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessageError(f"value is not JSON: {exc}") from None


def decode_fast(raw: bytes) -> Any:
    """The value of ``raw``, or :data:`SLOW` (a storage reference, or not JSON).

    The hot path: raises nothing, so good records never pay for exception handling.
    """
    if raw[:1] == b"\x00":
        return SLOW
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return SLOW
