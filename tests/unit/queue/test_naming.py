"""The one naming function: prefixes, per-kind overrides, groups, transactional ids."""

from __future__ import annotations

import pytest

from kapacity.queue import KINDS, Kind, Naming, parse_kind


def test_defaults_prefix_every_name_with_kapacity() -> None:
    n = Naming()
    assert [n.topic(k) for k in Kind] == [f"kapacity_{k}" for k in KINDS]
    assert n.topic(Kind.DEAD_LETTER) == "kapacity_dead_letter"
    assert n.group(Kind.POINTS, "engine") == "kapacity_points_engine"
    assert n.broadcast_group(Kind.TASKS, "i1") == "kapacity_broadcast_tasks_i1"
    assert n.transactional_id("engine") == "kapacity_engine"


def test_override_is_used_verbatim_and_tables_are_safe_identifiers() -> None:
    n = Naming("uat.", "uat-", {Kind.EVENTS: "alerts.events-v2"})
    assert n.topic("events") == "alerts.events-v2"
    assert n.table(Kind.EVENTS) == "q_alerts_events_v2"
    assert n.topic("alert-state") == "uat.alert_state"
    assert n.group("points", "engine") == "uat-points_engine"
    assert n.transactional_id("engine", 7) == "uat-engine_7"


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match='unknown queue kind "flows"; valid choices: points, tasks'):
        parse_kind("flows")
