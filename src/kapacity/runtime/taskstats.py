"""Task node stats in Kafka mode: summed over partitions, stages and instances (pure).

A task's pipeline runs once per owned partition (:class:`~.processor.PartitionProcessor`),
in the engine stage (series-aligned tasks) or the regroup stage (the others), on whichever
instance owns the partition. Kapacitor shows one set of counters per task node
(``GET /kapacitor/v1/tasks/<id>`` ``stats.node-stats``, the DOT, ``/debug/vars``
``nodes:<task>:<node>``): kapacity shows their sum.

How values combine, per node and key:

* numbers are **summed**: counters (``points_in``, ``alerts_triggered``, ``errors``…) and the
  gauges of per-group state (``groups``): a group lives on one partition only, so the
  partitions' groups are disjoint and their counts add up;
* keys named ``avg_*`` (Kapacitor's ``avg_exec_time_ns``) are averages over the points a
  node handled: merged **weighted by** ``points_in`` (a plain mean when no part saw a point);
* other values (``type``) are taken from the first part that has them;
* a missing number counts as 0 — published records drop zeros (:func:`compact`).

Node order is the order of first appearance (the DOT lists nodes in build order).

>>> merge_nodes([{"alert2": {"points_in": 3, "avg_exec_time_ns": 10}},
...              {"alert2": {"points_in": 1, "avg_exec_time_ns": 50, "alerts_triggered": 1}}])
{'alert2': {'points_in': 4, 'avg_exec_time_ns': 20, 'alerts_triggered': 1}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "AVERAGE_PREFIX",
    "COUNTED_STATES",
    "WEIGHT",
    "KeptStats",
    "NodeStats",
    "TaskStats",
    "cluster_task_stats",
    "compact",
    "merge_nodes",
    "merge_tasks",
    "overlay",
]

NodeStats = dict[str, dict[str, Any]]
"""Node name → stat name → value (one task)."""
TaskStats = dict[str, NodeStats]
"""Task id → its node stats."""

#: Stat names that are averages over the points a node handled (weighted when merged).
AVERAGE_PREFIX: Final = "avg_"
#: The weight of an average: the points the node handled.
WEIGHT: Final = "points_in"
#: Instance states whose published counters enter the cluster sum. ``lost``: its last
#: published values (it processed those points; it may be cut off, not dead, and its
#: partitions' counts restart at 0 wherever they go next). ``stopped`` instances leave the
#: sum, as a Kapacitor restart resets its counters; ``adopted`` records carry the counters
#: of the adopted stages (they replace the lost instance's record, so nothing counts twice).
COUNTED_STATES: Final = ("running", "stopping", "lost", "adopted")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def merge_nodes(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> NodeStats:
    """The node stats of several runs of one task, combined (see the module doc)."""
    parts = [p for p in parts if isinstance(p, Mapping)]
    out: NodeStats = {}
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for part in parts:
        for node, stats in part.items():
            if isinstance(stats, Mapping):
                grouped.setdefault(str(node), []).append(stats)
    for node, runs in grouped.items():
        merged: dict[str, Any] = {}
        for stats in runs:
            for key, value in stats.items():
                if key.startswith(AVERAGE_PREFIX) and _number(value):
                    merged.setdefault(key, None)  # computed below, over every run
                elif _number(value):
                    merged[key] = merged.get(key, 0) + value
                elif key not in merged:
                    merged[key] = value
        for key in [k for k, v in merged.items() if v is None]:
            merged[key] = _average(key, runs)
        out[node] = merged
    return out


def _average(key: str, runs: list[Mapping[str, Any]]) -> int | float:
    """``key`` over the runs, weighted by :data:`WEIGHT` (missing values count as 0)."""
    pairs = [(v if _number(v := r.get(key, 0)) else 0, r.get(WEIGHT, 0)) for r in runs]
    weights = [w if _number(w) and w > 0 else 0 for _, w in pairs]
    total = sum(weights)
    if total:
        avg = sum(v * w for (v, _), w in zip(pairs, weights, strict=True)) / total
    else:
        present = [r[key] for r in runs if _number(r.get(key))]
        avg = sum(present) / len(present) if present else 0
    integral = all(isinstance(r.get(key, 0), int) for r in runs)
    return round(avg) if integral else avg


def merge_tasks(parts: Iterable[Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> TaskStats:
    """Several :data:`TaskStats` (partitions, stages, instances) combined, task by task."""
    per_task: dict[str, list[Mapping[str, Mapping[str, Any]]]] = {}
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        for task, nodes in part.items():
            if isinstance(nodes, Mapping):
                per_task.setdefault(str(task), []).append(nodes)
    return {task: merge_nodes(runs) for task, runs in per_task.items()}


def compact(stats: Any) -> TaskStats:
    """What an instance publishes: numbers only, zeros dropped (the reader counts a missing
    number as 0), nodes and tasks without any number left out.

    >>> compact({"t": {"from1": {"type": "from", "points_in": 2, "errors": 0}, "alert2": {"errors": 0}}})
    {'t': {'from1': {'points_in': 2}}}
    """
    out: TaskStats = {}
    if not isinstance(stats, Mapping):
        return out
    for task, nodes in stats.items():
        if not isinstance(nodes, Mapping):
            continue
        kept: NodeStats = {}
        for node, values in nodes.items():
            if not isinstance(values, Mapping):
                continue
            numbers = {str(k): v for k, v in values.items() if _number(v) and v != 0}
            if numbers:
                kept[str(node)] = numbers
        if kept:
            out[str(task)] = kept
    return out


def cluster_task_stats(instances: Iterable[Mapping[str, Any]]) -> TaskStats:
    """The sum over the cluster's instances (as :meth:`~.membership.MembershipView.instances`
    lists them, state decided) of each stage's published ``task_stats``; only instances in
    a :data:`COUNTED_STATES` state count."""
    parts: list[Mapping[str, Any]] = []
    for inst in instances:
        if inst.get("state") not in COUNTED_STATES:
            continue
        stages = inst.get("stages")
        if not isinstance(stages, Mapping):
            continue
        for stage in stages.values():
            if isinstance(stage, Mapping) and isinstance(stage.get("task_stats"), Mapping):
                parts.append(stage["task_stats"])
    return merge_tasks(parts)


def overlay(template: Mapping[str, Mapping[str, Any]], cluster: Mapping[str, Mapping[str, Any]] | None) -> NodeStats:
    """The node stats of the local (idle) copy of a task with its numbers replaced by the
    cluster's: the local copy gives the node order, types and the full set of keys (zeros
    included); nodes the local definition lacks are left out (another version of the task).

    >>> overlay({"from1": {"type": "from", "points_in": 0, "errors": 0}}, {"from1": {"points_in": 7}, "x9": {}})
    {'from1': {'type': 'from', 'points_in': 7, 'errors': 0}}
    """
    cluster = cluster or {}
    out: NodeStats = {}
    for node, local in template.items():
        theirs = cluster.get(node) or {}
        merged = {k: (theirs.get(k, 0) if _number(v) else v) for k, v in local.items()}
        for k, v in theirs.items():
            if k not in merged and _number(v):
                merged[k] = v
        out[node] = merged
    return out


class KeptStats:
    """Node stats of pipelines that stopped running here while their task did not (rebuilt
    after an aborted batch, or their partition revoked), per task, for as long as the task
    keeps the definition they were counted under: Kapacitor resets a task's counters when
    the task restarts (redefined, disabled, deleted), not when its work moves.

    Written by one thread (the stage's), read by others (the membership thread): each write
    swaps in a new dict, a reader never sees one half-updated.

    >>> kept = KeptStats()
    >>> kept.keep({"t": ("v1", {"from1": {"points_in": 2}})})
    >>> kept.keep({"t": ("v1", {"from1": {"points_in": 3}})})
    >>> kept.stats({"t": "v1"}), kept.stats({"t": "v2"})
    ({'t': {'from1': {'points_in': 5}}}, {})
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[Any, NodeStats]] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def keep(self, runs: Mapping[str, tuple[Any, Mapping[str, Mapping[str, Any]]]]) -> None:
        """Add ``task id → (definition, node stats)``; a task's stats of another definition
        are replaced."""
        held = dict(self._held)
        for task, (definition, nodes) in runs.items():
            old = held.get(task)
            merged = merge_nodes((old[1], nodes)) if old is not None and old[0] == definition else merge_nodes((nodes,))
            held[task] = (definition, merged)
        self._held = held

    def prune(self, current: Mapping[str, Any]) -> None:
        """Forget the tasks whose definition is no longer ``current[task]``."""
        held = self._held
        if any(current.get(t) != d for t, (d, _) in held.items()):
            self._held = {t: (d, n) for t, (d, n) in held.items() if current.get(t) == d}

    def stats(self, current: Mapping[str, Any]) -> TaskStats:
        """The kept stats of the tasks still at the definition they were counted under."""
        return {t: n for t, (d, n) in self._held.items() if current.get(t) == d}
