"""Stream nodes that transform rows one at a time: from, where, groupBy, eval, default,
derivative, stateDuration/stateCount, log, httpOut and the stats counter behind deadman."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from kapacity.alert.event import Result, Series
from kapacity.gotypes import Time
from kapacity.models import FieldValue, Point
from kapacity.pipeline.base import Node
from kapacity.pipeline.lambdas import GroupedLambda, as_grouped
from kapacity.pipeline.row import Batch, Row, group_id

#: A compiled lambda: ``fn(fields, tags, time_ns)`` returns a value (or raises on error).
Lambda = Callable[[dict[str, Any], dict[str, str], int], Any]


class GroupKeyer:
    """Computes a row's group ID for fixed dimensions (``None`` = ``*``: every tag), cached."""

    __slots__ = ("dims", "by_name", "exclude", "_cache")

    def __init__(self, dims: Sequence[str] | None, by_name: bool, exclude: Sequence[str] = ()) -> None:
        self.dims = None if dims is None else tuple(sorted(set(dims) - set(exclude)))
        self.by_name = by_name
        self.exclude = frozenset(exclude)
        self._cache: dict[Any, tuple[str, tuple[str, ...]]] = {}

    def key(self, name: str, tags: dict[str, str]) -> tuple[str, tuple[str, ...]]:
        dims = self.dims
        if dims is None:
            dims = tuple(sorted(k for k in tags if k not in self.exclude))
        elif len(dims) == 1 and not self.by_name:
            # The common groupBy('host'): one dict lookup per point.
            hit = self._cache.get(tags.get(dims[0]))
            if hit is not None:
                return hit
            value = tags.get(dims[0])
            return self._store(value, name, tags, dims)
        if not dims and not self.by_name:
            return "", ()
        cache_key = (name if self.by_name else None, dims, tuple(map(tags.get, dims)))
        hit = self._cache.get(cache_key)
        if hit is None:
            return self._store(cache_key, name, tags, dims)
        return hit

    def _store(self, key: Any, name: str, tags: dict[str, str], dims: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        if len(self._cache) > 100_000:
            # Unbounded cardinality must not grow memory forever; recomputing is cheap.
            self._cache.clear()
        hit = (group_id(name, tags, dims, self.by_name), dims)
        self._cache[key] = hit
        return hit


def _apply_time(t: int, truncate: int, round_: int) -> int:
    if truncate:
        t -= t % truncate
    if round_:
        # Go's Time.Round: halfway values round up.
        r = t % round_
        t = t - r + (round_ if r + r >= round_ else 0)
    return t


class _FilteringNode(Node):
    """A node that drops rows: what went out is derived from what came in, not counted per row."""

    filtered: int

    @property  # Node keeps a plain counter; here it is derived
    def points_out(self) -> int:
        return self.points_in - self.filtered - self.errors

    @points_out.setter
    def points_out(self, _value: int) -> None:
        return None


class FromNode(_FilteringNode):
    """``stream|from()``: selects points by database, retention policy, measurement and
    ``where`` lambdas, sets their time precision and their group."""

    kind = "from"

    def __init__(
        self,
        name: str,
        *,
        database: str = "",
        retention_policy: str = "",
        measurement: str = "",
        where: Sequence[Lambda | GroupedLambda] = (),
        dims: Sequence[str] | None = (),
        by_measurement: bool = False,
        truncate: int = 0,
        round_: int = 0,
    ) -> None:
        super().__init__(name)
        self.database = database
        self.retention_policy = retention_policy
        self.measurement = measurement
        self.wheres = tuple(as_grouped(w) for w in where)
        self._where_stateful = any(w.stateful for w in self.wheres)
        self.where = tuple(w.fn for w in self.wheres)
        self.keyer = GroupKeyer(dims, by_measurement)
        self.truncate = truncate
        self.round = round_
        self._static = not by_measurement and dims is not None and len(dims) == 0
        self.filtered = 0
        #: Entry point for an input point (the task calls this for each point): the general
        #: :meth:`accept_point`, or a specialised hot path bound by :meth:`wire` or by the
        #: builder (:mod:`kapacity.pipeline.fused`).
        self.accept: Callable[[Point], None] = self.accept_point

    def accept_point(self, p: Point) -> None:
        """The general entry point for an input point."""
        if self.measurement and p.name != self.measurement:
            return
        if self.database and p.database != self.database:
            return
        if self.retention_policy and p.retention_policy != self.retention_policy:
            return
        t = p.time
        if self.truncate or self.round:
            t = _apply_time(t, self.truncate, self.round)
        if self._static:
            row = Row(p.name, p.tags, p.fields, t)
        else:
            group, dims = self.keyer.key(p.name, p.tags)
            row = Row(p.name, p.tags, p.fields, t, group, dims, self.keyer.by_name)
        self.points_in += 1
        wheres = self.where if not self._where_stateful else [w.for_group(row.group) for w in self.wheres]
        for w in wheres:
            try:
                if w(row.fields, row.tags, t) is not True:
                    self.filtered += 1
                    return
            except Exception as err:  # noqa: BLE001 - a failing lambda drops the point
                self.error("failed to evaluate WHERE expression", err)
                return
        self.emit_point(row)

    def wire(self) -> None:
        super().wire()
        if not (self._static and not self.truncate and not self.round and not self.where
                and not self.database and not self.retention_policy and self.measurement):
            return
        # The common shape (measurement only, nil group): one small closure per point.
        measurement = self.measurement
        emit = self.emit_point
        node = self
        kids = self.children
        if len(kids) == 1 and type(kids[0]) is WhereNode and not kids[0].lam.stateful:
            # from()|where(): evaluate the where lambda here, saving a call per point; the
            # where node's counters stay exact.
            where = kids[0]
            pred = where.predicate
            where_emit = where.emit_point

            def accept_where(p: Point) -> None:
                if p.name == measurement:
                    node.points_in += 1
                    where.points_in += 1
                    try:
                        keep = pred(p.fields, p.tags, p.time)
                    except Exception as err:  # noqa: BLE001
                        where.error("failed to evaluate WHERE expression", err)
                        return
                    if keep is True:
                        where_emit(Row(p.name, p.tags, p.fields, p.time))
                    else:
                        where.filtered += 1

            self.accept = accept_where
            return

        def accept(p: Point) -> None:
            if p.name == measurement:
                node.points_in += 1
                emit(Row(p.name, p.tags, p.fields, p.time))

        self.accept = accept


class WhereNode(_FilteringNode):
    """``|where(lambda)``: keeps rows for which the lambda is true."""

    kind = "where"

    def __init__(self, name: str, predicate: Lambda | GroupedLambda) -> None:
        super().__init__(name)
        self.lam = as_grouped(predicate)
        #: The shared callable; a stateful lambda is called through ``lam.for_group``.
        self.predicate = self.lam.fn
        self.filtered = 0

    def point(self, row: Row) -> None:
        self.points_in += 1
        pred = self.predicate if not self.lam.stateful else self.lam.for_group(row.group)
        try:
            keep = pred(row.fields, row.tags, row.time)
        except Exception as err:  # noqa: BLE001
            self.error("failed to evaluate WHERE expression", err)
            return
        if keep is True:
            self.emit_point(row)
        else:
            self.filtered += 1

    def batch(self, b: Batch) -> None:
        self.points_in += len(b.rows)
        kept = []
        pred = self.lam.for_group(b.group)
        for row in b.rows:
            try:
                if pred(row.fields, row.tags, row.time) is True:
                    kept.append(row)
                else:
                    self.filtered += 1
            except Exception as err:  # noqa: BLE001
                self.error("failed to evaluate WHERE expression", err)
        self.emit_batch(Batch(b.name, b.tags, b.time, b.group, b.dims, b.by_name, kept))


class GroupByNode(Node):
    """``|groupBy(dims…)``: regroups rows (``*`` = all tags; ``.byMeasurement()``, ``.exclude()``)."""

    kind = "groupby"

    def __init__(self, name: str, dims: Sequence[str] | None, by_measurement: bool, exclude: Sequence[str]) -> None:
        super().__init__(name)
        self.keyer = GroupKeyer(dims, by_measurement, exclude)

    def point(self, row: Row) -> None:
        self.points_in += 1
        group, dims = self.keyer.key(row.name, row.tags)
        out = Row(row.name, row.tags, row.fields, row.time, group, dims, self.keyer.by_name)
        self.points_out += 1
        self.emit_point(out)

    def batch(self, b: Batch) -> None:
        self.points_in += len(b.rows)
        groups: dict[str, list[Row]] = {}
        for row in b.rows:
            group, dims = self.keyer.key(row.name, row.tags)
            groups.setdefault(group, []).append(
                Row(row.name, row.tags, row.fields, row.time, group, dims, self.keyer.by_name)
            )
        for group, rows in sorted(groups.items()):
            first = rows[0]
            self.points_out += len(rows)
            self.emit_batch(Batch(b.name, first.group_tags(), b.time, group, first.dims, first.by_name, rows))


class _RowMapNode(Node):
    """A node that maps each row to zero or one new row; batches are mapped row by row."""

    def map(self, row: Row) -> Row | None:
        raise NotImplementedError

    def point(self, row: Row) -> None:
        self.points_in += 1
        out = self.map(row)
        if out is not None:
            self.points_out += 1
            self.emit_point(out)

    def batch(self, b: Batch) -> None:
        self.points_in += len(b.rows)
        rows = [r for r in (self.map(row) for row in b.rows) if r is not None]
        self.points_out += len(rows)
        self.emit_batch(Batch(b.name, b.tags, b.time, b.group, b.dims, b.by_name, rows))


class EvalNode(_RowMapNode):
    """``|eval(lambdas…).as(names…)``: computes new fields (or tags with ``.tags()``).

    Each expression sees the results of the ones before it. Without ``.keep()`` only the new
    fields remain; ``.keep()`` keeps every field, ``.keep(names…)`` exactly those.
    """

    kind = "eval"

    def __init__(
        self,
        name: str,
        exprs: Sequence[Lambda | GroupedLambda],
        as_: Sequence[str],
        tags: Sequence[str] = (),
        keep: bool = False,
        keep_list: Sequence[str] = (),
        quiet: bool = False,
    ) -> None:
        super().__init__(name)
        self.lams = [as_grouped(e) for e in exprs]
        self.exprs = list(zip((g.fn for g in self.lams), as_, strict=True))
        self._stateful = any(g.stateful for g in self.lams)
        self.tag_names = frozenset(tags)
        self.keep = keep
        self.keep_list = tuple(keep_list)
        self.quiet = quiet

    def map(self, row: Row) -> Row | None:
        work = row.copy()
        new_fields: dict[str, FieldValue] = {}
        exprs = self.exprs
        if self._stateful:
            exprs = [(g.for_group(row.group), as_) for g, (_, as_) in zip(self.lams, exprs, strict=True)]
        for expr, as_ in exprs:
            try:
                value = expr(work.fields, work.tags, work.time)
            except Exception as err:  # noqa: BLE001
                if self.quiet:
                    self.errors += 1
                else:
                    self.error(f"failed to evaluate expression for {as_!r}", err)
                return None
            if as_ in self.tag_names:
                work.tags[as_] = str(value)
            else:
                work.fields[as_] = value
                new_fields[as_] = value
        if self.keep_list:
            work.fields = {k: work.fields[k] for k in self.keep_list if k in work.fields}
        elif not self.keep:
            work.fields = new_fields
        return work


class DefaultNode(_RowMapNode):
    """``|default().field(name, value).tag(name, value)``: fills in missing fields and tags."""

    kind = "default"

    def __init__(self, name: str, fields: dict[str, FieldValue], tags: dict[str, str]) -> None:
        super().__init__(name)
        self.fields = fields
        self.tags = tags

    def map(self, row: Row) -> Row | None:
        missing_f = [k for k in self.fields if k not in row.fields]
        missing_t = [k for k in self.tags if k not in row.tags]
        if not missing_f and not missing_t:
            return row
        out = row.copy()
        for k in missing_f:
            out.fields[k] = self.fields[k]
        for k in missing_t:
            out.tags[k] = self.tags[k]
        return out


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


class DerivativeNode(_RowMapNode):
    """``|derivative(field).unit(d).nonNegative().as(name)``: rate of change per group."""

    kind = "derivative"

    def __init__(self, name: str, field: str, unit_ns: int, non_negative: bool, as_: str) -> None:
        super().__init__(name)
        self.field = field
        self.unit = unit_ns
        self.non_negative = non_negative
        self.as_ = as_
        self.previous: dict[str, tuple[int, float]] = {}

    def map(self, row: Row) -> Row | None:
        cur = _as_float(row.fields.get(self.field))
        if cur is None:
            self.error("derivative", ValueError(f"field {self.field!r} is missing or not numeric"))
            return None
        prev = self.previous.get(row.group)
        if prev is not None and prev[0] == row.time:
            self.error("derivative", ValueError("cannot compute a derivative: elapsed time was 0"))
            return None
        self.previous[row.group] = (row.time, cur)
        if prev is None:
            return None
        diff = cur - prev[1]
        if self.non_negative and diff < 0:
            return None
        out = row.copy()
        out.fields[self.as_] = diff / ((row.time - prev[0]) / self.unit)
        return out


class StateTrackingNode(_RowMapNode):
    """``|stateDuration(lambda)`` / ``|stateCount(lambda)``: how long / how many points in a row
    the lambda has been true for this group; -1 while it is false."""

    def __init__(self, name: str, predicate: Lambda | GroupedLambda, as_: str, unit_ns: int, count: bool) -> None:
        super().__init__(name)
        self.kind = "state_count" if count else "state_duration"
        self.lam = as_grouped(predicate)
        self.as_ = as_
        self.unit = unit_ns
        self.count = count
        self.state: dict[str, tuple[int, int]] = {}  # group -> (start time, count)

    def map(self, row: Row) -> Row | None:
        try:
            ok = self.lam.for_group(row.group)(row.fields, row.tags, row.time) is True
        except Exception as err:  # noqa: BLE001
            self.error("failed to evaluate state expression", err)
            return None
        out = row.copy()
        if not ok:
            self.state.pop(row.group, None)
            out.fields[self.as_] = -1 if self.count else -1.0
            return out
        start, n = self.state.get(row.group, (row.time, 0))
        n += 1
        self.state[row.group] = (start, n)
        out.fields[self.as_] = n if self.count else (row.time - start) / self.unit
        return out


class LogNode(Node):
    """``|log().level('INFO').prefix('x')``: logs each row or batch, passes it on."""

    kind = "log"

    def __init__(self, name: str, level: str, prefix: str) -> None:
        super().__init__(name)
        self.level = logging.getLevelName(level.upper()) if level else logging.INFO
        if not isinstance(self.level, int):
            self.level = logging.INFO
        self.prefix = prefix
        self.logger = logging.getLogger("kapacity.task")

    def point(self, row: Row) -> None:
        self.logger.log(self.level, "%s %s %r", self.prefix, self.name, row)
        super().point(row)

    def batch(self, b: Batch) -> None:
        self.logger.log(self.level, "%s %s %r", self.prefix, self.name, b)
        super().batch(b)


def row_series(row: Row) -> Series:
    """A row as Kapacitor's result row: columns ``time`` + sorted fields."""
    keys = sorted(row.fields)
    return Series(
        name=row.name,
        tags=dict(row.tags),
        columns=["time", *keys],
        values=[[Time(row.time), *(row.fields[k] for k in keys)]],
    )


def batch_series(b: Batch) -> Series:
    """A batch as one result row: columns ``time`` + the union of field names, sorted."""
    keys = sorted({k for r in b.rows for k in r.fields})
    return Series(
        name=b.name,
        tags=dict(b.tags),
        columns=["time", *keys],
        values=[[Time(r.time), *(r.fields.get(k) for k in keys)] for r in b.rows],
    )


class HttpOutNode(Node):
    """``|httpOut('name')``: keeps the latest row (or batch) of each group, for the HTTP API."""

    kind = "http_out"

    def __init__(self, name: str, endpoint: str) -> None:
        super().__init__(name)
        self.endpoint = endpoint
        self.latest: dict[str, Series] = {}

    def point(self, row: Row) -> None:
        self.latest[row.group] = row_series(row)
        super().point(row)

    def batch(self, b: Batch) -> None:
        self.latest[b.group] = batch_series(b)
        super().batch(b)

    def result(self) -> Result:
        """The latest data of every group, ordered by group."""
        return Result([self.latest[g] for g in sorted(self.latest)])


class StatsNode(Node):
    """Counts what its parent emits per group and, when the clock crosses each ``interval``,
    emits a ``stats`` row ``{emitted: <total count>}`` per group (Kapacitor's ``|stats``)."""

    kind = "stats"

    def __init__(self, name: str, interval_ns: int, align: bool) -> None:
        super().__init__(name)
        self.interval = interval_ns
        self.align = align
        self.next_emit: int | None = None
        self.counts: dict[str, list[Any]] = {}  # group -> [count, tags, dims]

    def observe_point(self, row: Row) -> None:
        c = self.counts.get(row.group)
        if c is None:
            self.counts[row.group] = [1, row.group_tags(), row.dims]
        else:
            c[0] += 1

    def observe_batch(self, b: Batch) -> None:
        c = self.counts.get(b.group)
        if c is None:
            self.counts[b.group] = [1, dict(b.tags), b.dims]
        else:
            c[0] += 1

    def point(self, row: Row) -> None:  # the stats node is fed by observe_*, not by rows
        return None

    def batch(self, b: Batch) -> None:
        return None

    def tick(self, now_ns: int) -> None:
        if self.next_emit is None:
            self.next_emit = (now_ns - now_ns % self.interval + self.interval) if self.align else now_ns + self.interval
            return
        if now_ns < self.next_emit:
            return
        t = now_ns
        if self.align:
            r = t % self.interval
            t = t - r + (self.interval if r + r >= self.interval else 0)
        self.next_emit = now_ns + self.interval
        if not self.counts:
            # Nothing seen yet: report the nil group with 0, so that a task whose stream
            # never delivered anything is dead too (as in Kapacitor).
            self.points_out += 1
            self.emit_point(Row("stats", {}, {"emitted": 0}, t))
            return
        for group in sorted(self.counts):
            count, tags, dims = self.counts[group]
            self.points_out += 1
            self.emit_point(Row("stats", dict(tags), {"emitted": count}, t, group, dims))


class CountingTap(Node):
    """A silent child of a node that reports what the node emits to a :class:`StatsNode`."""

    kind = "tap"

    def __init__(self, name: str, stats: StatsNode) -> None:
        super().__init__(name)
        self.stats_node = stats

    def point(self, row: Row) -> None:
        self.stats_node.observe_point(row)

    def batch(self, b: Batch) -> None:
        self.stats_node.observe_batch(b)
