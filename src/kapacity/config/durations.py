"""Go duration strings (``"10s"``, ``"1m30s"``, ``"500ms"``) as integer nanoseconds.

Kapacitor's config uses InfluxDB's ``toml.Duration``: a *string* parsed by Go's
``time.ParseDuration``, where the empty string means zero. Integers are refused (a bare
``timeout = 10`` is ambiguous: seconds? nanoseconds?). Config models store durations as
``int`` nanoseconds, like :class:`kapacity.gotypes.Duration`.
"""

from __future__ import annotations

import datetime as _dt
import re
from fractions import Fraction
from typing import Annotated, Final

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo

from kapacity.gotypes import format_duration

__all__ = ["FROM_DOCUMENT", "DurationNs", "parse_duration"]

_UNITS: Final = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART: Final = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]+)")
_MAX_INT64: Final = 2**63 - 1
_HINT: Final = 'a duration like "10s", "1m30s" or "500ms" (units: ns, us, ms, s, m, h)'


def parse_duration(text: str) -> int:
    """Parse like Go's ``time.ParseDuration`` (``""`` → 0, as InfluxDB's ``toml.Duration``).

    >>> parse_duration("1m30s")
    90000000000
    """
    s = text.strip()
    if s in ("", "0", "+0", "-0"):
        return 0
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    pos = 0
    total = Fraction(0)
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}: expected {_HINT}")
        number, unit = m.group(1), m.group(2)
        if unit not in _UNITS:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r}; expected {_HINT}")
        total += Fraction(number) * _UNITS[unit]
        pos = m.end()
    if pos == 0:
        raise ValueError(f"invalid duration {text!r}: expected {_HINT}")
    ns = int(total)  # Go truncates fractional nanoseconds
    if ns > _MAX_INT64:
        raise ValueError(f"invalid duration {text!r}: out of range")
    return sign * ns


FROM_DOCUMENT: Final = "kapacity.config.from_document"
"""Validation-context flag set by the loader: values come from a file, so be as strict as Go."""


def _coerce(value: object, info: ValidationInfo) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, _dt.timedelta):
        return (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    if isinstance(value, int) and not isinstance(value, bool):
        # In code an int is nanoseconds; in a file it is ambiguous (seconds? ns?), as in Go.
        if info.context and info.context.get(FROM_DOCUMENT):
            raise ValueError(f"durations are strings, got the number {value}: write {_HINT}")
    return value


DurationNs = Annotated[
    int,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A duration in integer nanoseconds, written in files as a Go duration string."""
