"""Kapacitor's alert topics: the latest state of every event published to a topic.

Pure bookkeeping, no I/O and no clock: the caller persists states (see
``kapacity.state``) and restores them at start-up, so that the level an event
had before a restart is still its ``previousLevel`` afterwards.

A topic's level is the highest level among its events (OK when it has none).
``Topics.update`` answers the level the event last had *in that topic* (OK the
first time it is seen): this is the ``previousLevel`` of the Kafka JSON body.

>>> topics = Topics()
>>> topics.update("cpu", "cpu:host=a", EventState("hot", "", 0, 0, Level.CRITICAL))
<Level.OK: 0>
>>> topics.update("cpu", "cpu:host=a", EventState("ok", "", 10, 0, Level.OK))
<Level.CRITICAL: 3>
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kapacity.errors import KapacityError
from kapacity.gotypes import Level


class TopicPatternError(KapacityError, ValueError):
    """A malformed glob pattern (Go's ``path.ErrBadPattern``)."""


class TopicStateError(KapacityError, ValueError):
    """Serialized topic state that cannot be read back (names the field)."""


@dataclass(frozen=True, slots=True)
class EventState:
    """The latest state of one event ID in a topic; ``time``/``duration`` in ns."""

    message: str
    details: str
    time: int
    duration: int
    level: Level

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "details": self.details,
            "time": self.time,
            "duration": self.duration,
            "level": self.level.name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventState:
        try:
            level = Level.parse(str(data["level"]))
            return cls(
                message=_typed(data, "message", str),
                details=_typed(data, "details", str),
                time=_typed(data, "time", int),
                duration=_typed(data, "duration", int),
                level=level,
            )
        except KeyError as missing:
            raise TopicStateError(f"event state: missing field {missing}") from None
        except ValueError as err:
            raise TopicStateError(f"event state: {err}") from None


def _typed(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TopicStateError(
            f"event state: field {key!r} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


@dataclass(frozen=True, slots=True)
class TopicState:
    """A topic as listed by the API: its level and how many events it collected."""

    id: str
    level: Level
    collected: int


def _by_level_then_id(item: tuple[str, EventState]) -> tuple[int, str]:
    return (-item[1].level, item[0])


class Topic:
    """One topic: event ID → latest :class:`EventState`."""

    __slots__ = ("_events", "collected", "id")

    def __init__(self, topic_id: str) -> None:
        self.id = topic_id
        self._events: dict[str, EventState] = {}
        #: Events published to this topic since start (Kapacitor's ``collected``).
        self.collected = 0

    @property
    def level(self) -> Level:
        return max((s.level for s in self._events.values()), default=Level.OK)

    def update(self, event_id: str, state: EventState) -> Level:
        """Store the latest state; return the event's previous level (OK if new)."""
        previous = self._events.get(event_id)
        self._events[event_id] = state
        self.collected += 1
        return Level.OK if previous is None else previous.level

    def event_state(self, event_id: str) -> EventState | None:
        return self._events.get(event_id)

    def event_states(self, min_level: Level = Level.OK) -> dict[str, EventState]:
        """Events at ``min_level`` or above, most severe first, then by ID."""
        items = sorted(self._events.items(), key=_by_level_then_id)
        return {eid: s for eid, s in items if s.level >= min_level}

    def restore(self, states: dict[str, EventState]) -> None:
        """Replace the event states (at start-up); ``collected`` is not a state."""
        self._events = dict(states)

    def remove(self, event_id: str) -> bool:
        """Forget one event (its state was deleted cluster-wide); false when unknown."""
        return self._events.pop(event_id, None) is not None

    def event_count(self) -> int:
        return len(self._events)


class Topics:
    """The registry of topics, created on first use."""

    __slots__ = ("_topics",)

    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}

    def topic(self, topic_id: str) -> Topic | None:
        return self._topics.get(topic_id)

    def _ensure(self, topic_id: str) -> Topic:
        topic = self._topics.get(topic_id)
        if topic is None:
            topic = self._topics[topic_id] = Topic(topic_id)
        return topic

    def update(self, topic_id: str, event_id: str, state: EventState) -> Level:
        """Record an event in a topic; return its previous level there (OK if new)."""
        return self._ensure(topic_id).update(event_id, state)

    def restore_topic(self, topic_id: str, states: dict[str, EventState]) -> None:
        self._ensure(topic_id).restore(states)

    def delete_topic(self, topic_id: str) -> bool:
        """Forget a topic and its events; false when there was no such topic."""
        return self._topics.pop(topic_id, None) is not None

    def remove_event(self, topic_id: str, event_id: str) -> bool:
        """Forget one event of a topic (the topic stays); false when unknown."""
        topic = self._topics.get(topic_id)
        return topic is not None and topic.remove(event_id)

    def topic_states(self, pattern: str = "", min_level: Level = Level.OK) -> list[TopicState]:
        """Topics whose ID matches the glob ``pattern`` ("" = all) at ``min_level`` or above.

        Sorted by ID. Raises :class:`TopicPatternError` for a malformed pattern.
        """
        match = compile_pattern(pattern)
        out = []
        for topic_id in sorted(self._topics):
            if not match(topic_id):
                continue
            topic = self._topics[topic_id]
            level = topic.level
            if level >= min_level:
                out.append(TopicState(topic_id, level, topic.collected))
        return out

    def event_states(self, topic_id: str, min_level: Level = Level.OK) -> dict[str, EventState]:
        topic = self._topics.get(topic_id)
        return {} if topic is None else topic.event_states(min_level)

    def event_state(self, topic_id: str, event_id: str) -> EventState | None:
        topic = self._topics.get(topic_id)
        return None if topic is None else topic.event_state(event_id)

    def to_dict(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{topic: {event_id: state}}``, JSON-ready."""
        return {
            tid: {eid: s.to_dict() for eid, s in t.event_states().items()}
            for tid, t in sorted(self._topics.items())
        }

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, dict[str, Any]]]) -> Topics:
        topics = cls()
        for tid, events in data.items():
            topics.restore_topic(
                tid, {eid: EventState.from_dict(s) for eid, s in events.items()}
            )
        return topics


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One (possibly escaped) character of a ``[...]`` class at ``i``."""
    if i >= len(pattern):
        raise TopicPatternError(f"invalid pattern {pattern!r}: unterminated '['")
    c = pattern[i]
    if c in "-]":
        raise TopicPatternError(f"invalid pattern {pattern!r}: unexpected {c!r} in '[...]'")
    if c == "\\":
        i += 1
        if i >= len(pattern):
            raise TopicPatternError(f"invalid pattern {pattern!r}: trailing backslash")
        c = pattern[i]
    return c, i + 1


def _translate(pattern: str) -> str:
    """Go's ``path.Match`` syntax as a Python regex: ``* ? [a-z] [^a] \\c``."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "\\":
            if i + 1 >= n:
                raise TopicPatternError(f"invalid pattern {pattern!r}: trailing backslash")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            ranges: list[str] = []
            seen = 0
            while True:
                if i < n and pattern[i] == "]" and seen:
                    i += 1
                    break
                lo, i = _class_char(pattern, i)
                hi = lo
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                seen += 1
                if lo <= hi:  # as in Go, a reversed range matches nothing
                    ranges.append(f"{re.escape(lo)}-{re.escape(hi)}")
            if ranges:
                out.append(("[^/" if negated else "[") + "".join(ranges) + "]")
            else:
                out.append("[^/]" if negated else "(?!)")
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate ``id -> bool`` for a glob ("" matches everything).

    Raises :class:`TopicPatternError` for a malformed pattern (validate API input with it).
    """
    if pattern == "":
        return lambda _id: True
    regex = re.compile(_translate(pattern), re.DOTALL)
    return lambda topic_id: regex.fullmatch(topic_id) is not None


def pattern_match(pattern: str, topic_id: str) -> bool:
    """Kapacitor's ``PatternMatch``: glob match, the empty pattern matches all."""
    return compile_pattern(pattern)(topic_id)
