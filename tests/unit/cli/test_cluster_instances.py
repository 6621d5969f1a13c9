"""`kapacity cluster status`: the table of every instance of the cluster."""

from __future__ import annotations

from typing import Any

from kapacity.cli.cluster import format_status, instance_row

MEMBERS: list[dict[str, Any]] = [
    {"instance": "a", "host": "h1", "state": "running", "last_seen_ago_s": 0.4, "stages": {
        "engine": {"partitions": [0, 1], "lag_total": 3, "restoring": {"1": 200}},
        "delivery": {"partitions": [0], "lag_total": 0}}},
    {"instance": "b", "host": "h2", "state": "lost", "last_seen_ago_s": 12.0, "stages": {
        "engine": {"error": "rebalancing"}}},
    {"instance": "front", "host": "h3", "state": "stopped", "stages": {}},
]


def test_a_row_shows_partitions_per_stage_lag_restore_and_age() -> None:
    assert instance_row(MEMBERS[0]) == ("a", "h1", "running", "0,1", "0", "3/0", "1:200", "0.4s ago")
    assert instance_row(MEMBERS[1]) == ("b", "h2", "lost", "error: rebalancing", "-", "-/-", "-", "12s ago")
    assert instance_row(MEMBERS[2]) == ("front", "h3", "stopped", "-", "-", "-/-", "-", "-")


def test_status_text_keeps_the_instance_lines_then_the_table() -> None:
    text = format_status({"mode": "kafka", "instance": "a", "queue": "kafka", "accepting": True,
                          "stages": {"engine": {"partitions": [0, 1]}}, "instances": MEMBERS})
    lines = text.splitlines()
    assert lines[:5] == ["mode:     kafka", "instance: a", "queue:    kafka", "accepting writes: yes",
                         "stage engine: partitions=0,1"]
    table = lines[lines.index("instances") + 1:]
    assert table[0].split() == ["INSTANCE", "HOST", "STATE", "ENGINE", "DELIVERY", "LAG", "RESTORING", "SEEN"]
    assert table[1].split() == ["a", "h1", "running", "0,1", "0", "3/0", "1:200", "0.4s", "ago"]
    assert table[2].split()[:3] == ["b", "h2", "lost"] and table[3].split()[:3] == ["front", "h3", "stopped"]
    assert all(line == line.rstrip() for line in lines)


def test_embedded_mode_instance_names_are_not_a_table() -> None:
    text = format_status({"mode": "embedded", "instance": "h", "queue": "embedded", "instances": ["h"]})
    assert "INSTANCE" not in text and "instance: h" in text
