"""Go's ``time.Time.Format`` with reference-time layouts, for UTC times.

The layout is Go's reference time ``Mon Jan 2 15:04:05 MST 2006`` written the
way the output should look::

    >>> format_time(1_700_000_000_123_000_000, "2006-01-02T15:04:05.000Z07:00")
    '2023-11-14T22:13:20.123Z'

kapacity keeps every time in UTC, so zones print as ``UTC``, ``Z`` or ``+00:00``.
"""

from __future__ import annotations

import datetime as _dt
import enum
from functools import lru_cache
from typing import Final

NANOS_PER_SECOND: Final = 1_000_000_000
_EPOCH: Final = _dt.datetime(1970, 1, 1)


class Month(enum.IntEnum):
    """Go's ``time.Month``: compares as a number, prints as its English name."""

    January = 1
    February = 2
    March = 3
    April = 4
    May = 5
    June = 6
    July = 7
    August = 8
    September = 9
    October = 10
    November = 11
    December = 12

    def String(self) -> str:  # noqa: N802 - Go method name
        return self.name

    def __str__(self) -> str:
        return self.name


class Weekday(enum.IntEnum):
    """Go's ``time.Weekday`` (Sunday = 0)."""

    Sunday = 0
    Monday = 1
    Tuesday = 2
    Wednesday = 3
    Thursday = 4
    Friday = 5
    Saturday = 6

    def String(self) -> str:  # noqa: N802
        return self.name

    def __str__(self) -> str:
        return self.name


# Layout chunk codes.
_LONG_MONTH, _MONTH, _NUM_MONTH, _ZERO_MONTH = "January", "Jan", "1", "01"
_LONG_WEEKDAY, _WEEKDAY = "Monday", "Mon"
_DAY, _UNDER_DAY, _ZERO_DAY = "2", "_2", "02"
_UNDER_YEARDAY, _ZERO_YEARDAY = "__2", "002"
_HOUR, _HOUR12, _ZERO_HOUR12 = "15", "3", "03"
_MINUTE, _ZERO_MINUTE = "4", "04"
_SECOND, _ZERO_SECOND = "5", "05"
_LONG_YEAR, _YEAR = "2006", "06"
_PM, _PM_LOWER = "PM", "pm"
_TZ = "MST"
_ZONES: Final = (
    ("Z070000", "Z"), ("Z07:00:00", "Z"), ("Z0700", "Z"), ("Z07:00", "Z"), ("Z07", "Z"),
    ("-070000", "+000000"), ("-07:00:00", "+00:00:00"), ("-0700", "+0000"), ("-07:00", "+00:00"),
    ("-07", "+00"),
)  # fmt: skip
_STD_0X: Final = (_ZERO_MONTH, _ZERO_DAY, _ZERO_HOUR12, _ZERO_MINUTE, _ZERO_SECOND, _YEAR)


def _starts_lower(s: str) -> bool:
    return bool(s) and "a" <= s[0] <= "z"


def _next_chunk(layout: str) -> tuple[str, str, str]:
    """Split ``layout`` into (literal prefix, std chunk or "", suffix), like Go's nextStdChunk."""
    n = len(layout)
    for i, c in enumerate(layout):
        rest = layout[i:]
        if c == "J" and rest.startswith("Jan"):
            if rest.startswith("January"):
                return layout[:i], _LONG_MONTH, layout[i + 7 :]
            if not _starts_lower(layout[i + 3 :]):
                return layout[:i], _MONTH, layout[i + 3 :]
        elif c == "M":
            if rest.startswith("Mon"):
                if rest.startswith("Monday"):
                    return layout[:i], _LONG_WEEKDAY, layout[i + 6 :]
                if not _starts_lower(layout[i + 3 :]):
                    return layout[:i], _WEEKDAY, layout[i + 3 :]
            if rest.startswith("MST"):
                return layout[:i], _TZ, layout[i + 3 :]
        elif c == "0":
            if i + 1 < n and "1" <= layout[i + 1] <= "6":
                return layout[:i], _STD_0X[ord(layout[i + 1]) - ord("1")], layout[i + 2 :]
            if rest.startswith("002"):
                return layout[:i], _ZERO_YEARDAY, layout[i + 3 :]
        elif c == "1":
            if rest.startswith("15"):
                return layout[:i], _HOUR, layout[i + 2 :]
            return layout[:i], _NUM_MONTH, layout[i + 1 :]
        elif c == "2":
            if rest.startswith("2006"):
                return layout[:i], _LONG_YEAR, layout[i + 4 :]
            return layout[:i], _DAY, layout[i + 1 :]
        elif c == "_":
            if rest.startswith("_2"):
                if rest.startswith("_2006"):
                    return layout[: i + 1], _LONG_YEAR, layout[i + 5 :]
                return layout[:i], _UNDER_DAY, layout[i + 2 :]
            if rest.startswith("__2"):
                return layout[:i], _UNDER_YEARDAY, layout[i + 3 :]
        elif c == "3":
            return layout[:i], _HOUR12, layout[i + 1 :]
        elif c == "4":
            return layout[:i], _MINUTE, layout[i + 1 :]
        elif c == "5":
            return layout[:i], _SECOND, layout[i + 1 :]
        elif c == "P" and rest.startswith("PM"):
            return layout[:i], _PM, layout[i + 2 :]
        elif c == "p" and rest.startswith("pm"):
            return layout[:i], _PM_LOWER, layout[i + 2 :]
        elif c in "-Z":
            for pattern, _ in _ZONES:
                if rest.startswith(pattern):
                    return layout[:i], pattern, layout[i + len(pattern) :]
        elif c in ".," and i + 1 < n and layout[i + 1] in "09":
            ch = layout[i + 1]
            j = i + 1
            while j < n and layout[j] == ch:
                j += 1
            if not (j < n and layout[j].isdigit()):
                return layout[:i], c + layout[i + 1 : j], layout[j:]
    return layout, "", ""


