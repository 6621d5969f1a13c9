"""Writing points as line protocol (the inverse of ``parse_lines``).

Names cannot round-trip when they contain a newline, start with ``#`` or hold a
backslash right before a character that needs escaping: line protocol has no
way to write those (InfluxDB has the same limits).
"""

from __future__ import annotations

from kapacity.lineprotocol._precision import precision_multiplier
from kapacity.models import FieldValue, Point

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})


def format_value(value: FieldValue) -> str:
    """One field value: floats in shortest round-trip form, ints with ``i``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.translate(_STRING) + '"'


def format_point(point: Point, precision: str = "n") -> str:
    """One line (without newline); the time is written in ``precision`` units (floored).

    >>> format_point(Point("cpu", {"host": "a b"}, {"v": 1.5}, 10))
    'cpu,host=a\\\\ b v=1.5 10'
    """
    multiplier = precision_multiplier(precision)
    parts = [point.name.translate(_MEASUREMENT)]
    for key in sorted(point.tags):
        parts.append(f",{key.translate(_KEY)}={point.tags[key].translate(_KEY)}")
    fields = ",".join(
        f"{key.translate(_KEY)}={format_value(value)}" for key, value in point.fields.items()
    )
    return f"{''.join(parts)} {fields} {point.time // multiplier}"
