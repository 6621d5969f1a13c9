"""Per-group alert state: emission rules, duration, flapping, serialization."""

from __future__ import annotations

import json

import pytest

from kapacity.alert.levels import CRITICAL, INFO, OK, WARNING
from kapacity.alert.state import AlertNodeState, EmitPolicy, GroupState

S = 1_000_000_000


def feed(policy: EmitPolicy, levels: list[int], step: int = S) -> list[tuple[int, int, int]]:
    """(time, level, duration) of each emitted event."""
    gs = GroupState.new(policy.history)
    out = []
    for i, lv in enumerate(levels):
        t = (i + 1) * step
        if gs.observe(t, lv, policy):
            out.append((t // S, lv, gs.duration // S))
    return out


def test_default_emits_non_ok_and_recovery() -> None:
    events = feed(EmitPolicy(), [OK, CRITICAL, CRITICAL, WARNING, OK, OK])
    assert [(t, lv) for t, lv, _ in events] == [(2, CRITICAL), (3, CRITICAL), (4, WARNING), (5, OK)]


def test_duration_counts_from_first_non_ok_point() -> None:
    events = feed(EmitPolicy(), [OK, WARNING, CRITICAL, CRITICAL, OK, INFO])
    assert [d for _, _, d in events] == [0, 1, 2, 3, 0]
    # The recovery carries the episode's duration; the next episode starts again at 0.


def test_state_changes_only() -> None:
    events = feed(EmitPolicy(state_changes_only=True), [OK, CRITICAL, CRITICAL, CRITICAL, WARNING, OK, OK])
    assert [(t, lv) for t, lv, _ in events] == [(2, CRITICAL), (5, WARNING), (6, OK)]


def test_state_changes_only_with_interval() -> None:
    policy = EmitPolicy(state_changes_only=True, interval_ns=3 * S)
    events = feed(policy, [CRITICAL] * 8)
    # Changed at t=1, then re-emitted once 3s passed since the last event: t=4, t=7.
    assert [t for t, _, _ in events] == [1, 4, 7]


def test_no_recoveries_drops_ok_but_updates_state() -> None:
    policy = EmitPolicy(no_recoveries=True)
    gs = GroupState.new()
    assert gs.observe(S, CRITICAL, policy)
    assert not gs.observe(2 * S, OK, policy)
    assert gs.level == OK
    assert gs.observe(3 * S, CRITICAL, policy)
    assert gs.duration == 0  # a new episode after the (silent) recovery


def test_flapping_suppresses_events() -> None:
    policy = EmitPolicy(flapping=True, flap_low=0.25, flap_high=0.5, history=10)
    levels = [OK, CRITICAL] * 6 + [CRITICAL] * 12
    gs = GroupState.new(policy.history)
    emitted, flapping = [], []
    for i, lv in enumerate(levels):
        emitted.append(gs.observe((i + 1) * S, lv, policy))
        flapping.append(gs.flapping)
    assert emitted[:2] == [False, True]  # first CRITICAL fires before the history fills
    assert any(flapping[:12]) and not any(emitted[i] for i, f in enumerate(flapping) if f)
    # Once stable again, flapping ends and events resume.
    assert not flapping[-1] and emitted[-1]


def test_history_minimum_is_two() -> None:
    assert EmitPolicy(history=1).history == 2


def test_batch_rules_emit_change_to_ok_even_when_flapping() -> None:
    policy = EmitPolicy()
    gs = GroupState.new()
    assert gs.observe_batch(S, CRITICAL, policy)
    assert gs.observe_batch(2 * S, OK, policy)
    assert not gs.observe_batch(3 * S, OK, policy)


def test_restore_starts_episode_at_restored_level() -> None:
    policy = EmitPolicy()
    gs = GroupState.new()
    gs.restore(10 * S, CRITICAL, 4 * S, policy)
    assert gs.level == CRITICAL
    assert gs.observe(12 * S, OK, policy)  # the recovery fires after a restart
    assert gs.duration == 8 * S


def test_group_state_round_trip() -> None:
    policy = EmitPolicy(flapping=True, flap_low=0.1, flap_high=0.2)
    gs = GroupState.new()
    for i, lv in enumerate([CRITICAL, OK, WARNING]):
        gs.observe(i * S, lv, policy)
    data = json.loads(json.dumps(gs.to_dict()))
    back = GroupState.from_dict(data)
    assert back == gs


def test_group_state_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        GroupState.from_dict({"history": [0, 7], "idx": 0})
    with pytest.raises(ValueError):
        GroupState.from_dict({"history": [0, 0], "idx": 5})


def test_node_state_round_trip_and_seed() -> None:
    st = AlertNodeState()
    st.groups["host=a"] = GroupState.new()
    st.seed({"cpu:nil": (CRITICAL, 5 * S)})
    data = json.loads(json.dumps(st.to_dict()))
    back = AlertNodeState.from_dict(data)
    assert back.last_levels == {"cpu:nil": CRITICAL}
    assert back.restored == {"cpu:nil": (CRITICAL, 5 * S)}
    assert back.groups["host=a"] == st.groups["host=a"]


def test_level_follows_the_ring() -> None:
    policy = EmitPolicy(history=3)
    gs = GroupState.new(policy.history)
    for i, lv in enumerate([WARNING, CRITICAL, OK, INFO, INFO, OK]):
        gs.observe((i + 1) * S, lv, policy)
        assert gs.level == lv == gs.history[gs.idx]
        again = GroupState.from_dict(json.loads(json.dumps(gs.to_dict())))
        assert again.level == lv and again == gs
    assert "level" not in gs.to_dict()  # derived, not stored