@lru_cache(maxsize=256)
def _compile(layout: str) -> tuple[tuple[str, str], ...]:
    parts = []
    while layout:
        prefix, std, layout = _next_chunk(layout)
        parts.append((prefix, std))
    return tuple(parts)


_ZONE_TEXT: Final = dict(_ZONES)


def format_time(ns: int, layout: str) -> str:
    """Format UTC nanoseconds since the epoch with a Go layout."""
    secs, nanos = divmod(ns, NANOS_PER_SECOND)
    t = _EPOCH + _dt.timedelta(seconds=secs)
    out: list[str] = []
    for prefix, std in _compile(layout):
        out.append(prefix)
        if std:
            out.append(_std(t, nanos, std))
    return "".join(out)


def _std(t: _dt.datetime, nanos: int, std: str) -> str:  # noqa: C901 - one case per layout element
    if std == _LONG_YEAR:
        return f"{t.year:04d}"
    if std == _YEAR:
        return f"{t.year % 100:02d}"
    if std == _LONG_MONTH:
        return Month(t.month).name
    if std == _MONTH:
        return Month(t.month).name[:3]
    if std == _NUM_MONTH:
        return str(t.month)
    if std == _ZERO_MONTH:
        return f"{t.month:02d}"
    if std == _LONG_WEEKDAY:
        return Weekday((t.weekday() + 1) % 7).name
    if std == _WEEKDAY:
        return Weekday((t.weekday() + 1) % 7).name[:3]
    if std == _DAY:
        return str(t.day)
    if std == _UNDER_DAY:
        return f"{t.day:2d}"
    if std == _ZERO_DAY:
        return f"{t.day:02d}"
    if std == _UNDER_YEARDAY:
        return f"{t.timetuple().tm_yday:3d}"
    if std == _ZERO_YEARDAY:
        return f"{t.timetuple().tm_yday:03d}"
    if std == _HOUR:
        return f"{t.hour:02d}"
    if std == _HOUR12:
        return str(t.hour % 12 or 12)
    if std == _ZERO_HOUR12:
        return f"{t.hour % 12 or 12:02d}"
    if std == _MINUTE:
        return str(t.minute)
    if std == _ZERO_MINUTE:
        return f"{t.minute:02d}"
    if std == _SECOND:
        return str(t.second)
    if std == _ZERO_SECOND:
        return f"{t.second:02d}"
    if std == _PM:
        return "PM" if t.hour >= 12 else "AM"
    if std == _PM_LOWER:
        return "pm" if t.hour >= 12 else "am"
    if std == _TZ:
        return "UTC"
    if std in _ZONE_TEXT:
        return _ZONE_TEXT[std]
    # Fractional seconds: ".000" keeps n digits, ".999" drops trailing zeros (and the dot if none remain).
    sep, digits = std[0], std[1:]
    text = f"{nanos:09d}"[: len(digits)]
    if digits[0] == "9":
        text = text.rstrip("0")
        if not text:
            return ""
    return sep + text


def time_fields(ns: int) -> _dt.datetime:
    """The calendar fields of a UTC time (microsecond resolution)."""
    secs = ns // NANOS_PER_SECOND
    return _EPOCH + _dt.timedelta(seconds=secs)
