"""Go value types that leak into users' templates and into Kapacitor's JSON.

Kapacitor is written in Go, so users' templates call Go methods on alert data
(``.Time.Unix``, ``.Duration.Seconds``, ``.Level.String``) and its JSON prints
times, durations and floats the Go way. These types carry integer nanoseconds
(no float rounding) and expose the Go method names templates use.
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
from dataclasses import dataclass

NANOS_PER_SECOND = 1_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class Level(enum.IntEnum):
    """Alert levels, ordered as in Kapacitor: OK < INFO < WARNING < CRITICAL."""

    OK = 0
    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def String(self) -> str:  # noqa: N802 - Go method name used by templates
        return self.name

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> Level:
        """Parse a level name case-insensitively (``"crit"`` is not accepted, as in Kapacitor)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            valid = ", ".join(m.name for m in cls)
            raise ValueError(f"invalid level {text!r}: valid levels are {valid}") from None


@functools.lru_cache(maxsize=4096)
def _rfc3339_seconds(secs: int) -> str:
    # Alerts of one burst share their second: formatting it once is most of the cost.
    return (_EPOCH + _dt.timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True, slots=True, order=True)
class Time:
    """A point in time as integer nanoseconds since the Unix epoch, always UTC."""

    ns: int

    def Unix(self) -> int:  # noqa: N802
        return self.ns // NANOS_PER_SECOND

    def UnixNano(self) -> int:  # noqa: N802
        return self.ns

    def UnixMilli(self) -> int:  # noqa: N802
        return self.ns // 1_000_000

    def UnixMicro(self) -> int:  # noqa: N802
        return self.ns // 1_000

    def to_datetime(self) -> _dt.datetime:
        """The time truncated to microseconds (Python's resolution)."""
        return _EPOCH + _dt.timedelta(microseconds=self.ns // 1_000)

    def rfc3339nano(self) -> str:
        """Go's ``time.RFC3339Nano`` in UTC: fractional seconds without trailing zeros."""
        secs, frac = divmod(self.ns, NANOS_PER_SECOND)
        base = _rfc3339_seconds(secs)
        if frac:
            return f"{base}.{frac:09d}".rstrip("0") + "Z"
        return base + "Z"

    def String(self) -> str:  # noqa: N802
        """Go's ``time.Time.String()`` for a UTC time."""
        secs, frac = divmod(self.ns, NANOS_PER_SECOND)
        base = (_EPOCH + _dt.timedelta(seconds=secs)).strftime("%Y-%m-%d %H:%M:%S")
        if frac:
            base = f"{base}.{frac:09d}".rstrip("0")
        return base + " +0000 UTC"

    def __str__(self) -> str:
        return self.String()

    # Further Go methods templates call (``.Time.Format "15:04"``, ``.Time.Year``); all UTC.
    def Format(self, layout: str) -> str:  # noqa: N802
        """Go's ``Time.Format`` with a reference-time layout, e.g. ``"2006-01-02T15:04:05Z07:00"``."""
        from kapacity.gotmpl.timefmt import format_time

        return format_time(self.ns, layout)

    def UTC(self) -> Time:  # noqa: N802
        return self

    def Year(self) -> int:  # noqa: N802
        return self._fields().year

    def Month(self) -> int:  # noqa: N802
        """A ``time.Month``: compares as 1..12, prints as ``January``."""
        from kapacity.gotmpl.timefmt import Month

        return Month(self._fields().month)

    def Day(self) -> int:  # noqa: N802
        return self._fields().day

    def Hour(self) -> int:  # noqa: N802
        return self._fields().hour

    def Minute(self) -> int:  # noqa: N802
        return self._fields().minute

    def Second(self) -> int:  # noqa: N802
        return self._fields().second

    def Nanosecond(self) -> int:  # noqa: N802
        return self.ns % NANOS_PER_SECOND

    def Weekday(self) -> int:  # noqa: N802
        """A ``time.Weekday`` (Sunday = 0), printing as ``Monday``."""
        from kapacity.gotmpl.timefmt import Weekday

        return Weekday((self._fields().weekday() + 1) % 7)

    def YearDay(self) -> int:  # noqa: N802
        return self._fields().timetuple().tm_yday

    def Add(self, d: Duration) -> Time:  # noqa: N802
        return Time(self.ns + d.ns)

    def Sub(self, other: Time) -> Duration:  # noqa: N802
        return Duration(self.ns - other.ns)

    def Before(self, other: Time) -> bool:  # noqa: N802
        return self.ns < other.ns

    def After(self, other: Time) -> bool:  # noqa: N802
        return self.ns > other.ns

    def Equal(self, other: Time) -> bool:  # noqa: N802
        return self.ns == other.ns

    def _fields(self) -> _dt.datetime:
        return _EPOCH + _dt.timedelta(seconds=self.ns // NANOS_PER_SECOND)


_UNITS = ((3_600 * NANOS_PER_SECOND, "h"), (60 * NANOS_PER_SECOND, "m"))


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A span of time as integer nanoseconds, printed like Go's ``time.Duration``."""

    ns: int

    def Nanoseconds(self) -> int:  # noqa: N802
        return self.ns

    def Microseconds(self) -> int:  # noqa: N802
        return int(self.ns / 1_000)

    def Milliseconds(self) -> int:  # noqa: N802
        return int(self.ns / 1_000_000)

    def Seconds(self) -> float:  # noqa: N802
        secs, rem = divmod(abs(self.ns), NANOS_PER_SECOND)
        value = secs + rem / NANOS_PER_SECOND
        return -value if self.ns < 0 else value

    def Minutes(self) -> float:  # noqa: N802
        return self.ns / (60 * NANOS_PER_SECOND)

    def Hours(self) -> float:  # noqa: N802
        return self.ns / (3_600 * NANOS_PER_SECOND)

    def String(self) -> str:  # noqa: N802
        return format_duration(self.ns)

    def __str__(self) -> str:
        return self.String()


def _frac(value: int, digits: int) -> str:
    """``value`` scaled down by 10**digits, printed without trailing zeros."""
    whole, rem = divmod(value, 10**digits)
    if rem == 0:
        return str(whole)
    return f"{whole}.{rem:0{digits}d}".rstrip("0")


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < NANOS_PER_SECOND:
        return f"{sign}{_frac(u, 6)}ms"
    out = []
    for size, unit in _UNITS:
        if u >= size:
            out.append(f"{u // size}{unit}")
            u %= size
        elif out:
            out.append(f"0{unit}")
    out.append(f"{_frac(u, 9)}s")
    return sign + "".join(out)
