"""Per-group alert state and the emission decision, pure and serializable.

One :class:`GroupState` per alert group (group key ``k=v,k2=v2``, ``nil`` without groupBy)
keeps Kapacitor's ``alertState``: a ring buffer of the last ``history`` levels (for
flapping detection), the flapping flag, first/last triggered times (for the event's
duration) and whether the last level was a change. :meth:`GroupState.observe` applies one
level and says whether an event is emitted, following Kapacitor's stream rules:

* flapping (when enabled) suppresses everything, OK included;
* ``stateChangesOnly`` suppresses unchanged levels unless ``interval`` elapsed since the
  last event (``expired``);
* otherwise an event is emitted when the level is not OK or it changed;
* ``noRecoveries`` drops OK events, after the state was updated.

:class:`AlertNodeState` bundles the groups of one alert node with the last level of each
event ID (``previousLevel``); ``to_dict``/``from_dict`` round-trip through JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kapacity.alert.levels import OK, percent_change

DEFAULT_HISTORY = 21
MIN_HISTORY = 2


@dataclass(frozen=True, slots=True)
class EmitPolicy:
    """How an alert node decides to emit; built once from the script's properties."""

    state_changes_only: bool = False
    #: ``stateChangesOnly(d)``: re-emit an unchanged level every ``interval_ns`` (0 = never).
    interval_ns: int = 0
    no_recoveries: bool = False
    flapping: bool = False
    flap_low: float = 0.0
    flap_high: float = 0.0
    history: int = DEFAULT_HISTORY

    def __post_init__(self) -> None:
        if self.history < MIN_HISTORY:
            # Kapacitor silently raises a too-small history to its minimum.
            object.__setattr__(self, "history", MIN_HISTORY)


@dataclass(slots=True)
class GroupState:
    """Kapacitor's ``alertState`` for one group. Levels are ints (OK=0 … CRITICAL=3)."""

    #: ``history[idx]``, kept in step by :meth:`add`: the hot path of a task reads the
    #: current level of a group for every point, and one attribute is one memory access
    #: where the ring is three (with 100,000 groups, each a likely cache miss). First, so
    #: that its slot shares a cache line with the object's header.
    level: int = field(default=OK, init=False, repr=False, compare=False)
    history: list[int]
    idx: int = 0
    flapping: bool = False
    changed: bool = False
    expired: bool = False
    first_triggered: int = 0
    last_triggered: int = 0

    def __post_init__(self) -> None:
        self.level = self.history[self.idx]

    @classmethod
    def new(cls, history: int = DEFAULT_HISTORY) -> GroupState:
        return cls(history=[OK] * max(history, MIN_HISTORY))

    @property
    def previous(self) -> int:
        """The level before the current one."""
        return self.history[self.idx - 1]  # index -1 wraps like Kapacitor's ring

    def add(self, t: int, level: int, policy: EmitPolicy) -> None:
        """Record ``level`` at time ``t`` (ns): Kapacitor's ``addEvent``."""
        hist = self.history
        self.changed = hist[self.idx] != level
        self.idx = (self.idx + 1) % len(hist)
        hist[self.idx] = level
        self.level = level
        if policy.flapping:
            p = percent_change(hist, self.idx)
            if self.flapping and p < policy.flap_low:
                self.flapping = False
            elif not self.flapping and p > policy.flap_high:
                self.flapping = True
        self.expired = (
            not self.changed
            and policy.interval_ns != 0
            and t - self.last_triggered >= policy.interval_ns
        )

    def trigger(self, t: int) -> None:
        """Mark an emitted (or recovery) event at ``t``: starts an episode after OK."""
        self.last_triggered = t
        if self.history[self.idx - 1] == OK:
            self.first_triggered = t

    @property
    def duration(self) -> int:
        """Nanoseconds since the first non-OK point of the current episode."""
        return self.last_triggered - self.first_triggered

    def observe(self, t: int, level: int, policy: EmitPolicy) -> bool:
        """Apply ``level`` at ``t``; True when an event must be emitted (stream rules)."""
        self.add(t, level, policy)
        if policy.flapping and self.flapping:
            return False
        if policy.state_changes_only and not self.changed and not self.expired:
            return False
        if level == OK and not self.changed:
            return False
        self.trigger(t)
        return not (policy.no_recoveries and level == OK)

    def observe_batch(self, t: int, level: int, policy: EmitPolicy) -> bool:
        """Apply the level of a whole batch (Kapacitor's ``BufferedBatch`` rules)."""
        self.add(t, level, policy)
        emit = (self.changed and level == OK) or (
            level != OK
            and not (
                (policy.flapping and self.flapping)
                or (policy.state_changes_only and not self.changed and not self.expired)
            )
        )
        if not emit:
            return False
        self.trigger(t)
        return not (policy.no_recoveries and level == OK)

    def restore(self, t: int, level: int, triggered: int, policy: EmitPolicy) -> None:
        """Seed the state of a new group from a restored event (level, last triggered time)."""
        if level != OK:
            self.add(t, level, policy)
            self.trigger(triggered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": list(self.history),
            "idx": self.idx,
            "flapping": self.flapping,
            "changed": self.changed,
            "expired": self.expired,
            "first_triggered": self.first_triggered,
            "last_triggered": self.last_triggered,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupState:
        history = [int(x) for x in data["history"]]
        if len(history) < MIN_HISTORY or not all(0 <= x <= 3 for x in history):
            raise ValueError(f"invalid alert state history {history!r}")
        idx = int(data.get("idx", 0))
        if not 0 <= idx < len(history):
            raise ValueError(f"invalid alert state idx {idx} for history of {len(history)}")
        return cls(
            history=history,
            idx=idx,
            flapping=bool(data.get("flapping", False)),
            changed=bool(data.get("changed", False)),
            expired=bool(data.get("expired", False)),
            first_triggered=int(data.get("first_triggered", 0)),
            last_triggered=int(data.get("last_triggered", 0)),
        )


@dataclass(slots=True)
class AlertNodeState:
    """All the state of one alert node: its groups and the last level of each event ID."""

    groups: dict[str, GroupState] = field(default_factory=dict)
    #: Event ID → last level it was emitted with (the next event's ``previousLevel``).
    last_levels: dict[str, int] = field(default_factory=dict)
    #: Event ID → (level, triggered time ns) restored from a topic, applied to new groups.
    restored: dict[str, tuple[int, int]] = field(default_factory=dict)

    def seed(self, events: dict[str, tuple[int, int]]) -> None:
        """Seed restored events (ID → (level, time ns)), e.g. from a persisted alert topic.

        Each ID's level becomes its ``previousLevel``; a group seen for the first time whose
        rendered ID was restored starts at that level, so a recovery after a restart still
        emits an OK event (as Kapacitor does).
        """
        for event_id, (level, t) in events.items():
            self.last_levels[event_id] = int(level)
            self.restored[event_id] = (int(level), int(t))

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": {k: g.to_dict() for k, g in self.groups.items()},
            "last_levels": dict(self.last_levels),
            "restored": {k: [lv, t] for k, (lv, t) in self.restored.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertNodeState:
        return cls(
            groups={k: GroupState.from_dict(v) for k, v in data.get("groups", {}).items()},
            last_levels={k: int(v) for k, v in data.get("last_levels", {}).items()},
            restored={k: (int(v[0]), int(v[1])) for k, v in data.get("restored", {}).items()},
        )
