"""InfluxDB line protocol: what ``POST /write`` bodies carry.

``parse_lines`` is pure (the caller passes ``now_ns``) and never raises for bad
lines: it returns the points of the good lines and a :class:`LineError` per bad
one, so a server can answer 400 naming the bad lines and still process the rest.
"""

from kapacity.lineprotocol._format import format_point, format_value
from kapacity.lineprotocol._parse import MAX_QUOTED_CHARS, LineError, ParseResult, parse_lines
from kapacity.lineprotocol._precision import PRECISIONS, PrecisionError, precision_multiplier

__all__ = [
    "MAX_QUOTED_CHARS",
    "PRECISIONS",
    "LineError",
    "ParseResult",
    "PrecisionError",
    "format_point",
    "format_value",
    "parse_lines",
    "precision_multiplier",
]
