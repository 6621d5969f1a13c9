"""Which tasks need their points regrouped, and by what key (pure: no I/O, no clock).

Points are keyed by series on the ``points`` kind, so one series lives on one partition. A
task's state is per *group*, and a group spans several series when the task groups by a
subset of the tags (``groupBy('host')`` over ``cpu,host=a,cpu=0`` and ``cpu,host=a,cpu=1``),
by ``*`` across measurements, or not at all (one group for everything). Such a task is
**not series-aligned**: the engine re-keys its points through the ``repartition`` kind by
the task's :class:`Grouping` key, so that every group lives on exactly one partition.

The grouping of a task is the *meet* of every grouping its nodes use (``from().groupBy``,
each ``|groupBy``, in every ``from`` chain): the finest key under which each group of each
stateful node stays whole. ``groupBy('host','cpu')|…|groupBy('host')`` routes by ``host``;
a task without ``groupBy`` routes every point to one key.

>>> from kapacity.pipeline import build_task
>>> g = task_grouping(build_task("stream|from().groupBy('host')|alert()", task_name="t"))
>>> g.aligned, g.key(Point("cpu", {"host": "a", "cpu": "1"}, {"v": 1.0}, 0))
(False, 'host=a')
>>> task_grouping(build_task("stream|from().measurement('cpu').groupBy(*)|alert()", task_name="t")).aligned
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from kapacity.models import Point
from kapacity.pipeline import Task, build_task
from kapacity.pipeline.base import Node
from kapacity.pipeline.nodes import FromNode, GroupByNode, GroupKeyer
from kapacity.runtime.processor import TaskSet
from kapacity.runtime.records import RecordError, TaskDefinition, point_from_value, point_value

__all__ = ["SERIES", "Grouping", "Router", "repartition_value", "split_repartition_value", "task_grouping"]

_ESCAPES: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\\": "\\\\"})


@dataclass(frozen=True, slots=True)
class Grouping:
    """How a task's points must be kept together.

    ``dims`` ``None`` means every tag but ``exclude`` (``groupBy(*)``); ``by_measurement``:
    the measurement is part of the group (``groupByMeasurement``, or a chain that reads one
    measurement only).
    """

    dims: frozenset[str] | None
    exclude: frozenset[str] = frozenset()
    by_measurement: bool = False

    @property
    def aligned(self) -> bool:
        """Every group lies within one series: the series-keyed ``points`` kind suffices."""
        return self.dims is None and not self.exclude and self.by_measurement

    def meet(self, other: Grouping) -> Grouping:
        """The finest grouping coarser than both: a group of either is whole within one of it."""
        if self.dims is None and other.dims is None:
            return Grouping(None, self.exclude | other.exclude, self.by_measurement and other.by_measurement)
        if self.dims is None or other.dims is None:
            given, star = (other, self) if self.dims is None else (self, other)
            assert given.dims is not None
            dims = given.dims - star.exclude
        else:
            dims = self.dims & other.dims
        return Grouping(frozenset(dims), frozenset(), self.by_measurement and other.by_measurement)

    def key(self, point: Point) -> str:
        """The regrouping key of ``point``: equal for two points of one group.

        Line-protocol-like (``cpu,host=a``; measurement only when it is part of the group);
        a missing tag counts as empty, as in the group id.
        """
        tags = point.tags
        if self.dims is None:
            names: Iterable[str] = sorted(k for k in tags if k not in self.exclude)
        else:
            names = sorted(self.dims)
        body = ",".join(f"{k.translate(_ESCAPES)}={tags.get(k, '').translate(_ESCAPES)}" for k in names)
        if not self.by_measurement:
            return body
        name = point.name.translate(_ESCAPES)
        return f"{name},{body}" if body else name


#: The grouping of the ``points`` kind itself: one series.
SERIES: Final = Grouping(None, frozenset(), True)


def _of_keyer(keyer: GroupKeyer, one_measurement: bool) -> Grouping:
    dims = None if keyer.dims is None else frozenset(keyer.dims)
    return Grouping(dims, frozenset(keyer.exclude) if dims is None else frozenset(),
                    keyer.by_name or one_measurement)


def _walk(node: Node, one_measurement: bool, seen: set[int]) -> Iterator[Grouping]:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, GroupByNode):
        yield _of_keyer(node.keyer, one_measurement)
    for child in node.children:
        yield from _walk(child, one_measurement, seen)


def task_grouping(task: Task) -> Grouping:
    """The meet of every grouping in ``task`` (:data:`SERIES` for a task without sources)."""
    out = SERIES
    for source in task.graph.sources:
        one = bool(source.measurement)  # a chain that reads one measurement only
        out = out.meet(_of_keyer(source.keyer, one))
        for g in _walk(source, one, set()):
            out = out.meet(g)
    return out


def measurements(task: Task) -> frozenset[str] | None:
    """The measurements the task reads (``None``: any); others need not be routed."""
    names: set[str] = set()
    for source in task.graph.sources:
        if not source.measurement:
            return None
        names.add(source.measurement)
    return frozenset(names)


# --- repartition records -----------------------------------------------------------------------


def repartition_value(task_id: str, point: Point) -> dict[str, Any]:
    """The ``repartition`` record value: the task it is for and the point."""
    return {"task": task_id, "p": point_value(point)}


def split_repartition_value(value: Any) -> tuple[str, Point]:
    """``repartition_value`` → (task id, point); RecordError names the missing field."""
    if not isinstance(value, dict) or not isinstance(value.get("task"), str):
        raise RecordError("repartition record: missing field 'task'")
    if "p" not in value:
        raise RecordError("repartition record: missing field 'p'")
    return value["task"], point_from_value(value["p"])


@dataclass(frozen=True, slots=True)
class _Route:
    grouping: Grouping
    measurements: frozenset[str] | None
    dbrps: tuple[tuple[str, str], ...]
    #: The task has clock-driven nodes (deadman): it runs in the regroup stage, which ticks.
    timed: bool = False

    @property
    def aligned(self) -> bool:
        return self.grouping.aligned and not self.timed


class Router:
    """Per task definition: its grouping (built once per definition, not per partition)."""

    def __init__(self, tasks: TaskSet) -> None:
        self._tasks = tasks
        self._version = -1
        self._routes: dict[str, _Route] = {}
        self._regrouped: list[tuple[str, _Route]] = []
        #: Task id → (the definition analysed, its route): rebuilt only when it changed.
        self._cache: dict[str, tuple[TaskDefinition, _Route | None]] = {}

    def _sync(self) -> None:
        if self._version == self._tasks.version:
            return
        routes: dict[str, _Route] = {}
        cache: dict[str, tuple[TaskDefinition, _Route | None]] = {}
        for d in self._tasks.enabled():
            hit = self._cache.get(d.id)
            route = hit[1] if hit is not None and hit[0] == d else self._analyse(d)
            cache[d.id] = (d, route)
            if route is not None:
                routes[d.id] = route
        self._routes, self._cache, self._version = routes, cache, self._tasks.version
        self._regrouped = [(tid, r) for tid, r in routes.items() if not r.aligned]

    @staticmethod
    def _analyse(d: TaskDefinition) -> _Route | None:
        try:
            task = build_task(d.script, task_name=d.id, vars=dict(d.vars))
        except Exception:  # noqa: BLE001 - the processor reports tasks that do not build
            return None
        return _Route(task_grouping(task), measurements(task), d.dbrps, bool(task.graph.timed))

    def aligned(self, definition: TaskDefinition) -> bool:
        """True when ``definition`` runs on the series-keyed ``points`` partitions."""
        self._sync()
        route = self._routes.get(definition.id)
        return route is None or route.aligned

    def regrouped(self, definition: TaskDefinition) -> bool:
        """True when ``definition`` runs on the ``repartition`` partitions."""
        return not self.aligned(definition)

    def quiet_key(self, task_id: str) -> str | None:
        """The one ``repartition`` key of a regrouped task whose points all share a key (no
        ``groupBy``; one measurement if the measurement is part of the group): the partition
        that reports its stream when it delivered nothing (see :mod:`.ticks`). None for any
        other task: its groups spread over partitions, and no partition alone can tell that
        none of them saw a point."""
        self._sync()
        route = self._routes.get(task_id)
        if route is None or route.aligned or route.grouping.dims != frozenset():
            return None
        names = route.measurements
        if route.grouping.by_measurement and (names is None or len(names) != 1):
            return None
        name = next(iter(names)) if names else ""
        return f"{task_id}/{route.grouping.key(Point(name, {}, {}, 0))}"

    def routes(self, point: Point) -> list[tuple[str, dict[str, Any]]]:
        """The ``repartition`` records for ``point``: ``(task id + "/" + key, value)`` for
        each enabled task that is not series-aligned and reads this point."""
        self._sync()
        out: list[tuple[str, dict[str, Any]]] = []
        for tid, route in self._regrouped:
            if route.measurements is not None and point.name not in route.measurements:
                continue
            if route.dbrps and (point.database, point.retention_policy) not in route.dbrps:
                continue
            out.append((f"{tid}/{route.grouping.key(point)}", repartition_value(tid, point)))
        return out
