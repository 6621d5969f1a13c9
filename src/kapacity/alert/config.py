"""What an alert node is configured with and what it emits (pure data, no pipeline).

:class:`AlertConfig` is the alert node's resolved script properties, :class:`HandlerSpec` a
handler chained in the script, :class:`AlertEvent` an event for the server to fan out, and
:class:`InhibitorRegistry` the ``.inhibit()`` bookkeeping shared by alert nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kapacity.alert.event import AlertData
from kapacity.alert.state import EmitPolicy
from kapacity.alert.templates import Render

@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A handler chained in the script (``.kafka()…``): its kind and options.

    Option keys are those of a handler file (kafka: ``cluster, topic, template,
    disablePartitionById, partitionAlgorithm``; log: ``path, mode``; post: ``url, endpoint,
    headers, capture-response, timeout, skip-ssl-verification``; tcp: ``address``; exec:
    ``prog, args``).
    """

    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class AlertEvent:
    """An event for the server to fan out: to ``handlers`` directly and to ``topic``."""

    data: AlertData
    task: str
    node: str
    topic: str
    handlers: tuple[HandlerSpec, ...]
    name: str
    group: str
    tags: dict[str, str]
    fields: dict[str, Any]
    category: str = ""
    #: Whether the level differs from the group's previous level (``changed()`` in match).
    changed: bool = False


@dataclass(slots=True)
class Inhibitor:
    """``.inhibit(category, tags…)``: while its group is not OK, events of ``category`` whose
    tags equal ``tags`` are suppressed."""

    category: str
    tags: dict[str, str]
    inhibited: bool = False


class InhibitorRegistry:
    """All inhibitors of a server (or of one task, by default)."""

    def __init__(self) -> None:
        self._items: list[Inhibitor] = []

    def add(self, inhibitor: Inhibitor) -> None:
        self._items.append(inhibitor)

    def is_inhibited(self, category: str, tags: dict[str, str]) -> bool:
        if not category:
            return False
        for inh in self._items:
            if inh.inhibited and inh.category == category and all(
                tags.get(k) == v for k, v in inh.tags.items()
            ):
                return True
        return False


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Everything the script said about one alert node, resolved and compiled."""

    id_tmpl: Render
    id_text: str
    message_tmpl: Render
    details_tmpl: Render
    policy: EmitPolicy = EmitPolicy()
    topic: str = ""
    handlers: tuple[HandlerSpec, ...] = ()
    category: str = ""
    inhibits: tuple[tuple[str, tuple[str, ...]], ...] = ()
    all_flag: bool = False
    level_tag: str = ""
    level_field: str = ""
    message_field: str = ""
    id_tag: str = ""
    id_field: str = ""
    duration_field: str = ""
