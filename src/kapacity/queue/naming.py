"""Every name the queue generates: topics, tables, consumer groups, transactional ids.

The one rule (Kestra's):

* topic of a kind  = ``queue.kafka.topics.<kind>.name`` if set (used verbatim), else
  ``topic-prefix + kind`` — e.g. ``kapacity_points``, ``kapacity_dead_letter``;
* consumer group   = ``consumer-prefix + kind + "_" + consumer`` — e.g. ``kapacity_events_handlers``;
* transactional id = ``consumer-prefix + name`` (+ ``"_" + partition`` when per partition);
* broadcast reader = ``consumer-prefix + "broadcast_" + kind + "_" + instance`` (never commits).

Two instances with the same prefixes share work; with different prefixes they share a
cluster (or a SQLite file) without seeing each other's messages.

>>> n = Naming("uat_", "uat_")
>>> n.topic(Kind.POINTS), n.group(Kind.EVENTS, "alerts"), n.transactional_id("engine", 3)
('uat_points', 'uat_events_alerts', 'uat_engine_3')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from kapacity.queue.kinds import Kind, parse_kind

__all__ = ["DEFAULT_PREFIX", "Naming"]

DEFAULT_PREFIX: Final = "kapacity_"
_TABLE_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Naming:
    topic_prefix: str = DEFAULT_PREFIX
    consumer_prefix: str = DEFAULT_PREFIX
    overrides: Mapping[Kind, str] = field(default_factory=dict)
    """Per-kind topic names (``queue.kafka.topics.<kind>.name``), used without prefix."""

    def topic(self, kind: Kind | str) -> str:
        k = parse_kind(kind)
        return self.overrides.get(k) or f"{self.topic_prefix}{k.value}"

    def table(self, kind: Kind | str) -> str:
        """The embedded backend's SQLite table: the topic name made a safe identifier."""
        return "q_" + _TABLE_UNSAFE.sub("_", self.topic(kind))

    def group(self, kind: Kind | str, consumer: str) -> str:
        return f"{self.consumer_prefix}{parse_kind(kind).value}_{consumer}"

    def broadcast_group(self, kind: Kind | str, instance: str) -> str:
        return f"{self.consumer_prefix}broadcast_{parse_kind(kind).value}_{instance}"

    def transactional_id(self, name: str, partition: int | None = None) -> str:
        base = f"{self.consumer_prefix}{name}"
        return base if partition is None else f"{base}_{partition}"
