"""Alert topics: previous levels, topic levels, glob listing, serialization."""

from __future__ import annotations

import json

import pytest

from kapacity.alert.topics import (
    EventState,
    Topics,
    TopicPatternError,
    TopicState,
    TopicStateError,
    compile_pattern,
    pattern_match,
)
from kapacity.gotypes import Level


def state(level: Level, t: int = 0, message: str = "") -> EventState:
    return EventState(message or f"is {level.name}", "details", t, 0, level)


def test_previous_level_is_ok_first_then_the_last_level_in_that_topic() -> None:
    topics = Topics()
    assert topics.update("cpu", "a", state(Level.WARNING)) is Level.OK
    assert topics.update("cpu", "a", state(Level.CRITICAL)) is Level.WARNING
    assert topics.update("cpu", "a", state(Level.OK)) is Level.CRITICAL
    # the same event ID in another topic has its own history
    assert topics.update("mem", "a", state(Level.INFO)) is Level.OK


def test_topic_level_is_the_highest_event_level() -> None:
    topics = Topics()
    topics.update("cpu", "a", state(Level.WARNING))
    topics.update("cpu", "b", state(Level.CRITICAL))
    topic = topics.topic("cpu")
    assert topic is not None
    assert topic.level is Level.CRITICAL
    topics.update("cpu", "b", state(Level.OK))
    assert topic.level is Level.WARNING
    topics.update("cpu", "a", state(Level.OK))
    assert topic.level is Level.OK


def test_collected_counts_events() -> None:
    topics = Topics()
    for _ in range(3):
        topics.update("cpu", "a", state(Level.OK))
    assert topics.topic_states() == [TopicState("cpu", Level.OK, 3)]


def test_topic_states_filter_by_pattern_and_min_level_sorted_by_id() -> None:
    topics = Topics()
    topics.update("prod:cpu", "a", state(Level.CRITICAL))
    topics.update("prod:mem", "a", state(Level.INFO))
    topics.update("dev:cpu", "a", state(Level.WARNING))
    topics.update("prod:disk", "a", state(Level.OK))
    assert [t.id for t in topics.topic_states()] == ["dev:cpu", "prod:cpu", "prod:disk", "prod:mem"]
    assert [t.id for t in topics.topic_states("prod:*")] == ["prod:cpu", "prod:disk", "prod:mem"]
    assert [t.id for t in topics.topic_states("*:cpu", Level.WARNING)] == ["dev:cpu", "prod:cpu"]
    assert [t.id for t in topics.topic_states(min_level=Level.CRITICAL)] == ["prod:cpu"]
    assert [t.id for t in topics.topic_states("prod:???")] == ["prod:cpu", "prod:mem"]


def test_event_states_most_severe_first_with_min_level() -> None:
    topics = Topics()
    topics.update("t", "b", state(Level.WARNING))
    topics.update("t", "a", state(Level.WARNING))
    topics.update("t", "c", state(Level.CRITICAL))
    topics.update("t", "d", state(Level.OK))
    assert list(topics.event_states("t")) == ["c", "a", "b", "d"]
    assert list(topics.event_states("t", Level.WARNING)) == ["c", "a", "b"]
    assert topics.event_states("missing") == {}
    assert topics.event_state("t", "c") == state(Level.CRITICAL)
    assert topics.event_state("t", "zz") is None
    assert topics.event_state("nope", "c") is None


def test_delete_topic_forgets_history() -> None:
    topics = Topics()
    topics.update("t", "a", state(Level.CRITICAL))
    assert topics.delete_topic("t") is True
    assert topics.delete_topic("t") is False
    assert topics.topic("t") is None
    assert topics.update("t", "a", state(Level.OK)) is Level.OK


def test_restore_gives_previous_level_after_restart() -> None:
    before = Topics()
    before.update("cpu", "a", state(Level.CRITICAL, t=5))
    saved = json.loads(json.dumps(before.to_dict()))
    after = Topics.from_dict(saved)
    # a recovery after a restart is still a change from CRITICAL
    assert after.update("cpu", "a", state(Level.OK, t=6)) is Level.CRITICAL


def test_event_state_round_trips_and_rejects_bad_data() -> None:
    s = EventState("m", "d", 1_700_000_000_123_456_789, 60_000_000_000, Level.WARNING)
    assert s.to_dict() == {
        "message": "m",
        "details": "d",
        "time": 1_700_000_000_123_456_789,
        "duration": 60_000_000_000,
        "level": "WARNING",
    }
    assert EventState.from_dict(s.to_dict()) == s
    with pytest.raises(TopicStateError, match="missing field 'level'"):
        EventState.from_dict({"message": "m", "details": "", "time": 0, "duration": 0})
    with pytest.raises(TopicStateError, match="valid levels are OK, INFO, WARNING, CRITICAL"):
        EventState.from_dict({**s.to_dict(), "level": "SEVERE"})
    with pytest.raises(TopicStateError, match="'time' must be int, got str"):
        EventState.from_dict({**s.to_dict(), "time": "2020"})


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("", "anything", True),
        ("*", "cpu", True),
        ("cpu", "cpu", True),
        ("cpu", "cpu2", False),
        ("c?u", "cpu", True),
        ("c[a-q]u", "cpu", True),
        ("c[^p]u", "cpu", False),
        ("c[^x]u", "cpu", True),
        ("c[op]u", "cpu", True),
        ("c\\*u", "c*u", True),
        ("c\\*u", "cpu", False),
        ("a.b", "axb", False),
        ("*:cpu", "prod:cpu", True),
        ("c[z-a]u", "cpu", False),
    ],
)
def test_glob_matches_like_go_path_match(pattern: str, topic: str, matches: bool) -> None:
    assert pattern_match(pattern, topic) is matches


@pytest.mark.parametrize("pattern", ["[", "[]", "a[b", "\\", "[a-]", "[-a]", "ab\\"])
def test_bad_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(TopicPatternError, match="invalid pattern"):
        compile_pattern(pattern)
