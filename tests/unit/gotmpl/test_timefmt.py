"""Go reference-time layouts (time.Time.Format) on UTC times."""

from __future__ import annotations

import pytest

from kapacity.gotmpl.timefmt import Month, Weekday, format_time
from kapacity.gotypes import Time

NS = 1_700_000_000_123_000_000  # Tue 2023-11-14 22:13:20.123 UTC
EARLY = 1_000_000_000 * 86400 * 5 + 3_600_000_000_000 * 9 + 5_000_000_000  # Tue 1970-01-06 09:00:05 UTC


@pytest.mark.parametrize(
    ("ns", "layout", "expected"),
    [
        (NS, "2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20Z"),
        (NS, "2006-01-02T15:04:05.999999999Z07:00", "2023-11-14T22:13:20.123Z"),
        (NS, "2006-01-02T15:04:05.000000Z07:00", "2023-11-14T22:13:20.123000Z"),
        (NS, "15:04:05,000", "22:13:20,123"),
        (NS, "Jan _2 15:04:05", "Nov 14 22:13:20"),
        (EARLY, "Jan _2 15:04:05", "Jan  6 09:00:05"),
        (EARLY, "Jan 2 3:4:5 PM", "Jan 6 9:0:5 AM"),
        (EARLY, "02/01/06 03:04:05pm", "06/01/70 09:00:05am"),
        (NS, "Mon Jan 2 15:04:05 MST 2006", "Tue Nov 14 22:13:20 UTC 2023"),
        (NS, "Monday, 02-Jan-06 15:04:05 MST", "Tuesday, 14-Nov-23 22:13:20 UTC"),
        (NS, "2006-01-02 15:04:05.999999999 -0700 MST", "2023-11-14 22:13:20.123 +0000 UTC"),
        (NS, "-07:00 -07 Z0700", "+00:00 +00 Z"),
        (NS, "3:04PM", "10:13PM"),
        (NS, "January 2, 2006", "November 14, 2023"),
        (NS, "002 __2", "318 318"),
        (NS, "Janet Monica", "Janet Monica"),  # "Jan"/"Mon" followed by lowercase are literal
        (0, "2006-01-02T15:04:05.999Z07:00", "1970-01-01T00:00:00Z"),
        (NS, "_2006", "_2023"),
    ],
)
def test_format_time(ns: int, layout: str, expected: str) -> None:
    assert format_time(ns, layout) == expected


def test_time_methods_for_templates() -> None:
    t = Time(NS)
    assert t.Format("2006-01-02") == "2023-11-14"
    assert (t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second()) == (2023, 11, 14, 22, 13, 20)
    assert t.Month() == Month.November and str(t.Month()) == "November"
    assert t.Weekday() == Weekday.Tuesday and t.Weekday() == 2
    assert t.Nanosecond() == 123_000_000 and t.YearDay() == 318
    assert t.Sub(Time(0)).ns == NS and t.Add(t.Sub(t)).ns == NS
    assert t.After(Time(0)) and Time(0).Before(t) and t.Equal(Time(NS))
