"""``|httpOut`` in Kafka mode (pure: no I/O).

An ``httpOut`` node keeps the latest row of each group; in Kafka mode a task's groups are
spread over partitions and instances. Each task stage publishes, with its status in the
instance's membership record (every 2 s, see :mod:`.membership`), the latest series of each
group its partitions hold, per task and endpoint; any instance's
``GET /kapacitor/v1/tasks/<task>/<endpoint>`` answers with their union, ordered by group as
Kapacitor does. The instance answering uses its own stages' results of the moment, the
others' as last published.

The membership record must stay small (it is the instances' liveness): a stage publishes at
most :data:`MAX_PUBLISHED_BYTES` of series and says ``http_out_truncated`` when it left
groups out.

>>> outs = {"t": {"cpu": {"host=b": '{"name":"cpu"}', "host=a": '{"name":"cpu","x":1}'}}}
>>> instances = [{"state": "running", "stages": {"regroup": {"http_out": outs}}}]
>>> cluster_http_out(instances, "t", "cpu")
'{"series":[{"name":"cpu","x":1},{"name":"cpu"}]}'
>>> cluster_http_out(instances, "t", "mem") is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["MAX_PUBLISHED_BYTES", "HttpOuts", "bounded", "cluster_http_out", "merge"]

HttpOuts = dict[str, dict[str, dict[str, str]]]
"""Task id → endpoint → group → the group's latest series (Kapacitor's JSON)."""

#: The most series JSON one stage publishes per membership record (Kafka's default
#: ``message.max.bytes`` is 1 MB, and the record carries the task stats too).
MAX_PUBLISHED_BYTES: Final = 256 * 1024
#: Published results shown, oldest knowledge first: a lost instance's last results stand
#: only for groups no live instance has published since.
_ORDER: Final = {"lost": 0, "stopping": 1, "adopted": 2, "running": 3}


def merge(parts: Iterable[Mapping[str, Any]]) -> HttpOuts:
    """The union of several stages' (or partitions') results; a later part wins a group."""
    out: HttpOuts = {}
    for part in parts:
        for task, endpoints in part.items():
            if not isinstance(endpoints, Mapping):
                continue
            for endpoint, groups in endpoints.items():
                if isinstance(groups, Mapping):
                    out.setdefault(str(task), {}).setdefault(str(endpoint), {}).update(
                        {str(g): s for g, s in groups.items() if isinstance(s, str)})
    return out


def bounded(outs: HttpOuts, limit: int = MAX_PUBLISHED_BYTES) -> tuple[HttpOuts, bool]:
    """``outs`` with groups left out beyond ``limit`` bytes of series; True if any were.

    >>> bounded({"t": {"e": {"a": "x" * 8, "b": "y" * 8}}}, limit=10)
    ({'t': {'e': {'a': 'xxxxxxxx'}}}, True)
    """
    kept: HttpOuts = {}
    size, truncated = 0, False
    for task, endpoints in outs.items():
        for endpoint, groups in endpoints.items():
            for group in sorted(groups):
                series = groups[group]
                if size + len(series) > limit:
                    truncated = True
                    continue
                size += len(series)
                kept.setdefault(task, {}).setdefault(endpoint, {})[group] = series
    return kept, truncated


def cluster_http_out(instances: Iterable[Mapping[str, Any]], task: str, endpoint: str) -> str | None:
    """The body of ``GET /tasks/<task>/<endpoint>`` from the instances' published results
    (as :meth:`~.membership.MembershipView.instances` lists them); None when no instance
    published that endpoint (the caller answers ``{"series":null}`` for a task that has it)."""
    live = sorted((i for i in instances if i.get("state") in _ORDER), key=lambda i: _ORDER[str(i.get("state"))])
    parts: list[Mapping[str, Any]] = []
    for inst in live:
        stages = inst.get("stages")
        if isinstance(stages, Mapping):
            parts += [s["http_out"] for s in stages.values()
                      if isinstance(s, Mapping) and isinstance(s.get("http_out"), Mapping)]
    groups = merge(parts).get(task, {}).get(endpoint)
    if not groups:
        return None
    return '{"series":[' + ",".join(groups[g] for g in sorted(groups)) + "]}"
