"""Go duration strings, as InfluxDB's toml.Duration reads them."""

from __future__ import annotations

import pytest

from kapacity.config.durations import parse_duration
from kapacity.gotypes import format_duration

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("", 0),
        ("0", 0),
        ("10s", 10 * S),
        ("1m30s", 90 * S),
        ("500ms", S // 2),
        ("1.5h", 5400 * S),
        ("2h45m", (2 * 3600 + 45 * 60) * S),
        ("300us", 300_000),
        ("300\u00b5s", 300_000),
        ("7ns", 7),
        ("-1.5s", -3 * S // 2),
        (".5s", S // 2),
    ],
)
def test_parses_like_go(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["10", "s", "10x", "1d", "1.2.3s", "--1s", "10 s"])
def test_rejects_invalid_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(text)
    assert '"10s"' in str(info.value)


@pytest.mark.parametrize("ns", [0, 7, S, 90 * S, 5400 * S, S // 2, 300_000])
def test_round_trips_through_go_formatting(ns: int) -> None:
    assert parse_duration(format_duration(ns)) == ns
