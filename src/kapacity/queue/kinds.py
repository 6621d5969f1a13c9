"""The kinds of message the queue carries, and what each kind's topic/table is like.

Work kinds (``points``, ``events``, ``logs``) are consumed by competing consumers and kept
for :data:`WORK_RETENTION_MS`; definitions (``tasks``, ``handlers``) and state
(``topic_state``, ``alert_state``) are compacted with unlimited retention: the latest value
per key is the truth, and every instance reads them from the beginning (broadcast). So is
``instances``: each instance's latest status (membership, see ``runtime/membership.py``).
``repartition`` is a work kind (points re-keyed by group) and ``regroup_state`` its
compacted changelog (see ``runtime/regroup.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["KINDS", "PARTITIONS_LIKE", "SPECS", "WORK_RETENTION_MS", "Kind", "KindSpec", "parse_kind"]

#: 7 days, Kafka's broker default: set explicitly so behaviour does not depend on the broker.
WORK_RETENTION_MS: Final = 604_800_000


class Kind(StrEnum):
    POINTS = "points"
    TASKS = "tasks"
    HANDLERS = "handlers"
    EVENTS = "events"
    TOPIC_STATE = "topic_state"
    ALERT_STATE = "alert_state"
    LOGS = "logs"
    DEAD_LETTER = "dead_letter"
    INSTANCES = "instances"
    REPARTITION = "repartition"
    REGROUP_STATE = "regroup_state"


KINDS: Final = tuple(k.value for k in Kind)


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: Kind
    compacted: bool
    broadcast: bool
    """Read by every instance from the beginning (definitions/state) rather than by a group."""

    @property
    def properties(self) -> Mapping[str, str]:
        """The topic configs kapacity sets on this kind's topic unless overridden."""
        if self.compacted:
            return {"cleanup.policy": "compact", "retention.ms": "-1"}
        return {"cleanup.policy": "delete", "retention.ms": str(WORK_RETENTION_MS)}


SPECS: Final[Mapping[Kind, KindSpec]] = {
    Kind.POINTS: KindSpec(Kind.POINTS, compacted=False, broadcast=False),
    Kind.TASKS: KindSpec(Kind.TASKS, compacted=True, broadcast=True),
    Kind.HANDLERS: KindSpec(Kind.HANDLERS, compacted=True, broadcast=True),
    Kind.EVENTS: KindSpec(Kind.EVENTS, compacted=False, broadcast=False),
    Kind.TOPIC_STATE: KindSpec(Kind.TOPIC_STATE, compacted=True, broadcast=True),
    Kind.ALERT_STATE: KindSpec(Kind.ALERT_STATE, compacted=True, broadcast=True),
    Kind.LOGS: KindSpec(Kind.LOGS, compacted=False, broadcast=False),
    Kind.DEAD_LETTER: KindSpec(Kind.DEAD_LETTER, compacted=False, broadcast=False),
    # Membership: each instance's latest status record, keyed by instance name.
    Kind.INSTANCES: KindSpec(Kind.INSTANCES, compacted=True, broadcast=True),
    # Points re-keyed by the group of a task that is not series-aligned (runtime/regroup.py),
    # and the alert-state changelog of the stage that consumes them.
    Kind.REPARTITION: KindSpec(Kind.REPARTITION, compacted=False, broadcast=False),
    Kind.REGROUP_STATE: KindSpec(Kind.REGROUP_STATE, compacted=True, broadcast=True),
}

#: Kinds whose partition count defaults to another kind's: a changelog must have as many
#: partitions as its source (state of partition p is written to partition p), and the
#: repartition topic spreads groups over as many partitions as the points.
PARTITIONS_LIKE: Final[Mapping[Kind, Kind]] = {
    Kind.REPARTITION: Kind.POINTS,
    Kind.REGROUP_STATE: Kind.REPARTITION,
}


def parse_kind(name: str | Kind) -> Kind:
    """``"alert-state"``/``"alert_state"`` → ``Kind.ALERT_STATE``; ValueError lists the kinds."""
    if isinstance(name, Kind):
        return name
    norm = name.strip().lower().replace("-", "_")
    try:
        return Kind(norm)
    except ValueError:
        raise ValueError(f'unknown queue kind "{name}"; valid choices: {", ".join(KINDS)}') from None
